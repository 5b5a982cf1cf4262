"""MFCCs exactly as python_speech_features.mfcc computes them with its defaults: SyncNet's audio front-end.

syncnet_python reads the 16 kHz 16-bit WAV with scipy (int16 values, no scaling) and calls
python_speech_features.mfcc(audio, 16000): pre-emphasis 0.97 -> 25 ms frames every 10 ms (rectangular window,
the last frame zero-padded) -> |rfft 512|^2 / 512 -> 26 triangular mel filters over 0..8 kHz -> log -> DCT-II
(orthonormal), first 13 -> sinusoidal lifter 22 -> coefficient 0 replaced by the log frame energy. Every value
is a field of the preprocess config (configs/syncnet.py), defaulting to that library's defaults.

`audio_features` picks the front-end a preprocess config names, so data preparation, the synthetic source and
offset detection compute whatever the model was trained on.
"""

from __future__ import annotations

import decimal
import functools

import numpy as np

from modeformer_jax.media.logmel import log_mel

# int16 full scale: float audio in [-1, 1] (our decoders' output) times this gives the WAV's int16 values.
INT16_SCALE = 32768.0


def mfcc(audio: np.ndarray, cfg) -> np.ndarray:
  """MFCCs of mono audio.

  Args:
    audio: [S] mono at cfg.sample_rate; integer samples are taken as they are (int16 WAV values), floats as
      [-1, 1] and scaled by 32768 so both give syncnet_python's numbers.
    cfg: the preprocess config: sample_rate, mfcc_winlen, mfcc_winstep (seconds), mfcc_numcep, mfcc_nfilt,
      mfcc_nfft, mfcc_lowfreq, mfcc_highfreq (0 = sample_rate / 2), mfcc_preemph, mfcc_ceplifter,
      mfcc_append_energy.

  Returns:
    float32 [M, numcep], time-major; M = 1 + ceil((S - frame_len) / frame_step) (1 if S <= frame_len), the
    last frame zero-padded past the end, as python_speech_features.sigproc.framesig.
  """
  x = np.asarray(audio)
  if x.ndim != 1:
    raise ValueError(f"mfcc wants mono audio [S], got shape {x.shape}")
  x = x.astype(np.float64) * (1.0 if np.issubdtype(x.dtype, np.integer) else INT16_SCALE)
  rate = cfg.sample_rate
  x = np.append(x[:1], x[1:] - cfg.mfcc_preemph * x[:-1])
  frame_len, frame_step = _round_half_up(cfg.mfcc_winlen * rate), _round_half_up(cfg.mfcc_winstep * rate)
  num = 1 if len(x) <= frame_len else 1 + int(np.ceil((len(x) - frame_len) / frame_step))
  x = np.concatenate([x, np.zeros((num - 1) * frame_step + frame_len - len(x))])
  frames = x[np.arange(num)[:, None] * frame_step + np.arange(frame_len)[None]]
  power = np.abs(np.fft.rfft(frames, cfg.mfcc_nfft)) ** 2 / cfg.mfcc_nfft  # [M, nfft // 2 + 1]
  energy = power.sum(axis=1)
  tiny = np.finfo(float).eps  # the library's guard against log(0), kept for identical silence values
  energy = np.where(energy == 0, tiny, energy)
  fbank = power @ _filterbank(cfg.mfcc_nfilt, cfg.mfcc_nfft, rate, float(cfg.mfcc_lowfreq),
                              float(cfg.mfcc_highfreq or rate / 2)).T
  fbank = np.log(np.where(fbank == 0, tiny, fbank))
  cep = (fbank @ _dct_matrix(cfg.mfcc_nfilt).T)[:, :cfg.mfcc_numcep]
  n = np.arange(cep.shape[1])
  if cfg.mfcc_ceplifter > 0:
    cep = cep * (1 + cfg.mfcc_ceplifter / 2.0 * np.sin(np.pi * n / cfg.mfcc_ceplifter))
  if cfg.mfcc_append_energy:
    cep[:, 0] = np.log(energy)
  return cep.astype(np.float32)


def audio_features(audio: np.ndarray, cfg) -> np.ndarray:
  """The audio front-end cfg.audio_features names: "logmel" (ModEFormer, VocaLiST) [M, 80] or "mfcc" (SyncNet)
  [M, 13], time-major float32. Configs without the field are log-mel ones (written before it existed)."""
  kind = cfg.get("audio_features", "logmel")
  if kind == "mfcc":
    return mfcc(audio, cfg)
  if kind == "logmel":
    return log_mel(audio, cfg)
  raise ValueError(f"preprocess.audio_features must be 'logmel' or 'mfcc', got {kind!r}")


def _round_half_up(x: float) -> int:
  """python_speech_features' rounding of frame lengths in samples (decimal ROUND_HALF_UP)."""
  return int(decimal.Decimal(x).quantize(decimal.Decimal("1"), rounding=decimal.ROUND_HALF_UP))


@functools.lru_cache(maxsize=8)
def _filterbank(nfilt: int, nfft: int, rate: int, low: float, high: float) -> np.ndarray:
  """[nfilt, nfft // 2 + 1] triangles between mel-spaced FFT bins, as python_speech_features.get_filterbanks."""
  to_mel = lambda hz: 2595 * np.log10(1 + hz / 700.0)
  to_hz = lambda mel: 700 * (10 ** (mel / 2595.0) - 1)
  bins = np.floor((nfft + 1) * to_hz(np.linspace(to_mel(low), to_mel(high), nfilt + 2)) / rate)
  k = np.arange(nfft // 2 + 1)[None]
  lo, mid, hi = bins[:-2, None], bins[1:-1, None], bins[2:, None]
  with np.errstate(divide="ignore", invalid="ignore"):  # empty triangles (equal bins) select no k at all
    rise = np.where((k >= lo) & (k < mid), (k - lo) / (mid - lo), 0.0)
    fall = np.where((k >= mid) & (k < hi), (hi - k) / (hi - mid), 0.0)
  return rise + fall


@functools.lru_cache(maxsize=8)
def _dct_matrix(n: int) -> np.ndarray:
  """[n, n] orthonormal DCT-II (scipy.fft.dct(type=2, norm='ortho') as a matrix): row k is coefficient k."""
  k, i = np.arange(n)[:, None], np.arange(n)[None]
  m = np.cos(np.pi * k * (2 * i + 1) / (2 * n)) * np.sqrt(2.0 / n)
  m[0] /= np.sqrt(2.0)
  return m
