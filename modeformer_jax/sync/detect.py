"""Offset detection on one video: decode -> faces -> crops -> log-mel (`model_inputs`, no model, runs in worker
processes) -> embeddings -> per-window scores -> syncnet_python numbers and the offset histogram (`score`,
with the model, in the main process).

Sign convention (SPEC section 6): AV offset > 0 means the audio LEADS the video, i.e. the sound of video
frame i is at audio frame i - offset; < 0 means the audio lags (comes late).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import ml_collections
import numpy as np

from modeformer_jax.errors import UserError
from modeformer_jax.media import faces
from modeformer_jax.media.crops import face_crops
from modeformer_jax.media.decode import MediaError, read_media
from modeformer_jax.media.mfcc import audio_features
from modeformer_jax.media.preprocess_config import with_face_defaults
from modeformer_jax.offsets import describe_offset
from modeformer_jax.sync import syncnet_metrics

if TYPE_CHECKING:  # jax loads only where the model runs, not in the decode workers
  from modeformer_jax.inference import SyncModel

# Video windows embedded per call, so a long video never holds all its 5-frame windows (5x its crops) at once.
_VIDEO_CHUNK = 1024


@dataclasses.dataclass
class ModelInputs:
  """What the model needs from one file; made without the model. T frames at the model's rate (25 fps)."""
  path: str
  crops: np.ndarray  # uint8 [T, crop, crop, 3] face crops
  features: np.ndarray  # float32 [M, F] audio features of the T frames (log-mel [M, 80], SyncNet: MFCC [M, 13])
  valid: np.ndarray  # bool [T] a face was seen on this frame
  face_centered: bool  # whole frame taken as the face, no detection
  num_tracks: int  # face tracks found (0 with face_centered)
  face_px: float  # median face box height in source pixels where a face was seen (face_centered: the box's)
  info: dict[str, Any]  # source streams: fps, sample rate, channels, durations
  # Seconds per stage: decode, faces (detection + tracking), crop (the speaker's crops; with several faces, each
  # candidate's), mel.
  timings: dict[str, float]


def min_frames(max_offset: int, window: int = 5) -> int:
  """Shortest usable video: every shift -S..S must have at least one window (5 + 2 S frames)."""
  return window + 2 * max_offset


def model_inputs(path: str, pp: ml_collections.ConfigDict, *, face_centered: bool = False,
                 max_offset: int = 15, chunk_mb: float = 1024.0) -> ModelInputs:
  """Decodes `path` (any rate -> pp.fps, any audio -> pp.sample_rate mono), finds the face, crops, log-mel.

  Faces: with face_centered the whole frame is the face (LRS2-style crops, pp.lrs2_box), as `modeformer prep`
  treats LRS2. Otherwise the face tracks of media.faces.detect_faces (BlazeFace or the Haar cascade); when
  there are several, the most speech-active one wins (see pick_speaker). Crops are made as `modeformer prep`
  makes them (media/crops.face_crops: pp.face_crop_scale / face_crop_shift_y, or syncnet_python's crop_video
  for face_crop "syncnet").

  The decoded frames are never all in memory: they are cropped in chunks of at most chunk_mb megabytes as
  they are decoded, and only the crops are kept (27 KB a frame at 96x96). Faces are tracked and the speaker
  picked within each chunk (about 7 s of 1080p at the default), so `num_tracks` is the most found in one chunk.

  Raises:
    MediaError: unreadable file, missing stream, too short for +-max_offset, or no face at all.
  """
  tick = time.perf_counter()
  timings = {"decode": 0.0, "faces": 0.0, "crop": 0.0}
  crops, valid, size, heights = [], [], [], []
  num_tracks = 0

  def crop(frames: np.ndarray) -> None:
    nonlocal num_tracks
    started = time.perf_counter()
    height, width = frames.shape[1:3]
    size[:] = [width, height]
    if face_centered:
      boxes = faces.fixed_boxes(len(frames), height, width, pp.lrs2_box)
      crops.append(face_crops(frames, boxes, pp, centered=True)[0])
      valid.append(np.ones(len(frames), bool))
      heights.append(boxes[:, 3])
    else:
      tracks = faces.detect_faces(frames, pp)
      detected = time.perf_counter()
      timings["faces"] += detected - started
      started = detected
      # A chunk without a face gets whole-frame crops, masked out by `valid`.
      track, chunk_crops = pick_speaker(frames, tracks, pp)
      crops.append(chunk_crops)
      valid.append(track.valid)
      heights.append(track.boxes[track.valid, 3])
      num_tracks = max(num_tracks, track.num_tracks)
    timings["crop"] += time.perf_counter() - started

  media = read_media(path, fps=pp.fps, sample_rate=pp.sample_rate, on_frames=crop, chunk_mb=chunk_mb)
  width, height = size
  timings["decode"] = time.perf_counter() - tick - timings["faces"] - timings["crop"]
  hop = int(pp.sample_rate // pp.fps)
  # Both streams cut to the frames that have audio, as `modeformer prep` does (L of SPEC section 5).
  num_frames = min(media.num_frames, len(media.audio) // hop)
  need = min_frames(max_offset, pp.video_window_frames)
  if num_frames < need:
    raise MediaError(path, f"too short: {num_frames} frames ({num_frames / pp.fps:.2f} s) with both video and "
                     f"audio; offsets up to +-{max_offset} frames need at least {need} "
                     f"({pp.video_window_frames} + 2 x {max_offset})")
  crops = _joined(crops, num_frames)
  valid = np.concatenate(valid)[:num_frames]
  if not face_centered and not valid.any():
    raise MediaError(path, f"no face found in {width}x{height} frames (faces smaller than about "
                     f"{_smallest_face(pp, width, height):.0f} px are not looked for; videos that are face crops "
                     "already, e.g. LRS2, are scored on the whole frame with face_centered: `modeformer sync "
                     "--face-centered`)")
  info = {"source_fps": round(media.source_fps, 3), "source_sample_rate": media.source_sample_rate,
          "source_channels": media.source_channels, "rotation": media.rotation,
          "audio_streams": media.audio_streams, "video_seconds": round(media.video_seconds, 3),
          "audio_seconds": round(media.audio_seconds, 3), "width": size[0], "height": size[1]}
  tick = time.perf_counter()
  features = audio_features(media.audio[:num_frames * hop], pp)  # log-mel, or MFCC for SyncNet
  timings["mel"] = time.perf_counter() - tick
  heights = np.concatenate(heights)
  return ModelInputs(path=path, crops=crops, features=features, valid=valid, face_centered=face_centered,
                     num_tracks=num_tracks, face_px=float(np.median(heights)) if heights.size else 0.0, info=info,
                     timings=timings)


def _smallest_face(pp: ml_collections.ConfigDict, width: int, height: int) -> float:
  """The smallest face box height (pixels) the configured detector looks for in a width x height frame."""
  pp = with_face_defaults(pp)
  if pp.face_detector == "haar":
    return pp.min_face_fraction * min(width, height, pp.detect_max_side) * max(1, max(width, height) /
                                                                               pp.detect_max_side)
  return max(pp.min_face_px, pp.blazeface_min_face_fraction * min(width, height))


def _joined(parts: list[np.ndarray], count: int) -> np.ndarray:
  """The first `count` rows of parts concatenated; each part is released once copied, so a long video's crops
  are held once plus one chunk, not twice (parts is emptied)."""
  out = np.empty((count, *parts[0].shape[1:]), parts[0].dtype)
  at = 0
  while parts and at < count:
    part = parts.pop(0)
    out[at:at + len(part)] = part[:count - at]
    at += len(part)
  parts.clear()
  return out


def pick_speaker(frames: np.ndarray, track: faces.FaceTrack,
                 pp: ml_collections.ConfigDict) -> tuple[faces.FaceTrack, np.ndarray]:
  """The face track that talks, and its crops uint8 [T, crop, crop, 3].

  No track: the whole-frame box detect_faces gives (its frames invalid). One track: that one. Several: among
  the tracks seen at least half as often as the most-seen one, the one whose mouth half changes most between
  consecutive frames beyond what its upper half changes (head motion, lighting and compression noise move
  both halves; speech moves the mouth). It is a cheap stand-in for
  audio-visual speaker detection and picks the wrong face when a silent listener chews or grimaces.
  """
  def crop(t: faces.FaceTrack) -> np.ndarray:
    return face_crops(frames, t.boxes, pp)[0]

  if track.num_tracks <= 1:
    return track, crop(track)
  most = max(t.coverage for t in track.tracks)
  best = None
  for candidate in track.tracks:
    if candidate.coverage < 0.5 * most:
      continue
    crops = crop(candidate)
    pairs = candidate.valid[1:] & candidate.valid[:-1]
    if not pairs.any():
      continue
    change = np.abs(np.diff(crops.astype(np.int16), axis=0))[pairs]  # [P, crop, crop, 3]
    half = pp.mouth_row_start or crops.shape[1] // 2  # whole-face models (SyncNet) start at row 0
    mouth, upper = change[:, half:].mean(), change[:, :half].mean()
    if best is None or mouth - upper > best[0]:
      best = (mouth - upper, candidate, crops)
  if best is None:  # no track seen on two consecutive frames: fall back to the detector's ranking
    return track, crop(track)
  return dataclasses.replace(best[1], tracks=track.tracks), best[2]


@dataclasses.dataclass
class SyncResult:
  """One video's offset report. Per-offset arrays are indexed by AV offset -S..S (`offsets`)."""
  path: str
  offset: int  # AV offset in frames (syncnet_python's), > 0: audio leads video
  fps: float
  min_dist: float  # syncnet "Min dist" on sqrt(2 - 2 cos) distances
  confidence: float  # syncnet "Confidence" = median(mdist) - min(mdist)
  offsets: np.ndarray  # int [2S+1] AV offsets -S..S
  similarity: np.ndarray  # float [2S+1] mean cosine similarity of the windows at each AV offset
  mdist: np.ndarray  # float [2S+1] mean distance at each AV offset
  histogram: np.ndarray  # int [2S+1] windows whose best offset is each AV offset
  mode: int  # the histogram's mode (ModEFormer's per-window estimate)
  framewise_conf: np.ndarray  # float [L] syncnet's median-filtered framewise confidence (NaN: window dropped)
  windows_scored: int
  windows_total: int
  face_coverage: float  # fraction of the analysed frames with a face
  num_tracks: int
  face_mode: str  # "detected" or "centered"
  face_px: float  # median face box height in source pixels
  small_face: bool  # face_px under preprocess.small_face_px: the crop is mostly upsampled
  num_frames: int  # analysed frames (video with audio), at fps
  info: dict[str, Any]
  timings: dict[str, float]  # seconds: decode, faces, crop, mel, model, scoring
  crop_size: int = 96

  @property
  def offset_ms(self) -> float:
    return self.offset * 1000.0 / self.fps

  @property
  def duration(self) -> float:
    return self.num_frames / self.fps

  @property
  def at_search_edge(self) -> bool:
    return abs(self.offset) == self.offsets[-1]

  def to_json(self) -> dict[str, Any]:
    def floats(x):
      return [None if np.isnan(v) else round(float(v), 4) for v in x]

    return {
        "path": self.path, "av_offset_frames": self.offset, "av_offset_ms": round(self.offset_ms, 1),
        "sign": describe_offset(self.offset, self.fps), "at_search_edge": bool(self.at_search_edge),
        "min_dist": self.min_dist, "confidence": self.confidence, "histogram_mode_frames": self.mode,
        "offsets_frames": self.offsets.tolist(), "similarity": floats(self.similarity),
        "mdist": floats(self.mdist), "histogram": self.histogram.tolist(),
        "framewise_conf": floats(self.framewise_conf), "windows_scored": self.windows_scored,
        "windows_total": self.windows_total, "face_coverage": round(self.face_coverage, 4),
        "face_tracks": self.num_tracks, "faces": self.face_mode, "face_px": round(self.face_px, 1),
        "small_face": self.small_face, "duration_s": round(self.duration, 3),
        "fps": self.fps, **self.info, "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
    }

  def text(self) -> str:
    """syncnet_python's three lines (`AV offset:`, `Min dist:`, `Confidence:`) and ours below them."""
    s = len(self.offsets) // 2
    at = {int(o): i for i, o in enumerate(self.offsets)}
    top = np.argsort(-np.nan_to_num(self.similarity, nan=-np.inf))[:3]
    best = ", ".join(f"{int(self.offsets[i]):+d} ({self.similarity[i]:.3f})" for i in top)
    histogram_share = self.histogram[at[self.mode]] / max(1, self.histogram.sum())
    source = (f"source {self.info['source_fps']:g} fps {self.info['width']}x{self.info['height']}, "
              f"{self.info['source_sample_rate']} Hz x {self.info['source_channels']} ch"
              + (f", turned {self.info['rotation']} deg upright" if self.info.get("rotation") else "")
              + (f", default of {self.info['audio_streams']} audio streams" if self.info.get("audio_streams", 1) > 1
                 else "") + ")")
    faces_line = ("whole frame (--face-centered)" if self.face_mode == "centered" else
                  f"{self.face_coverage:.0%} of frames ({self.num_tracks} track{'s' * (self.num_tracks != 1)}), "
                  f"{self.face_px:.0f} px tall")
    lines = [
        f"AV offset: \t{self.offset} ({describe_offset(self.offset, self.fps)})",
        f"Min dist: \t{self.min_dist:.3f}",
        f"Confidence: \t{self.confidence:.3f}",
        f"Offset in ms: \t{self.offset_ms:+.0f} (AV offset > 0: audio leads video; 1 frame = "
        f"{1000 / self.fps:.0f} ms)",
        f"Best offsets: \t{best} (mean cosine similarity; at 0: {self.similarity[at[0]]:.3f})",
        f"Window mode: \t{self.mode} ({histogram_share:.0%} of windows prefer it; search +-{s} frames)",
        f"Framewise conf:\tmedian {np.nanmedian(self.framewise_conf):.3f}",
        f"Faces: \t{faces_line}; windows scored {self.windows_scored} / {self.windows_total}",
        f"Duration: \t{self.duration:.2f} s ({self.num_frames} frames at {self.fps:g} fps; {source}",
    ]
    if self.small_face:
      lines.append(f"Note: \tthe face is {self.face_px:.0f} px tall: its {self.crop_size}x{self.crop_size} crop is "
                   f"mostly upsampled, so the mouth shows little detail and offsets are less certain")
    if self.at_search_edge:
      lines.append("Note: \tthe offset is at the edge of the search range, the true one may be larger "
                   "(raise --max-offset-frames)")
    return "\n".join(lines)


def score(model: SyncModel, inputs: ModelInputs, max_offset: int = 15) -> SyncResult:
  """Embeds every 5-frame window of a file's inputs once per modality and scores offsets -S..S.

  Windows that touch a frame without a face are dropped from every statistic. With model.syncnet_compat the
  distances are syncnet_python's (sync.syncnet_metrics.padded_distances: candidates past the ends scored
  against zero-padded audio embeddings, averaged with the others); otherwise candidates past the ends are left
  out, and distances are sqrt(2 - 2 cos) for unit embeddings or Euclidean for raw ones.

  Raises:
    MediaError: too few windows with a face to score every shift.
  """
  from modeformer_jax.inference import audio_windows, offset_similarities, video_windows

  if model.scoring == "pairwise":
    raise UserError(f"{model.config.model.name} is a cross-modal classifier: it scores (video, audio) pairs "
                    "and has no embeddings for offset detection; evaluate it with `modeformer eval`")
  tick = time.perf_counter()
  spec = model.spec
  path, crops = inputs.path, inputs.crops
  # model_inputs cut the audio to the frames, so L = T (SPEC 5); SyncNet's MFCC windows reach one frame less far.
  count = spec.num_starts(len(crops), len(inputs.features))
  video = np.concatenate([
      model.embed_video(video_windows(crops[s:s + _VIDEO_CHUNK + spec.video_frames - 1],
                                      min(_VIDEO_CHUNK, count - s), spec))
      for s in range(0, count, _VIDEO_CHUNK)])
  audio = model.embed_audio(audio_windows(inputs.features, count, spec))
  model_seconds = time.perf_counter() - tick

  tick = time.perf_counter()
  # [L, 2S+1], column j = audio moved by j - S; higher = better (minus the distance for Euclidean models).
  sims = offset_similarities(video, audio, max_offset, model.scoring)
  window_ok = np.lib.stride_tricks.sliding_window_view(inputs.valid, spec.video_frames).all(axis=1)[:count]
  sims[~window_ok] = np.nan
  if not np.isfinite(sims).any(axis=0).all():
    raise MediaError(path, f"face found in {inputs.valid.mean():.0%} of the frames: too few 5-frame windows "
                     f"with a face throughout ({int(window_ok.sum())}) to score offsets up to +-{max_offset}")
  if model.syncnet_compat:
    distances = syncnet_metrics.padded_distances(video, audio, max_offset)
    distances[~window_ok] = np.nan
  elif model.scoring == "euclidean":
    distances = -sims.astype(np.float64)
  else:
    distances = syncnet_metrics.similarity_to_distance(sims)
  scores = syncnet_metrics.syncnet_scores(distances)
  histogram = syncnet_metrics.offset_histogram(sims)
  with np.errstate(all="ignore"):
    similarity = np.nanmean(sims, axis=0)
  timings = {**inputs.timings, "model": model_seconds, "scoring": time.perf_counter() - tick}
  return SyncResult(
      path=path, offset=scores.offset, fps=float(spec.fps), min_dist=scores.min_dist,
      confidence=scores.confidence, offsets=histogram.offsets, similarity=similarity[::-1],
      mdist=scores.mdist[::-1], histogram=histogram.counts, mode=histogram.mode,
      framewise_conf=scores.framewise_conf_filtered, windows_scored=int(window_ok.sum()), windows_total=count,
      face_coverage=float(inputs.valid.mean()), num_tracks=inputs.num_tracks,
      face_mode="centered" if inputs.face_centered else "detected", face_px=inputs.face_px,
      small_face=inputs.face_px < with_face_defaults(model.config.preprocess).small_face_px,
      num_frames=len(crops), info=inputs.info, timings=timings, crop_size=crops.shape[1])


def detect(model: SyncModel, path: str, *, face_centered: bool = False, max_offset: int = 15) -> SyncResult:
  """model_inputs + score in this process: one file's report."""
  return score(model, model_inputs(path, model.config.preprocess, face_centered=face_centered,
                                   max_offset=max_offset), max_offset)


Prepared, prepare = ModelInputs, model_inputs  # the old names, while callers move
