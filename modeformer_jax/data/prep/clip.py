"""One clip -> its record and report line (process_clip): decode, cut audio and video to a common length, face
boxes, crops (media/crops.py, the front end `sync` uses too), log-mel. Pure and picklable, so the local process
pool and the Beam pipeline run the same code; a bad clip is a report line with its skip reason (REASONS), never an
exception."""

from __future__ import annotations

import os
import time
import traceback
from typing import Any

import numpy as np

from modeformer_jax.data import lrs_layout
from modeformer_jax.data.lrs_layout import Clip
from modeformer_jax.data.prep.options import PrepOptions
from modeformer_jax.data.records import encode_jpeg_frames
from modeformer_jax.data.window_store import window_frames
from modeformer_jax.media import faces
from modeformer_jax.media.crops import face_crops
from modeformer_jax.media.decode import MediaError, read_media
from modeformer_jax.media.logmel import log_mel
from modeformer_jax.media.preprocess_config import with_face_defaults

REASONS = ("missing", "unreadable", "corrupt", "no_video", "no_audio", "too_short", "av_mismatch", "bad_txt",
           "no_face", "error")
# MediaError reasons (modeformer_jax.media.decode) -> skip reason; the first matching prefix wins.
_MEDIA_REASONS = (("file not found", "missing"), ("permission denied", "unreadable"),
                  ("no video stream", "no_video"), ("no decodable video", "no_video"),
                  ("no audio stream", "no_audio"), ("no decodable audio", "no_audio"))
TIMING_KEYS = ("decode", "faces", "crop", "mel", "encode", "save")
WINDOW_FRAMES = "window_frames"


class _Skip(Exception):

  def __init__(self, reason: str, detail: str):
    super().__init__(f"{reason}: {detail}")
    self.reason, self.detail = reason, detail


def _media_skip(error) -> _Skip:
  for prefix, reason in _MEDIA_REASONS:
    if error.reason.startswith(prefix):
      return _Skip(reason, error.reason)
  return _Skip("corrupt", error.reason)


def process_clip(clip: Clip, options: PrepOptions) -> tuple[dict[str, Any] | None, dict[str, Any]]:
  """Prepares one clip: (TFDS example or None when skipped, report line). Never raises for a bad clip.

  The example holds num_frames = T, crops uint8 [T, 96, 96, 3] (or crops_jpeg object [T]), audio int16
  [T * 640], mel float16 [1 + 3.2 T, 80], boxes float32 [T, 4] and the text fields of tfds_builder.features,
  and WINDOW_FRAMES for the training-window store (window_store.window_frames; not a TFDS feature).
  """
  report = {"id": clip.id, "split": clip.split, "source": clip.source, "status": "skipped", "reason": None,
            "detail": None, "warnings": [], "num_frames": 0, "seconds": 0.0, "av_diff_seconds": None,
            "timings": {}}
  try:
    example = _process(clip, options, report)
  except _Skip as e:
    report.update(reason=e.reason, detail=e.detail)
    return None, report
  except Exception as e:  # A bad clip must not end a run over 100k clips; the report keeps the evidence.
    report.update(reason="error", detail="".join(traceback.format_exception_only(e)).strip())
    return None, report
  report.update(status="ok")
  return example, report


def _process(clip: Clip, options: PrepOptions, report: dict) -> dict[str, Any]:
  cfg = options.preprocess
  timings = report["timings"]
  tick = time.perf_counter()

  def lap(name):
    nonlocal tick
    now = time.perf_counter()
    timings[name] = timings.get(name, 0.0) + now - tick
    tick = now

  for path in (clip.video, clip.txt):
    if path is not None and os.path.exists(path) and not os.access(path, os.R_OK):
      raise _Skip("unreadable", f"{path}: permission denied")
  try:
    media = read_media(clip.video, fps=cfg.fps, sample_rate=cfg.sample_rate)
  except MediaError as e:
    raise _media_skip(e) from None
  lap("decode")
  report.update(av_diff_seconds=round(float(media.av_diff_seconds), 4), source_fps=round(media.source_fps, 3),
                source_sample_rate=media.source_sample_rate, source_channels=media.source_channels)
  if abs(media.av_diff_seconds) > options.max_av_diff:
    raise _Skip("av_mismatch", f"audio {media.audio_seconds:.3f} s vs video {media.video_seconds:.3f} s")

  # Cut both streams to the frames that have audio, so mel window int(80 f / 25) exists for every frame.
  hop = int(cfg.sample_rate // cfg.fps)
  num_frames = min(len(media.frames), len(media.audio) // hop)
  num_mel = 1 + num_frames * hop // cfg.hop_length
  if num_frames < options.min_frames or num_mel < options.min_mel_frames:
    raise _Skip("too_short", f"{num_frames} frames / {num_mel} mel frames after cutting audio and video "
                f"to a common length (need {options.min_frames} / {options.min_mel_frames})")
  frames = media.frames[:num_frames]
  audio = media.audio[:num_frames * hop]
  height, width = frames.shape[1:3]

  transcript = lrs_layout.read_transcript(clip.txt)
  centered = clip.boxes == lrs_layout.BOXES_FIXED
  if centered:  # LRS2 frames are face-centred already: the fixed box is the crop itself.
    boxes = faces.fixed_boxes(num_frames, height, width, cfg.lrs2_box)
  else:
    boxes = None
    if clip.boxes == lrs_layout.BOXES_TXT and clip.txt is None:
      report["warnings"].append("no .txt beside the video: transcript empty, boxes from the face detector")
    elif clip.boxes == lrs_layout.BOXES_TXT:
      try:
        boxes = faces.read_lrs3_boxes(clip.txt, num_frames, width, height)
      except MediaError as e:
        raise _Skip("bad_txt", e.reason) from None
      if boxes is None:
        report["warnings"].append("no FRAME table in the .txt: boxes from the face detector")
    if boxes is None:
      track = faces.detect_faces(frames, cfg)
      report["face_coverage"] = round(float(track.coverage), 3)
      if track.coverage < options.min_face_coverage:
        raise _Skip("no_face", f"face found in {track.coverage:.0%} of the frames "
                    f"(need {options.min_face_coverage:.0%})")
      boxes = track.boxes
      face_px = faces.face_height(track)
    else:
      face_px = float(np.median(boxes[:, 3]))
    report["face_px"] = round(face_px, 1)
    small = with_face_defaults(cfg).small_face_px
    if face_px < small:
      report["warnings"].append(f"small face: {face_px:.0f} px tall (under {small} px), its crops mostly upsampled")
  lap("faces")
  crops, squares = face_crops(frames, boxes, cfg, centered=centered)
  lap("crop")
  mel = log_mel(audio, cfg).astype(np.float16)
  lap("mel")
  if options.frame_storage == "jpeg":
    stored = {"crops_jpeg": encode_jpeg_frames(crops, options.jpeg_quality)}
  else:
    stored = {"crops": crops}
  # What the training-window store keeps (data/window_store.py); the shard writer moves it there.
  stored[WINDOW_FRAMES] = window_frames(crops, cfg, options.frame_storage, options.jpeg_quality)
  pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
  lap("encode")
  report.update(num_frames=num_frames, seconds=round(num_frames / cfg.fps, 3))
  return {
      "id": clip.id, "speaker": clip.speaker, "clip": clip.clip, "split": clip.split, "source": clip.source,
      "transcript": transcript, "num_frames": np.int32(num_frames), **stored, "audio": pcm, "mel": mel,
      "boxes": squares, "av_diff_seconds": np.float32(media.av_diff_seconds),
  }

