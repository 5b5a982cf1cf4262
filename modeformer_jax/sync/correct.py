"""A copy of a video with its audio moved into sync: video packets copied untouched, audio re-encoded (AAC).

Given the detected AV offset k (> 0: the audio leads, its sound for video frame i is at audio frame i - k),
the copy delays the audio by k frames (k < 0 advances it). A drift found by `sync --timeline` (the offset
growing linearly, k(t) = k0 + r t) is corrected by resampling the audio: output time t plays the source at
t - k(t), read between samples by windowed-sinc interpolation. The audio track keeps its start and end times:
the samples shifted past its end are dropped and the uncovered part at the other end is silence. Only the
first video and first audio stream are kept. `correct_scored` does it for a batch of scored files (`modeformer
sync --correct`), refuses files whose timeline shows a step (no one mapping corrects both sides), and
re-checks every copy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from modeformer_jax import atomic
from modeformer_jax.errors import UserError
from modeformer_jax.media.decode import MediaError
from modeformer_jax.media.encode import AAC_SAMPLE_RATES, add_audio_stream, encode_audio
from modeformer_jax.sync import batch
from modeformer_jax.sync.detect import SyncResult
from modeformer_jax.sync.journal import Journal

if TYPE_CHECKING:  # jax loads only where the model runs
  from modeformer_jax.inference import SyncModel

# Containers that cannot hold AAC audio.
_NO_AAC = (".webm",)
# AAC rate used when the source's rate is not one AAC defines.
_FALLBACK_RATE = 48000
# Most channels the encoder's layouts cover; more are downmixed to stereo.
_MAX_CHANNELS = 7
# Windowed-sinc interpolation for drift correction: taps on each side, Kaiser window shape, output samples
# computed per block (memory: block x 2 x taps x channels values).
_SINC_HALF = 16
_KAISER_BETA = 8.0
_BLOCK = 1 << 15


def write_corrected(src: str, dst: str, offset_frames: float, fps: float = 25.0,
                    drift_ms_per_min: float = 0.0) -> dict:
  """Writes dst = src with the audio delayed by offset_frames / fps + drift_ms_per_min * t / 60000 seconds
  at time t (seconds of the file); returns what was written.

  Video: every packet of the first video stream remuxed byte for byte (no re-encoding, same timestamps).
  Audio: the first audio stream decoded at its own rate and channels, shifted (whole samples) or, with a
  drift, resampled, and encoded as AAC.

  Raises:
    MediaError: unreadable source, no video or audio stream, streams dst's container cannot hold, or dst is
      src.
  """
  src, dst = os.fspath(src), os.fspath(dst)
  if os.path.exists(dst) and os.path.samefile(src, dst):
    raise MediaError(dst, "the corrected copy would overwrite its source")
  if Path(dst).suffix.lower() in _NO_AAC:
    raise MediaError(dst, f"{Path(dst).suffix} cannot hold AAC audio; write .mp4, .mkv or .mov")
  audio, rate, start = _decode_audio(src)
  shift = round(offset_frames / fps * rate)
  # Output sample n plays at time n / rate of the source timeline; it is the source sample that played
  # `shift` samples earlier (with a drift: the delay at that time, between samples).
  first = round(start * rate)
  length = first + audio.shape[1]
  if drift_ms_per_min:
    times = np.arange(length) / rate
    shifted = _interpolate(audio, times * rate - first - (offset_frames / fps + drift_ms_per_min * times / 60_000)
                           * rate)
  else:
    index = np.arange(length) - first - shift
    inside = (index >= 0) & (index < audio.shape[1])
    shifted = np.zeros((audio.shape[0], length), np.float32)
    shifted[:, inside] = audio[:, index[inside]]
  packets = _remux(src, dst, shifted.T, rate)
  return {"path": dst, "shift_frames": round(offset_frames, 3), "shift_ms": round(offset_frames * 1000 / fps, 2)
          if drift_ms_per_min else round(shift / rate * 1000, 2), "drift_ms_per_min": round(drift_ms_per_min, 3),
          "video_packets": packets, "audio_codec": "aac", "sample_rate": rate, "channels": audio.shape[0]}


def _interpolate(audio: np.ndarray, positions: np.ndarray) -> np.ndarray:
  """audio float32 [C, S] read at fractional sample positions [N] (band-limited: Kaiser-windowed sinc over
  2 x _SINC_HALF samples); positions outside the audio read silence: float32 [C, N]."""
  taps = np.arange(-_SINC_HALF + 1, _SINC_HALF + 1)
  out = np.zeros((audio.shape[0], len(positions)), np.float32)
  norm = np.i0(_KAISER_BETA)
  for lo in range(0, len(positions), _BLOCK):
    where = positions[lo:lo + _BLOCK]
    base = np.floor(where).astype(np.int64)
    index = base[:, None] + taps[None]  # [n, taps]
    distance = (where - base)[:, None] - taps[None]
    weights = np.sinc(distance) * np.i0(_KAISER_BETA * np.sqrt(np.clip(1 - (distance / _SINC_HALF) ** 2, 0, 1)))
    weights = (weights / norm).astype(np.float32) * ((index >= 0) & (index < audio.shape[1]))
    samples = audio[:, np.clip(index, 0, audio.shape[1] - 1)]  # [C, n, taps]
    out[:, lo:lo + len(where)] = np.einsum("cnt,nt->cn", samples, weights)
  return out


def _decode_audio(path: str) -> tuple[np.ndarray, int, float]:
  """First audio stream -> (float32 planar [C, S], sample rate, start time in seconds of the file)."""
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise MediaError(path, "no video stream")
      if not container.streams.audio:
        raise MediaError(path, "no audio stream")
      stream = container.streams.audio[0]
      rate = stream.sample_rate if stream.sample_rate in AAC_SAMPLE_RATES else _FALLBACK_RATE
      layout = stream.layout.name if 0 < stream.channels <= _MAX_CHANNELS else "stereo"
      resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
      chunks, start = [], None
      for frame in container.decode(stream):
        if start is None and frame.pts is not None and frame.time_base:
          start = float(frame.pts * frame.time_base)
        chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
      chunks.extend(f.to_ndarray() for f in resampler.resample(None))
      # The codec's padded last frame is not part of the track: the header duration says where it ends.
      end = (round(float(stream.duration * stream.time_base) * rate)
             if stream.duration is not None and stream.time_base else None)
  except av.error.FFmpegError as e:
    raise MediaError(path, f"cannot read ({getattr(e, 'strerror', None) or e})") from None
  if not chunks:
    raise MediaError(path, "no decodable audio samples")
  return np.concatenate(chunks, axis=1)[:, :end], rate, start or 0.0


def _remux(src: str, dst: str, audio: np.ndarray, rate: int) -> int:
  """Writes dst: src's first video stream's packets as they are, plus audio [S, C] as AAC. Returns packets."""
  packets = 0
  try:
    with atomic.replacing(dst) as tmp, av.open(src) as source, av.open(tmp, "w") as out:
      vin = source.streams.video[0]
      vout = out.add_stream_from_template(vin)
      aout = add_audio_stream(out, audio, rate, None)
      for packet in source.demux(vin):
        if packet.dts is None:  # the demuxer's end-of-stream flush packet
          continue
        packet.stream = vout
        out.mux(packet)
        packets += 1
      encode_audio(out, aout, audio, rate)
  except (av.error.FFmpegError, ValueError) as e:
    raise MediaError(dst, f"cannot write the corrected copy ({getattr(e, 'strerror', None) or e})") from None
  return packets


def correct_scored(model: SyncModel, rows: dict[str, dict], copies: dict[str, str], settings: dict,
                   journal: Journal | None = None) -> dict[str, tuple[str, SyncResult | batch.Failure]]:
  """Writes the corrected copies of the scored files that lack one, then re-checks them all (in parallel as the
  inputs were, detect_many with `settings`).

  rows: input path -> summary row (batch.summary_row), updated in place with each copy and its re-check, and
  journaled; copies: input path -> where its copy goes. A row with a timeline trend is corrected by it: a
  drift by resampling, a constant offset by a shift (the file's AV offset, as without a timeline), a step or an
  irregular offset refused (the copy fails with the reason). Returns input path -> (copy path, SyncResult or
  Failure) for every copy written or attempted now.
  """
  written, out = {}, {}
  for path, row in rows.items():
    done = row["corrected_path"] == copies[path] and row["corrected_av_offset_frames"] is not None
    if row["status"] != "ok" or done:
      continue
    dst = copies[path]
    if row["trend_refusal"]:
      out[path] = (dst, batch.Failure(dst, f"refused: {row['trend_refusal']}"))
      continue
    try:
      if row["trend_kind"] == "drift":
        write_corrected(path, dst, row["trend_offset_ms"] * model.spec.fps / 1000, model.spec.fps,
                        drift_ms_per_min=row["drift_ms_per_min"])
      else:
        write_corrected(path, dst, row["av_offset_frames"], model.spec.fps)
      written[path] = dst
    except UserError as e:
      out[path] = (dst, batch.Failure.of(dst, e))
  rechecked = batch.detect_many(model, list(written.values()), desc="re-check", **settings)
  for (src, dst), recheck in zip(written.items(), rechecked):
    out[src] = (dst, recheck)
  for src, (dst, recheck) in out.items():
    rows[src] = batch.with_correction(rows[src], dst, recheck)
    if journal:
      journal.add(rows[src])
  return out
