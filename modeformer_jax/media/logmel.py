"""Log-mel features of SPEC section 1: the Wav2Lip `audio.melspectrogram` pipeline, in plain numpy.

Same numbers as pre-emphasis -> librosa.stft (centred, librosa 0.11's default zero padding, periodic Hann)
-> |.| -> librosa.filters.mel (Slaney) -> dB -> symmetric normalisation, without importing librosa at run
time (its first call compiles numba code for ~15 s, and the Slaney filterbank is a dozen lines).
"""

from __future__ import annotations

import functools

import numpy as np


def log_mel(audio: np.ndarray, cfg) -> np.ndarray:
  """Normalised log-mel spectrogram.

  Args:
    audio: float [S] mono at cfg.sample_rate.
    cfg: the preprocess config (n_fft, win_length, hop_length, n_mels, fmin, fmax, preemphasis,
      ref_level_db, min_level_db, max_abs_value, sample_rate).

  Returns:
    float32 [M, n_mels], time-major, M = 1 + S // hop_length, values in [-max_abs_value, max_abs_value].
  """
  x = np.asarray(audio, np.float64)
  if x.ndim != 1:
    raise ValueError(f"log_mel wants mono audio [S], got shape {x.shape}")
  # y[n] = x[n] - k x[n-1] with x[-1] = 0, i.e. scipy.signal.lfilter([1, -k], [1], x).
  y = x.copy()
  y[1:] -= cfg.preemphasis * x[:-1]
  magnitude = np.abs(_stft(y, cfg.n_fft, cfg.hop_length, cfg.win_length))  # [M, 1 + n_fft // 2]
  mel = magnitude @ _mel_basis(cfg.sample_rate, cfg.n_fft, cfg.n_mels, float(cfg.fmin), float(cfg.fmax)).T
  min_level = 10.0 ** (cfg.min_level_db / 20.0)
  db = 20.0 * np.log10(np.maximum(min_level, mel)) - cfg.ref_level_db
  m = cfg.max_abs_value
  out = np.clip(2 * m * (db - cfg.min_level_db) / -cfg.min_level_db - m, -m, m)
  return out.astype(np.float32)


def mel_frames_covering(video_frames, mel_frames_per_second: int, fps: int):
  """Mel frames of the audio of `video_frames` video frames: ceil(frames * 80 / 25), 16 for the 5-frame window of
  SPEC 1. Integer arithmetic, so exact; works elementwise on integer numpy and jax arrays."""
  return -(-video_frames * mel_frames_per_second // fps)


def mel_window_start(frame: int | np.ndarray, cfg) -> int | np.ndarray:
  """First mel frame of the audio window aligned with the video window starting at `frame` (SPEC 1).

  int(80 f / 25) in integer arithmetic, so exact for every f; truncates toward zero like int() for negative
  f too. Works elementwise on integer arrays.
  """
  fps = int(cfg.fps)
  if fps != cfg.fps:
    raise ValueError(f"mel_window_start needs an integer fps, got {cfg.fps}")
  magnitude = abs(frame) * cfg.mel_frames_per_second // fps
  return np.where(frame < 0, -magnitude, magnitude) if isinstance(frame, np.ndarray) else (
      -magnitude if frame < 0 else magnitude)


def _stft(y: np.ndarray, n_fft: int, hop: int, win_length: int) -> np.ndarray:
  """librosa.stft(y, n_fft, hop, win_length, window="hann", center=True, pad_mode="constant"): [M, F]."""
  padded = np.pad(y, n_fft // 2)  # librosa 0.11 centres with zeros (pad_mode="constant")
  frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]  # [M, n_fft], a view
  return np.fft.rfft(frames * _window(n_fft, win_length), axis=-1)


@functools.lru_cache(maxsize=8)
def _window(n_fft: int, win_length: int) -> np.ndarray:
  """Periodic Hann of win_length, zero-padded to n_fft in the centre (scipy get_window('hann', fftbins=True))."""
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
  left = (n_fft - win_length) // 2
  return np.pad(window, (left, n_fft - win_length - left))


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
  """Slaney's auditory toolbox scale: linear below 1 kHz, logarithmic above (librosa htk=False)."""
  hz = np.asarray(hz, np.float64)
  f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
  linear = hz / f_sp
  log = min_log_hz / f_sp + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
  return np.where(hz >= min_log_hz, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
  f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
  min_log_mel = min_log_hz / f_sp
  linear = f_sp * mel
  log = min_log_hz * np.exp(logstep * (np.maximum(mel, min_log_mel) - min_log_mel))
  return np.where(mel >= min_log_mel, log, linear)


@functools.lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
  """librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax): [n_mels, 1 + n_fft // 2]."""
  fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
  mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
  fdiff = np.diff(mel_freqs)
  ramps = mel_freqs[:, None] - fft_freqs[None, :]
  lower = -ramps[:-2] / fdiff[:-1, None]
  upper = ramps[2:] / fdiff[1:, None]
  weights = np.maximum(0.0, np.minimum(lower, upper))
  weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]  # Slaney area normalisation
  weights.setflags(write=False)
  return weights
