"""A clip's audio from its articulation track: a harmonic source at the speaker's pitch (with jitter and
intonation) shaped by formants tied to the mouth shape (opening raises F1, rounding lowers F2), band noise for
fricatives and bursts, aspiration and a room noise floor."""

from __future__ import annotations

import numpy as np

from modeformer_jax.data.synth import streams
from modeformer_jax.data.synth.articulation import CHANNEL, CONTROL_RATE, Track
from modeformer_jax.data.synth.speakers import SpeakerStyle


def _bandpass(low: float, high: float, sample_rate: int, taps: int = 101) -> np.ndarray:
  """Windowed-sinc FIR, scaled to unit output variance for white input."""
  n = np.arange(taps) - (taps - 1) / 2
  h = (2 * high / sample_rate * np.sinc(2 * high / sample_rate * n)
       - 2 * low / sample_rate * np.sinc(2 * low / sample_rate * n)) * np.hamming(taps)
  return h / np.sqrt(np.sum(h ** 2))


def _sample_noise(seed: int, stream: int, first: int, length: int, sample_rate: int) -> np.ndarray:
  """White noise at absolute sample indices first .. first + length - 1 (drawn in 1 s blocks)."""
  b0, b1 = first // sample_rate, (first + length) // sample_rate
  white = np.concatenate([streams.generator(seed, stream, b + streams.BLOCK_BASE).standard_normal(sample_rate)
                          for b in range(b0, b1 + 1)])
  return white[first - b0 * sample_rate:][:length]


def _formant_gains(freqs: np.ndarray, open_: np.ndarray, round_: np.ndarray, nasal: np.ndarray,
                   scale: float) -> np.ndarray:
  """Vocal tract magnitude response at freqs [K, J] for mouth shapes [J]: a cascade of 4 resonances."""
  formants = (scale * (260 + 520 * open_),  # opening raises F1
              scale * (2300 - 1100 * round_ - 900 * open_),  # rounding (and opening) lowers F2
              scale * (2750 - 250 * round_),
              np.full_like(open_, scale * 3600))
  widen = 1 + 1.5 * nasal
  gain = np.ones_like(freqs)
  for f, bandwidth in zip(formants, (80, 100, 140, 200)):
    f2 = f ** 2
    gain *= f2 / np.sqrt((f2 - freqs ** 2) ** 2 + (freqs * bandwidth * widen) ** 2)
  # A nasal murmur: the oral formants are damped and little above 500 Hz gets out.
  return gain * ((1 - nasal) + nasal / (1 + (freqs / 500) ** 2))


def render_audio(seed: int, track: Track, style: SpeakerStyle, positions: np.ndarray, sample_rate: int,
                 rng: np.random.Generator) -> np.ndarray:
  """float32 [N] audio: sample n renders the track at absolute time positions[n] / sample_rate.

  positions float64 [N]: first, first + 1, ... for a clip in constant sync (the track's own samples); a drift
  or a step moves them off whole samples or makes them jump. The noise floor and the noise sources follow the
  output samples (from round(positions[0]) on), the speech follows the track at `positions`.
  """
  positions = np.asarray(positions, np.float64)
  length, first = len(positions), int(round(positions[0]))
  t = positions / sample_rate
  top = min(7600.0, 0.45 * sample_rate)  # speech band, and below Nyquist
  # Harmonic amplitudes at a coarse grid of absolute sample indices (every `hop`), linearly interpolated.
  hop = max(1, sample_rate // CONTROL_RATE)
  j = np.arange(int(np.floor(positions.min())) // hop, (int(np.floor(positions.max())) + 1) // hop + 2)
  tj = j * hop / sample_rate
  open_, round_, nasal, voice = (track.at(tj, track.channels[CHANNEL[c]])
                                 for c in ("open", "round", "nasal", "voice"))
  f0j = track.at(tj, track.f0)
  harmonics = int(top // f0j.min())
  k = np.arange(1, harmonics + 1)[:, None]
  freqs = k * f0j[None]
  amps = _formant_gains(freqs, open_, round_, nasal, style.formant_scale) / k
  amps *= np.clip((top - freqs) / 300, 0, 1)
  amps /= np.sqrt(0.5 * np.sum(amps ** 2, axis=0)) + 1e-9  # unit RMS: loudness comes from `voice` alone
  amps *= voice
  pos = (positions - j[0] * hop) / hop
  idx = pos.astype(np.int64)
  frac = pos - idx
  phase = track.at(t, track.phase)
  voiced = np.zeros(length)
  for chunk in range(0, harmonics, 16):
    a = amps[chunk:chunk + 16]
    kk = k[chunk:chunk + 16]
    voiced += np.sum((a[:, idx] * (1 - frac) + a[:, idx + 1] * frac) * np.sin(kk * phase), axis=0)
  # Fricatives and bursts: one white source split into three bands with their own track gains.
  taps = 101
  white = _sample_noise(seed, streams.FRICATION_NOISE, first - taps // 2, length + taps - 1, sample_rate)
  bands = ((300, 1500, "n_lo"), (1500, 3500, "n_mid"), (3500, top, "n_hi"))
  noise = np.zeros(length)
  aspiration = np.zeros(length)
  for low, high, name in bands:
    band = np.convolve(white, _bandpass(low, high, sample_rate, taps), mode="valid")
    noise += band * track.at(t, track.channels[CHANNEL[name]])
    if name != "n_hi":
      aspiration += 0.5 * band
  aspiration *= style.breathiness * 0.4 * track.at(t, track.channels[CHANNEL["voice"]])
  level = rng.uniform(0.05, 0.14)  # this clip's recording level
  speech = level * track.at(t, track.gain) * (voiced + noise + aspiration)
  room = _sample_noise(seed, streams.ROOM_NOISE, first - taps // 2, length + taps - 1, sample_rate)
  room = (0.7 * np.convolve(room, _bandpass(50, 1500, sample_rate, taps), mode="valid")
          + 0.3 * room[taps // 2:][:length])
  floor = level * 10 ** (rng.uniform(-45, -25) / 20)
  return np.clip(speech + floor * room, -1, 1).astype(np.float32)
