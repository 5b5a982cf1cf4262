"""Read any audio/video file PyAV opens into constant-rate RGB frames and mono float audio.

Both streams are placed on one timeline whose zero is the earlier of the two streams' start times, so that
their relative offset (what a sync model measures) survives: a stream that starts later gets its first frame
repeated / leading silence.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

import av
import numpy as np

from modeformer_jax.cpu_cores import thread_budget
from modeformer_jax.errors import UserError
from modeformer_jax.media.frames import FrameChunk, rotation, to_rgb

# Tolerance when comparing output times with source timestamps: a source frame stamped exactly at an output
# time must win over its predecessor despite float rounding (1 us is far below any frame interval).
_TIME_EPS = 1e-6


class MediaError(UserError):
  """A media file that cannot be used; str is one line, `<path>: <reason>`."""

  def __init__(self, path: str | os.PathLike, reason: str):
    self.path = os.fspath(path)
    self.reason = " ".join(str(reason).split())  # one line, whatever FFmpeg said
    super().__init__(f"{self.path}: {self.reason}")


@dataclasses.dataclass
class Media:
  """Decoded media on a shared timeline (second 0 = the earlier stream start).

  `video_seconds` / `audio_seconds` are where each stream ends on that timeline (its duration, when both
  start together); taken from the container when the stream was not decoded, 0.0 when it is absent.
  """
  path: str
  # uint8 [T, H, W, 3] RGB at exactly `fps`; None when video was not requested or went to on_frames instead
  frames: np.ndarray | None
  num_frames: int  # T (0 without video)
  audio: np.ndarray | None  # float32 [S] mono in [-1, 1] at `sample_rate`; None when audio was not requested
  fps: float
  sample_rate: int
  source_fps: float  # the video stream's average rate (0.0 without video)
  source_sample_rate: int  # 0 without audio
  source_channels: int  # 0 without audio
  rotation: int  # degrees counter-clockwise the frames were turned to stand upright (display matrix), 0..270
  audio_streams: int  # audio streams in the file; the default one (else the first) was decoded
  video_seconds: float
  audio_seconds: float

  @property
  def av_diff_seconds(self) -> float:
    """Audio end minus video end, in seconds (positive: audio runs longer)."""
    return self.audio_seconds - self.video_seconds


def read_media(path: str | os.PathLike,
               *,
               fps: float = 25.0,
               sample_rate: int = 16000,
               need_video: bool = True,
               need_audio: bool = True,
               on_frames: Callable[[FrameChunk], None] | None = None,
               chunk_mb: float = 1024.0) -> Media:
  """Decodes a file in one demuxing pass.

  Video is resampled by timestamp: output frame i (time i / fps) is the source frame whose presentation
  interval covers that time, which handles any constant or variable source rate. Output frame count is
  round(video end * fps). Audio is resampled and downmixed (channel mean) by FFmpeg's swresample.

  With on_frames, the video is not kept: it is called with consecutive chunks of the output frames, in order,
  each a FrameChunk of n frames [n, H, W, 3] whose RGB would take at most chunk_mb megabytes (and at least one
  frame), so a long or high-resolution file is processed in bounded memory (1080p is about 9 GB a minute). A
  FrameChunk holds the decoded (YUV) frames and converts a frame to RGB when it is read, into memory the
  process reuses: a chunk of fresh RGB memory cost more than decoding (page faults on first write). The
  chunk is only valid while on_frames runs: copy what you keep. Media.frames is then None and
  Media.num_frames counts the frames delivered. on_frames runs on a thread of its own, one chunk at a time and in
  order, while the next chunk decodes on half the CPU cores (on the 2-core dev machine, sync of a 1080p wide shot
  with BlazeFace: decoding and detection overlapped, 0.89x the time outside the model; with the decoder on all
  cores as well, oversubscribed, 1.14x); read_media returns when the last call has, and raises what a call raised.

  Raises:
    MediaError: missing / unreadable / non-media / corrupt file, a needed stream is absent, or a needed stream
      yields nothing decodable.
  """
  if fps <= 0 or sample_rate <= 0:
    raise ValueError(f"fps and sample_rate must be positive, got {fps} and {sample_rate}")
  if not 0 < chunk_mb < np.inf:
    raise ValueError(f"chunk_mb must be positive and finite, got {chunk_mb}")
  path = os.fspath(path)
  with _open(path) as container:
    vstream = container.streams.video[0] if container.streams.video else None
    astream = _main_audio(container.streams.audio)
    if need_video and vstream is None:
      raise MediaError(path, "no video stream")
    if need_audio and astream is None:
      raise MediaError(path, "no audio stream")
    origin = min((t for t in (_stream_start(vstream), _stream_start(astream)) if t is not None), default=0.0)

    video = _VideoSampler(vstream, fps, origin, on_frames, chunk_mb) if need_video else None
    audio = _AudioCollector(astream, sample_rate) if need_audio else None
    sinks = {s: sink for s, sink in ((vstream, video), (astream, audio)) if sink}
    if video:
      vstream.thread_type = "AUTO"
      # With on_frames, half the budget decodes while the other half works on the last chunk.
      vstream.thread_count = max(1, thread_budget() // 2) if on_frames is not None else thread_budget()
    try:
      if sinks:
        _decode(container, sinks, path)
      frames, num_frames, video_seconds = video.finish(path) if video else (None, 0, _stream_end(vstream, origin))
    finally:
      if video:
        video.close()
    wave, audio_seconds = audio.finish(path, origin) if audio else (None, _stream_end(astream, origin))
    return Media(
        path=path,
        frames=frames,
        num_frames=num_frames,
        audio=wave,
        fps=fps,
        sample_rate=sample_rate,
        source_fps=float(vstream.average_rate or 0.0) if vstream else 0.0,
        source_sample_rate=int(astream.sample_rate or 0) if astream else 0,
        source_channels=int(astream.channels or 0) if astream else 0,
        rotation=video.rotation if video else 0,
        audio_streams=len(container.streams.audio),
        video_seconds=video_seconds,
        audio_seconds=audio_seconds,
    )


def _main_audio(streams):
  """The audio stream a player would play: the one marked default, else the first (None without audio)."""
  default = [s for s in streams if s.disposition & av.stream.Disposition.default]
  return (default or list(streams) or [None])[0]


def _decode(container, sinks: dict, path: str) -> None:
  """Feeds every decoded frame of the sinks' streams to its sink, in one demuxing pass."""
  skipped = {}
  try:
    for packet in container.demux(list(sinks)):
      try:
        frames = packet.decode()
      except av.error.FFmpegError as e:
        # A damaged packet costs its own frames, not the file: the sinks place what follows by its
        # timestamp. A file with nothing decodable fails in the sink's finish().
        skipped.setdefault(packet.stream.type, [0, e])[0] += 1
        continue
      for frame in frames:
        sinks[packet.stream].add(frame)
  except av.error.FFmpegError as e:
    raise MediaError(path, f"read error ({getattr(e, 'strerror', None) or e})") from None
  for kind, (count, error) in skipped.items():
    logging.warning("%s: skipped %d undecodable %s packet(s), first error: %s", path, count, kind, error)


def probe(path: str | os.PathLike) -> dict[str, Any]:
  """Container and stream metadata from the headers, without decoding.

  Returns:
    {"path", "format", "duration" (s or None), "start_time" (s or None), "bit_rate", "has_video", "has_audio",
     "streams": [{"index", "type", "codec", "start_time", "duration", "frames", and per type:
                  video "width", "height", "average_rate", "pix_fmt"; audio "sample_rate", "channels",
                  "layout", "sample_format"}]}
  """
  path = os.fspath(path)
  with _open(path) as container:
    streams = []
    for s in container.streams:
      info = {
          "index": s.index,
          "type": s.type,
          "codec": s.codec_context.name if s.codec_context else None,
          "start_time": _stream_start(s),
          "duration": float(s.duration * s.time_base) if s.duration is not None and s.time_base else None,
          "frames": int(s.frames),
      }
      if s.type == "video":
        info.update(width=s.width, height=s.height, pix_fmt=s.pix_fmt,
                    average_rate=float(s.average_rate) if s.average_rate else None)
      elif s.type == "audio":
        info.update(sample_rate=s.sample_rate, channels=s.channels, layout=s.layout.name,
                    sample_format=s.format.name if s.format else None)
      streams.append(info)
    micro = 1 / av.time_base
    return {
        "path": path,
        "format": container.format.name,
        "duration": container.duration * micro if container.duration is not None else None,
        "start_time": container.start_time * micro if container.start_time is not None else None,
        "bit_rate": container.bit_rate,
        "has_video": bool(container.streams.video),
        "has_audio": bool(container.streams.audio),
        "streams": streams,
    }


def _open(path: str):
  """av.open with every failure turned into a one-line MediaError."""
  if not os.path.exists(path):
    raise MediaError(path, "file not found")
  if os.path.isdir(path):
    raise MediaError(path, "is a directory, not a media file")
  try:
    return av.open(path)
  except PermissionError:
    raise MediaError(path, "permission denied") from None
  except (av.error.FFmpegError, OSError) as e:
    reason = getattr(e, "strerror", None) or str(e)
    raise MediaError(path, f"not a media file or corrupt ({reason})") from None


def _stream_start(stream) -> float | None:
  if stream is None or stream.start_time is None or not stream.time_base:
    return None
  return float(stream.start_time * stream.time_base)


def _stream_end(stream, origin: float) -> float:
  """End of an undecoded stream on the shared timeline, from the headers (0.0 when unknown or absent)."""
  if stream is None or stream.duration is None or not stream.time_base:
    return 0.0
  return (_stream_start(stream) or 0.0) + float(stream.duration * stream.time_base) - origin


class _VideoSampler:
  """Streams decoded frames into a constant-rate sequence, converting only the source frames it keeps.

  Output frames are kept as RGB, or (with on_frames) collected decoded into a chunk that is handed to on_frames
  as a FrameChunk whenever its frames would take chunk_mb megabytes of RGB.
  """

  def __init__(self, stream, fps: float, origin: float, on_frames: Callable[[FrameChunk], None] | None = None,
               chunk_mb: float = 1024.0):
    self._fps = fps
    self._origin = origin
    rate = stream.average_rate or stream.guessed_rate
    self._step = 1.0 / float(rate) if rate else 1.0 / fps  # last known frame interval
    self._on_frames = on_frames
    # on_frames runs here, one chunk at a time, while the next one decodes; _pending is the call in progress.
    self._worker = concurrent.futures.ThreadPoolExecutor(1, "on_frames") if on_frames else None
    self._pending: concurrent.futures.Future | None = None
    self._chunk_bytes = chunk_mb * 2 ** 20
    self._kept: list[np.ndarray] = []  # every output frame, without on_frames
    self._chunk: list = []  # with on_frames: the decoded frames of the chunk being filled
    self._chunk_frames = 0  # frames a chunk holds: chunk_mb of RGB
    self._count = 0  # output frames so far
    self._delivered = 0  # of which handed to on_frames
    self._prev = None  # last source frame: it covers output times from its timestamp until the next one's
    self._prev_time = None
    self._prev_duration = None
    self._rgb_frame = None
    self._rgb = None
    self.rotation = 0  # of the last converted frame, degrees counter-clockwise

  def add(self, frame) -> None:
    if frame.pts is not None and frame.time_base:
      time = float(frame.pts * frame.time_base) - self._origin
    else:
      time = self._prev_time + self._step if self._prev_time is not None else 0.0
    if self._prev_time is not None:
      if time <= self._prev_time:
        return  # duplicate or out-of-order timestamp: the earlier frame keeps its interval
      self._step = time - self._prev_time
    # Output times before this frame show the previous frame (or this one, if the stream starts late).
    holder = self._prev if self._prev is not None else frame
    while self._count / self._fps < time - _TIME_EPS:
      self._append(holder)
    self._prev, self._prev_time = frame, time
    self._prev_duration = (float(frame.duration * frame.time_base) if frame.duration and frame.time_base
                           else None)

  def _to_rgb(self, frame) -> np.ndarray:
    if self._rgb_frame is not frame:  # repeated frames share one array
      self._rgb_frame, self._rgb = frame, to_rgb(frame)
    return self._rgb

  def _append(self, frame) -> None:
    self._count += 1
    self.rotation = rotation(frame)
    if self._on_frames is None:
      self._kept.append(self._to_rgb(frame))
      return
    if not self._chunk_frames:
      self._chunk_frames = max(1, int(self._chunk_bytes // (frame.width * frame.height * 3)))
    if len(self._chunk) > self._chunk_frames:
      # The newest frame is held back, as finish() may drop one frame past the end.
      self._deliver(self._chunk[:-1])
      self._chunk = self._chunk[-1:]
    self._chunk.append(frame)

  def _deliver(self, frames: list) -> None:
    self._wait()
    self._pending = self._worker.submit(self._on_frames, FrameChunk(frames))
    self._delivered += len(frames)

  def _wait(self) -> None:
    """Waits for the on_frames call in progress; raises what it raised."""
    pending, self._pending = self._pending, None
    if pending is not None:
      pending.result()

  def close(self) -> None:
    """Lets the on_frames call in progress end (after an error elsewhere: its result is not wanted)."""
    if self._worker is not None:
      self._worker.shutdown(wait=True)

  def finish(self, path: str) -> tuple[np.ndarray | None, int, float]:
    """Returns (uint8 [T, H, W, 3] or None with on_frames, T, video end in seconds); T = round(end * fps)."""
    if self._prev is None:
      raise MediaError(path, "no decodable video frames")
    end = self._prev_time + (self._prev_duration or self._step)
    count = max(1, round(end * self._fps))
    while self._count < count:
      self._append(self._prev)
    # Frames past `count` (a last source frame with a short duration) are dropped.
    if self._on_frames is not None:
      keep = self._chunk[:count - self._delivered]
      for lo in range(0, len(keep), self._chunk_frames):
        self._deliver(keep[lo:lo + self._chunk_frames])
      self._wait()
      self._chunk = []
      return None, count, end
    # Copying frame by frame frees each list entry as it goes: the peak is one copy of the video, not two.
    frames = np.empty((count, *self._kept[0].shape), np.uint8)
    for i in range(count):
      frames[i], self._kept[i] = self._kept[i], None
    self._kept = []
    return frames, count, end


class _AudioCollector:
  """Resamples decoded audio to mono float32 at the target rate."""

  def __init__(self, stream, sample_rate: int):
    self._stream = stream
    self._rate = sample_rate
    # rematrix_maxval 1 makes swresample's downmix a channel mean; its default (1/sqrt(2) per stereo
    # channel) sums to 1.41 and can clip.
    self._resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate,
                                        options={"rematrix_maxval": "1.0"})
    self._chunks: list[np.ndarray] = []
    self._start = None  # seconds, the first frame's timestamp
    self._next = 0  # source sample index where the next frame should start

  def add(self, frame) -> None:
    if frame.pts is not None and frame.time_base:
      first = round(frame.pts * frame.time_base * frame.sample_rate)  # in source samples
      if self._start is None:
        self._start = float(frame.pts * frame.time_base)
      elif first - self._next > frame.sample_rate // 1000:
        # Samples missing (an undecodable packet, a gap in the stream): silence keeps later audio in place.
        self._resample(self._silence_like(frame, first - self._next))
      self._next = first + frame.samples
    self._resample(frame)

  def _resample(self, frame) -> None:
    self._chunks.extend(f.to_ndarray()[0] for f in self._resampler.resample(frame))

  @staticmethod
  def _silence_like(frame, samples: int):
    """An AudioFrame of `samples` zeros in frame's sample format and layout."""
    like = frame.to_ndarray()  # planar [C, n] or packed [1, n * C]
    zeros = np.full((like.shape[0], like.shape[1] // frame.samples * samples),
                    128 if like.dtype == np.uint8 else 0, like.dtype)  # u8 audio is centred on 128
    silence = av.AudioFrame.from_ndarray(zeros, format=frame.format.name, layout=frame.layout.name)
    silence.sample_rate = frame.sample_rate
    return silence

  def finish(self, path: str, origin: float) -> tuple[np.ndarray, float]:
    """Returns (float32 [S], audio end in seconds); S = round(end * sample_rate)."""
    self._resample(None)
    wave = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
    if not wave.size:
      raise MediaError(path, "no decodable audio samples")
    # Decoders emit whole codec frames: AAC's padded last frame would add up to 1024 samples of silence.
    # The header duration (which honours the mp4 edit list) says where the audio really ends.
    if self._stream.duration is not None and self._stream.time_base:
      wave = wave[:round(float(self._stream.duration * self._stream.time_base) * self._rate)]
    start = self._start if self._start is not None else (_stream_start(self._stream) or 0.0)
    shift = round((start - origin) * self._rate)
    wave = np.pad(wave, (shift, 0)) if shift > 0 else wave[-shift:]
    return np.clip(wave, -1.0, 1.0, out=wave).astype(np.float32, copy=False), wave.size / self._rate
