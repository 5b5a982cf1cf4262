"""Write mp4 (or any container PyAV knows by extension) from numpy arrays: H.264 video and AAC audio.

PyAV wheels carry libx264 and the native AAC encoder, so no ffmpeg binary is needed. Files are written to a
temporary name in the destination folder and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np

from modeformer_jax import atomic

# FFmpeg's default layout for each channel count (av_channel_layout_default). 8 channels (7.1) is left out:
# PyAV 18's AudioFrame.from_ndarray indexes past the last plane for it.
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1"}
# The sampling frequencies AAC defines; FFmpeg's encoder refuses any other.
AAC_SAMPLE_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


def _rate(fps: float) -> Fraction:
  # 1001 covers the NTSC rates (30000/1001) while keeping 25 and 30 exact.
  return Fraction(fps).limit_denominator(1001)


def write_video(path: str | os.PathLike,
                frames: np.ndarray | None,
                fps: float = 25.0,
                audio: np.ndarray | None = None,
                sample_rate: int = 16000,
                video_codec: str = "libx264",
                crf: int = 20,
                preset: str = "medium",
                audio_bitrate: int | None = None,
                threads: int = 0) -> int:
  """Encodes frames and/or audio into one file; returns its size in bytes.

  Args:
    path: destination; the container format follows the extension (.mp4, .mkv, .m4a, ...).
    frames: uint8 [T, H, W, 3] RGB, H and W even (yuv420p); None writes an audio-only file.
    fps: frame rate; frame i gets timestamp i / fps.
    audio: float [S] or [S, C] (C <= 7) in [-1, 1]; None writes a video-only file. Sample 0 plays at the
      time of frame 0.
    sample_rate: audio sample rate in Hz, one of AAC_SAMPLE_RATES.
    video_codec: an encoder PyAV knows (libx264, libx265 where built, mpeg4, ...).
    crf: x264/x265 constant rate factor (lower = better quality, bigger file); ignored by other codecs.
    preset: x264/x265 speed preset.
    audio_bitrate: AAC bit rate in bit/s; None lets the encoder pick (about 64 kbit/s per channel).
    threads: encoder threads, 0 = codec default (one process per core already saturates the machine, so
      dataset writers pass 1).
  """
  if frames is None and audio is None:
    raise ValueError(f"{path}: nothing to write (frames and audio are both None)")
  with atomic.replacing(path) as tmp, av.open(tmp, "w") as container:
    vstream = astream = None
    if frames is not None:
      vstream = _add_video(container, frames, fps, video_codec, crf, preset, threads)
    if audio is not None:
      astream = add_audio_stream(container, audio, sample_rate, audio_bitrate)
    if vstream is not None:
      for i, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = i
        container.mux(vstream.encode(frame))
      container.mux(vstream.encode(None))
    if astream is not None:
      encode_audio(container, astream, audio, sample_rate)
  return os.path.getsize(path)


def _add_video(container, frames: np.ndarray, fps: float, codec: str, crf: int, preset: str, threads: int):
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
  _, height, width, _ = frames.shape
  if height % 2 or width % 2:
    raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}")
  options = {"crf": str(crf), "preset": preset} if codec in ("libx264", "libx265") else {}
  stream = container.add_stream(codec, rate=_rate(fps), options=options)
  stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
  stream.codec_context.thread_count = threads
  return stream


def add_audio_stream(container, audio: np.ndarray, sample_rate: int, bitrate: int | None):
  """An AAC stream in `container` for audio [S] or [S, C] at sample_rate (also used by sync's --correct)."""
  channels = 1 if audio.ndim == 1 else audio.shape[1]
  if audio.ndim not in (1, 2) or channels not in _LAYOUTS:
    raise ValueError(f"audio must be [S] or [S, C] with 1 <= C <= 7, got {audio.shape}")
  if sample_rate not in AAC_SAMPLE_RATES:
    raise ValueError(f"AAC takes the sample rates {AAC_SAMPLE_RATES}, got {sample_rate}")
  stream = container.add_stream("aac", rate=sample_rate, layout=_LAYOUTS[channels])
  if bitrate:
    stream.bit_rate = bitrate
  return stream


def encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
  """Encodes all of audio [S] or [S, C] into `stream` (from add_audio_stream) and flushes the encoder."""
  planar = np.ascontiguousarray(np.clip(np.atleast_2d(audio.T if audio.ndim == 2 else audio), -1, 1),
                                dtype=np.float32)  # [C, S]
  ctx = stream.codec_context
  if not ctx.is_open:  # muxing video opens every stream; an audio-only file gets here first
    ctx.open()
  step = ctx.frame_size or planar.shape[1]
  # AAC takes exactly frame_size samples per frame (a shorter last one is allowed); the encoder's priming
  # delay is written as an edit list, so decoders return sample 0 at time 0.
  for start in range(0, planar.shape[1], step):
    frame = av.AudioFrame.from_ndarray(planar[:, start:start + step], format="fltp",
                                       layout=stream.layout.name)
    frame.sample_rate = sample_rate
    frame.pts = start
    container.mux(stream.encode(frame))
  container.mux(stream.encode(None))
