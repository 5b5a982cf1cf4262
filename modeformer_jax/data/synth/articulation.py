"""The articulation track that drives a clip's mouth and voice alike, on a 1 kHz control grid.

Words of 1-3 syllables (80-320 ms each, scaled by the speaker's rate) and pauses; within syllables closures,
bursts, fricatives, nasals, glides and vowels. The track sets mouth opening and lip rounding (smoothed as
coarticulation) and the sound sources (voicing, three noise bands, nasality), plus pitch. Lips can close while
the voice goes on (M, B) and open in silence (T, K closures), so energy alone does not give the alignment away."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from modeformer_jax.data.synth import streams
from modeformer_jax.data.synth.speakers import SpeakerStyle

CONTROL_RATE = 1000  # Hz; the articulation track's grid (1 ms steps).

# Track channels.
CHANNELS = ("open", "round", "voice", "n_lo", "n_mid", "n_hi", "nasal", "pitch")
CHANNEL = {name: i for i, name in enumerate(CHANNELS)}

# Vowels: spelling -> (mouth opening, lip rounding).
_VOWELS = {"A": (0.9, 0.05), "E": (0.55, 0.0), "I": (0.28, 0.0), "EE": (0.15, 0.0), "O": (0.6, 0.8),
           "U": (0.22, 0.95), "AU": (0.7, 0.45)}
# Consonants: spelling -> (kind, opening, rounding, voicing, noise level, (lo, mid, hi) noise bands,
# nasality).
# Labials close the lips; T/D/K/G close with the tongue, so the mouth stays ajar in their silence.
_CONSONANTS = {
    "P": ("stop", 0.0, 0.1, 0.0, 0.5, (0.6, 0.3, 0.1), 0.0),
    "B": ("stop", 0.0, 0.1, 0.12, 0.25, (0.6, 0.3, 0.1), 0.0),
    "T": ("stop", 0.15, 0.0, 0.0, 0.5, (0.1, 0.3, 1.0), 0.0),
    "D": ("stop", 0.15, 0.0, 0.12, 0.25, (0.1, 0.3, 1.0), 0.0),
    "K": ("stop", 0.2, 0.2, 0.0, 0.5, (0.4, 1.0, 0.3), 0.0),
    "G": ("stop", 0.2, 0.2, 0.12, 0.25, (0.4, 1.0, 0.3), 0.0),
    "F": ("fric", 0.05, 0.0, 0.0, 0.2, (0.3, 0.5, 0.5), 0.0),
    "V": ("fric", 0.05, 0.0, 0.35, 0.12, (0.3, 0.5, 0.5), 0.0),
    "S": ("fric", 0.12, 0.0, 0.0, 0.45, (0.0, 0.2, 1.0), 0.0),
    "Z": ("fric", 0.12, 0.0, 0.35, 0.25, (0.0, 0.2, 1.0), 0.0),
    "SH": ("fric", 0.15, 0.7, 0.0, 0.4, (0.1, 1.0, 0.5), 0.0),
    "TH": ("fric", 0.15, 0.0, 0.0, 0.15, (0.3, 0.5, 0.5), 0.0),
    "H": ("aspirate", 0.0, 0.0, 0.0, 0.25, (1.0, 0.6, 0.2), 0.0),  # mouth already in the next vowel's shape
    "M": ("nasal", 0.0, 0.1, 0.35, 0.0, (0.0, 0.0, 0.0), 1.0),
    "N": ("nasal", 0.12, 0.0, 0.35, 0.0, (0.0, 0.0, 0.0), 1.0),
    "L": ("glide", 0.25, 0.1, 0.6, 0.0, (0.0, 0.0, 0.0), 0.0),
    "R": ("glide", 0.2, 0.5, 0.6, 0.0, (0.0, 0.0, 0.0), 0.0),
    "W": ("glide", 0.1, 0.95, 0.6, 0.0, (0.0, 0.0, 0.0), 0.0),
    "Y": ("glide", 0.15, 0.0, 0.6, 0.0, (0.0, 0.0, 0.0), 0.0),
}


@dataclasses.dataclass
class _Segment:
  ms: int  # duration
  values: np.ndarray  # [len(CHANNELS)] targets held for the duration


def _values(open_: float, round_: float, voice: float = 0.0, noise: float = 0.0,
            bands: Sequence[float] = (0.0, 0.0, 0.0), nasal: float = 0.0, pitch: float = 0.0) -> np.ndarray:
  return np.array([open_, round_, voice, noise * bands[0], noise * bands[1], noise * bands[2], nasal, pitch])


def _consonant(rng: np.random.Generator, letter: str, ms: int, vowel: tuple[float, float],
               loud: float) -> list[_Segment]:
  kind, open_, round_, voice, noise, bands, nasal = _CONSONANTS[letter]
  if kind == "stop":  # closure, then a 10-25 ms burst into the vowel
    burst = int(min(rng.integers(10, 26), ms // 2))
    closure = _values(open_, round_, voice * loud)
    release = _values(0.5 * (open_ + vowel[0]), round_, voice * loud, noise * loud, bands)
    return [_Segment(ms - burst, closure), _Segment(burst, release)]
  if kind == "aspirate":
    return [_Segment(ms, _values(0.8 * vowel[0], vowel[1], 0.0, noise * loud, bands))]
  return [_Segment(ms, _values(open_, round_, voice * loud, noise * loud, bands, nasal))]


def _word(rng: np.random.Generator, rate: float) -> tuple[str, list[_Segment]]:
  """One word of 1-3 syllables, each (consonant) + vowel (+ final consonant), 80-320 ms / rate."""
  spelling, segments = "", []
  syllables = rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2])
  for s in range(syllables):
    ms = int(rng.uniform(80, 320) / rate)
    vowel_letter = rng.choice(list(_VOWELS))
    vowel = tuple(np.clip(np.array(_VOWELS[vowel_letter]) + rng.uniform(-0.08, 0.08, 2), 0, 1))
    loud = rng.uniform(0.45, 1.0)
    onset = rng.choice([None] + list(_CONSONANTS))
    coda = rng.choice(list(_CONSONANTS)) if s == syllables - 1 and rng.random() < 0.3 else None
    onset_ms = int(ms * rng.uniform(0.25, 0.4)) if onset else 0
    coda_ms = int(ms * rng.uniform(0.2, 0.3)) if coda else 0
    if onset:
      segments += _consonant(rng, onset, onset_ms, vowel, loud)
    # Open vowels are louder; stressed (loud) syllables get a pitch accent.
    nucleus = _values(vowel[0], vowel[1], loud * (0.55 + 0.45 * vowel[0]), pitch=0.25 * (loud - 0.7))
    segments.append(_Segment(ms - onset_ms - coda_ms, nucleus))
    if coda:
      segments += _consonant(rng, coda, coda_ms, vowel, loud)
    spelling += (onset or "") + vowel_letter + (coda or "")
  return spelling, segments


@dataclasses.dataclass
class Track:
  """Articulation on the control grid: sample g is absolute time (start + g) / CONTROL_RATE seconds."""
  start: int
  channels: np.ndarray  # float64 [C, G], smoothed
  f0: np.ndarray  # float64 [G] Hz, including intonation and jitter
  phase: np.ndarray  # float64 [G] radians of the glottal cycle, 0 at absolute time 0
  gain: np.ndarray  # float64 [G] slow amplitude drift (multiplier)
  words: list[tuple[str, float, float]]  # absolute seconds

  def at(self, t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """values (over the grid, last axis) linearly interpolated at absolute times t (seconds)."""
    x = t * CONTROL_RATE - self.start
    return np.interp(x, np.arange(values.shape[-1]), values)


def gaussian(sigma: float) -> np.ndarray:
  """Unit-sum Gaussian kernel, sigma in samples."""
  x = np.arange(-int(4 * sigma + 1), int(4 * sigma + 1) + 1)
  k = np.exp(-0.5 * (x / sigma) ** 2)
  return k / k.sum()


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
  return np.convolve(x, gaussian(sigma), mode="same")


def _control_noise(seed: int, channel: int, start: int, length: int, sigma: float) -> np.ndarray:
  """Smoothed unit-variance noise on the control grid, a function of absolute time (drawn in 1 s blocks)."""
  first, last = start // CONTROL_RATE, (start + length) // CONTROL_RATE
  white = np.concatenate([
      streams.generator(seed, streams.CONTROL_NOISE, channel, b + streams.BLOCK_BASE).standard_normal(CONTROL_RATE)
      for b in range(first, last + 1)])
  white = white[start - first * CONTROL_RATE:][:length]
  kernel = gaussian(sigma)
  return np.convolve(white, kernel, mode="same") / np.sqrt(np.sum(kernel ** 2))


def articulation_track(seed: int, style: SpeakerStyle, t_lo: float, t_hi: float, rate: float,
                  pitch: float) -> Track:
  """Track covering absolute times [t_lo, t_hi] (plus a margin for the smoothing).

  Words are laid forward from time 0 by one random stream and backward from 0 by another, so the content at
  any time does not depend on how far the track extends (a shifted clip sees the same speech).
  """
  margin = 2.0  # > 4 sigma of the slowest smoothing, so the grid's ends never reach [t_lo, t_hi]
  start, stop = int(np.floor((t_lo - margin) * CONTROL_RATE)), int(np.ceil((t_hi + margin) * CONTROL_RATE))
  rest = _values(style.rest_open, 0.1)
  targets = np.tile(rest[:, None], (1, stop - start))
  words = []
  for stream, direction in ((streams.FORWARD, 1), (streams.BACKWARD, -1)):
    rng, t = streams.generator(seed, stream), 0
    while (direction > 0 and t < stop) or (direction < 0 and t > start):
      spelling, segments = _word(rng, rate)
      pause = int(rng.uniform(120, 500) / rate) if rng.random() < 0.25 else 0
      ms = sum(s.ms for s in segments)
      word_start = t if direction > 0 else t - pause - ms
      g = word_start
      for segment in segments:
        lo, hi = max(g - start, 0), min(g + segment.ms - start, stop - start)
        if lo < hi:
          targets[:, lo:hi] = segment.values[:, None]
        g += segment.ms
      words.append((spelling, word_start / CONTROL_RATE, (word_start + ms) / CONTROL_RATE))
      t = word_start + ms + pause if direction > 0 else word_start
  words.sort(key=lambda w: w[1])
  channels = np.empty_like(targets)
  for name in ("open", "round"):  # the lips move more slowly than the sources switch
    channels[CHANNEL[name]] = _smooth(targets[CHANNEL[name]], style.coarticulation_s * CONTROL_RATE)
  for name in ("voice", "n_lo", "n_mid", "n_hi", "nasal"):
    channels[CHANNEL[name]] = _smooth(targets[CHANNEL[name]], 0.005 * CONTROL_RATE)
  channels[CHANNEL["pitch"]] = _smooth(targets[CHANNEL["pitch"]], 0.04 * CONTROL_RATE)
  length = stop - start
  intonation = 0.08 * _control_noise(seed, 0, start, length, 0.25 * CONTROL_RATE)
  jitter = style.jitter * _control_noise(seed, 1, start, length, 0.001 * CONTROL_RATE)
  f0 = style.f0 * pitch * np.exp(intonation + channels[CHANNEL["pitch"]] + jitter)
  # Anchored at absolute time 0 (start < 0 < stop always), so every grid extent gives the same waveform.
  phase = 2 * np.pi * np.cumsum(f0) / CONTROL_RATE
  phase -= phase[-start]
  gain = np.exp(0.2 * _control_noise(seed, 2, start, length, 0.4 * CONTROL_RATE))
  return Track(start, channels, f0, phase, gain, words)


def silenced_outside(track: Track, style: SpeakerStyle, intervals: Sequence[tuple[float, float]]) -> Track:
  """The track with the speaker quiet outside `intervals` (absolute seconds): lips at rest, no voice or noise
  sources; the switch is smoothed over about 40 ms, as a speaker starts and stops. Pitch, head motion and the
  words inside the intervals stay."""
  times = (track.start + np.arange(track.channels.shape[1])) / CONTROL_RATE
  talking = np.zeros(len(times))
  for start, end in intervals:
    talking[(times >= start) & (times < end)] = 1.0
  talking = _smooth(talking, 0.02 * CONTROL_RATE)
  rest = _values(style.rest_open, 0.1)
  channels = track.channels.copy()
  for name in ("open", "round"):
    row = CHANNEL[name]
    channels[row] = rest[row] + (channels[row] - rest[row]) * talking
  for name in ("voice", "n_lo", "n_mid", "n_hi", "nasal"):
    channels[CHANNEL[name]] *= talking
  words = [w for w in track.words if any(start <= (w[1] + w[2]) / 2 < end for start, end in intervals)]
  return dataclasses.replace(track, channels=channels, words=words)
