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
from modeformer_jax.media.frames import FrameChunk
from modeformer_jax.media.mfcc import audio_features
from modeformer_jax.media.preprocess_config import with_face_defaults
from modeformer_jax.offsets import describe_offset
from modeformer_jax.sync import syncnet_metrics, timeline as timelines
from modeformer_jax.sync.tracks import FaceCrops, Stitcher, whole_frame

if TYPE_CHECKING:  # jax loads only where the model runs, not in the decode workers
  from modeformer_jax.inference import SyncModel

# Video windows embedded per call, so a long video never holds all its 5-frame windows (5x its crops) at once.
_VIDEO_CHUNK = 1024


@dataclasses.dataclass
class ModelInputs:
  """What the model needs from one file; made without the model. T frames at the model's rate (25 fps)."""
  path: str
  faces: list[FaceCrops]  # every face tracked (the one whose mouth moves most first); face_centered: the frame
  features: np.ndarray  # float32 [M, F] audio features of the T frames (log-mel [M, 80], SyncNet: MFCC [M, 13])
  num_frames: int  # T
  face_centered: bool  # whole frame taken as the face, no detection
  num_tracks: int  # the most face tracks found in one chunk (0 with face_centered)
  face_px: float  # median box height in source pixels of the first face where seen (face_centered: the box's)
  info: dict[str, Any]  # source streams: fps, sample rate, channels, durations
  # Seconds per stage: decode, faces (detection + tracking), crop (the speaker's crops; with several faces, each
  # candidate's), mel.
  timings: dict[str, float]

  @property
  def valid(self) -> np.ndarray:
    """bool [T]: some face was seen on this frame."""
    out = np.zeros(self.num_frames, bool)
    for face in self.faces:
      out[face.start:face.stop] |= face.valid
    return out


def min_frames(max_offset: int, window: int = 5) -> int:
  """Shortest usable video: every shift -S..S must have at least one window (5 + 2 S frames)."""
  return window + 2 * max_offset


def model_inputs(path: str, pp: ml_collections.ConfigDict, *, face_centered: bool = False,
                      max_offset: int = 15, chunk_mb: float = 1024.0, max_faces: int = 4) -> ModelInputs:
  """Decodes `path` (any rate -> pp.fps, any audio -> pp.sample_rate mono), finds the faces, crops, log-mel.

  Faces: with face_centered the whole frame is the face (LRS2-style crops, pp.lrs2_box), as `modeformer prep`
  treats LRS2. Otherwise the face tracks of media.faces.detect_faces (BlazeFace or the Haar cascade): every
  face (at most max_faces, those whose mouths move most), so that `score` can tell the speaking one by the audio
  (sync.tracks). Crops are made as `modeformer prep` makes them (media/crops.face_crops: pp.face_crop_scale /
  face_crop_shift_y, or syncnet_python's crop_video for face_crop "syncnet").

  The decoded frames are never all in memory: they are cropped in chunks of at most chunk_mb megabytes as
  they are decoded, and only the crops are kept (27 KB a frame per face at 96x96). Faces are tracked within
  each chunk (about 7 s of 1080p at the default) and joined across chunks by position.

  Raises:
    MediaError: unreadable file, missing stream, too short for +-max_offset, or no face at all.
  """
  tick = time.perf_counter()
  timings = {"decode": 0.0, "faces": 0.0, "crop": 0.0}
  whole, size, box = [], [], []
  stitcher = None if face_centered else Stitcher(pp)

  def crop(frames: FrameChunk) -> None:
    # The chunk's frames are converted to RGB as detection and cropping read them: that time counts as decoding.
    started, converted = time.perf_counter(), 0.0
    height, width = frames.shape[1:3]
    size[:] = [width, height]
    if face_centered:
      boxes = faces.fixed_boxes(len(frames), height, width, pp.lrs2_box)
      whole.append(face_crops(frames, boxes, pp, centered=True)[0])
      box[:] = boxes[0]
    else:
      tracks = faces.detect_faces(frames, pp)
      converted = frames.convert_seconds
      timings["faces"] += time.perf_counter() - started - converted
      started = time.perf_counter()
      stitcher.add(frames, tracks)
    timings["crop"] += time.perf_counter() - started - (frames.convert_seconds - converted)

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
  found = [whole_frame(_joined(whole, num_frames), box)] if face_centered else stitcher.faces(num_frames)[:max_faces]
  if not any(face.valid.any() for face in found):
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
  heights = found[0].boxes[found[0].valid, 3]
  return ModelInputs(path=path, faces=found, features=features, num_frames=num_frames, face_centered=face_centered,
                  num_tracks=0 if face_centered else stitcher.max_tracks,
                  face_px=float(np.median(heights)) if heights.size else 0.0, info=info, timings=timings)


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
  # Detected faces: (first frame, boxes float32 [n, 4] (x, y, w, h) source pixels, NaN where not seen) per track.
  tracks: list[tuple[int, np.ndarray]] = dataclasses.field(default_factory=list)
  # Segments: which track speaks when (several tracks), and the offsets over time (`timeline_shown`: asked for).
  timeline: timelines.Timeline | None = None
  timeline_shown: bool = False

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
        **({"tracks": [_track_json(k, start, boxes) for k, (start, boxes) in enumerate(self.tracks)]}
           if self.tracks else {}),
        **({"speaking_segments": self.timeline.speaker_shares(len(self.tracks))}
           if self.timeline and len(self.tracks) > 1 else {}),
        **({"timeline": self.timeline.to_json()} if self.timeline_shown else {}),
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
    if self.timeline and len(self.tracks) > 1:
      shares = self.timeline.speaker_shares(len(self.tracks))
      faces_line += (f"; speaking by the audio: " + ", ".join(f"track {k} in {n}" for k, n in enumerate(shares))
                     + f" of {len(self.timeline.segments)} segments")
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
    if self.timeline_shown:
      lines.extend(self.timeline.text(len(self.tracks)))
    return "\n".join(lines)


def _track_json(index: int, start: int, boxes: np.ndarray) -> dict[str, Any]:
  seen = ~np.isnan(boxes[:, 0])
  return {"track": index, "first_frame": start, "frames": len(boxes), "coverage": round(float(seen.mean()), 4),
          "boxes": [[round(float(v), 1) for v in box] if ok else None for box, ok in zip(boxes, seen)]}


def score(model: SyncModel, inputs: ModelInputs, max_offset: int = 15,
          timeline: timelines.TimelineOptions | None = None) -> SyncResult:
  """Embeds every 5-frame window of a file's inputs once per modality (the video once per face) and scores
  offsets -S..S.

  Windows that touch a frame without a face are dropped from every statistic. With model.syncnet_compat the
  distances are syncnet_python's (sync.syncnet_metrics.padded_distances: candidates past the ends scored
  against zero-padded audio embeddings, averaged with the others); otherwise candidates past the ends are left
  out, and distances are sqrt(2 - 2 cos) for unit embeddings or Euclidean for raw ones.

  timeline: cut the file into segments and report each (sync.timeline). With several faces the segments are
  cut anyway (timeline.TimelineOptions' defaults when None): each window is scored with the face that speaks
  in its segment, so the file's numbers are the speaking face's.

  Raises:
    MediaError: too few windows with a face to score every shift.
  """
  from modeformer_jax.inference import audio_windows

  if model.scoring == "pairwise":
    raise UserError(f"{model.config.model.name} is a cross-modal classifier: it scores (video, audio) pairs "
                    "and has no embeddings for offset detection; evaluate it with `modeformer eval`")
  tick = time.perf_counter()
  spec = model.spec
  path = inputs.path
  # model_inputs cut the audio to the frames, so L = T (SPEC 5); SyncNet's MFCC windows reach one frame less far.
  count = spec.num_windows(inputs.num_frames, len(inputs.features))
  audio = model.embed_audio(audio_windows(inputs.features, count, spec))
  embedded = [(face, _embed_face(model, face, count, audio.shape[1])) for face in inputs.faces]
  model_seconds = time.perf_counter() - tick

  tick = time.perf_counter()
  distances_of = lambda video, audio, first: _distances(model, video, audio, first, max_offset=max_offset)[1]
  scores = [_face_scores(model, face, video, audio, count, max_offset) for face, video in embedded]
  found = None
  if timeline is not None or len(scores) > 1:
    found = timelines.build(scores, audio, timeline or timelines.TimelineOptions(), float(spec.fps), max_offset,
                            spec.video_frames, distances_of)
    chosen = found.window_face
  else:
    chosen = np.zeros(count, int)
  # [L, 2S+1], column j = audio moved by j - S; higher = better (minus the distance for Euclidean models).
  sims = np.full((count, 2 * max_offset + 1), np.nan, np.float32)
  distances = np.full((count, 2 * max_offset + 1), np.nan)
  for k, face in enumerate(scores):
    sims[chosen == k], distances[chosen == k] = face.sims[chosen == k], face.distances[chosen == k]
  window_ok = ~np.isnan(sims).all(axis=1)
  valid = inputs.valid
  if not np.isfinite(sims).any(axis=0).all():
    raise MediaError(path, f"face found in {valid.mean():.0%} of the frames: too few 5-frame windows "
                     f"with a face throughout ({int(window_ok.sum())}) to score offsets up to +-{max_offset}")
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
      face_coverage=float(valid.mean()), num_tracks=inputs.num_tracks,
      face_mode="centered" if inputs.face_centered else "detected", face_px=inputs.face_px,
      small_face=inputs.face_px < with_face_defaults(model.config.preprocess).small_face_px,
      num_frames=inputs.num_frames, info=inputs.info, timings=timings, crop_size=inputs.faces[0].crops.shape[1],
      tracks=[] if inputs.face_centered else [(face.start, face.boxes) for face in inputs.faces],
      timeline=found, timeline_shown=timeline is not None)


def _embed_face(model: SyncModel, face: FaceCrops, count: int, width: int) -> np.ndarray:
  """Video embeddings [n, D] of the face's windows: those starting at face.start .. face.start + n - 1, the
  ones wholly within its frames and the file's L = count windows."""
  from modeformer_jax.inference import video_windows

  spec = model.spec
  n = max(0, min(face.stop - spec.video_frames + 1, count) - face.start)
  if n == 0:
    return np.zeros((0, width), np.float32)
  return np.concatenate([
      model.embed_video(video_windows(face.crops[s:s + _VIDEO_CHUNK + spec.video_frames - 1],
                                      min(_VIDEO_CHUNK, n - s), spec))
      for s in range(0, n, _VIDEO_CHUNK)])


def _distances(model: SyncModel, video: np.ndarray, audio: np.ndarray, first: int, *,
               max_offset: int) -> tuple[np.ndarray, np.ndarray]:
  """(similarities float32 [n, 2S+1], distances float64 [n, 2S+1]) of video windows first .. first + n - 1
  against the audio, as `score` documents."""
  from modeformer_jax.inference import offset_similarities

  sims = offset_similarities(video, audio, max_offset, model.scoring, start=first)
  if model.syncnet_compat:
    return sims, syncnet_metrics.padded_distances(video, audio, max_offset, start=first)
  if model.scoring == "euclidean":
    return sims, -sims.astype(np.float64)
  return sims, syncnet_metrics.similarity_to_distance(sims)


def _face_scores(model: SyncModel, face: FaceCrops, video: np.ndarray, audio: np.ndarray, count: int,
                 max_offset: int) -> timelines.FaceScores:
  """One face's windows scored over the whole file (NaN rows where it is not on all 5 frames)."""
  first, n = face.start, len(video)
  ok = np.lib.stride_tricks.sliding_window_view(face.valid, model.spec.video_frames).all(axis=1)[:n]
  sims = np.full((count, 2 * max_offset + 1), np.nan, np.float32)
  distances = np.full((count, 2 * max_offset + 1), np.nan)
  if n:
    part_sims, part_distances = _distances(model, video, audio, first, max_offset=max_offset)
    part_sims[~ok], part_distances[~ok] = np.nan, np.nan
    sims[first:first + n], distances[first:first + n] = part_sims, part_distances
  return timelines.FaceScores(first=first, video=video, ok=ok, sims=sims, distances=distances)


def detect(model: SyncModel, path: str, *, face_centered: bool = False, max_offset: int = 15) -> SyncResult:
  """model_inputs + score in this process: one file's report."""
  return score(model, model_inputs(path, model.config.preprocess, face_centered=face_centered,
                                   max_offset=max_offset), max_offset)
