"""A generated stand-in for LRS2/LRS3: talking-face clips whose mouth and voice follow one articulation track.

Each clip is driven by an articulation track on a 1 kHz control grid: words of 1-3 syllables (80-320 ms each,
scaled by the speaker's rate), pauses, and within syllables closures, bursts, fricatives, nasals, glides and
vowels. The track sets mouth opening and lip rounding (smoothed as coarticulation) and the sound sources
(voicing, three noise bands, nasality). Video draws the mouth from opening and rounding; audio is a harmonic
source at the speaker's pitch (with jitter and intonation) shaped by formants tied to the same mouth shape
(opening raises F1, rounding lowers F2), plus band noise for fricatives and bursts. Lips can close while the
voice goes on (M, B) and open in silence (T, K closures), so energy alone does not give the alignment away.

Offset convention (SPEC section 6): offset_frames > 0 means the audio LEADS the video: the sound of video
frame i is at audio frame i - offset_frames. Audio sample n renders the track at time
(n + round(offset_frames * sample_rate / fps)) / sample_rate, while video frame i shows it at (i + 0.5) / fps.
The track extends beyond the clip on both sides and every random stream is indexed by absolute time, so a
shifted clip is the in-sync clip's audio moved by whole frames, with genuine speech where the shift uncovers
new audio (no padding, no wrap-around) and the same duration.

Datasets: write_dataset lays clips out like LRS2 (mvlrs_v1/main|pretrain/<show>/<clip>.mp4 + .txt, split
lists) or LRS3 (pretrain|trainval|test/<speaker>/<clip>.mp4 + .txt with face boxes), assigns whole speakers
to splits, and writes manifest.jsonl with the ground truth of every clip.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from modeformer_jax import atomic

CONTROL_RATE = 1000  # Hz; the articulation track's grid (1 ms steps).
LAYOUTS = ("lrs2", "lrs3")
# Fractions of speakers per split, in the order speakers are assigned; ours, sized so that small stand-ins
# still hold out whole speakers for val/test.
SPLIT_FRACTIONS = {
    "lrs2": {"test": 0.1, "val": 0.1, "pretrain": 0.3, "train": 0.5},
    "lrs3": {"test": 0.15, "pretrain": 0.5, "trainval": 0.35},
}
FRAME_SIZE = {"lrs2": 160, "lrs3": 224}
# LRS3 crops show more context around the face than LRS2's face-centred crops.
FACE_SCALE = {"lrs2": 1.0, "lrs3": 0.8}

# Random streams (second SeedSequence word) so that each part of a clip draws independently of the others.
_FWD, _BWD, _CLIP_AUDIO, _CLIP_VIDEO, _CONTROL_NOISE, _FRIC_NOISE, _ROOM_NOISE = range(7)
_BLOCK_BASE = 1 << 20  # makes negative time-block indices valid SeedSequence entropy

# Track channels.
_CHANNELS = ("open", "round", "voice", "n_lo", "n_mid", "n_hi", "nasal", "pitch")
_CH = {name: i for i, name in enumerate(_CHANNELS)}

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

Colour = tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class SpeakerStyle:
  """What stays fixed for one speaker across clips. Lengths are relative: to the frame size (face_*), to the
  face half-width rx (eye_dx, mouth_w) or half-height ry (eye_y, mouth_y, lip_th, open_max, hairline)."""
  f0: float  # Hz, mean voice pitch
  formant_scale: float  # vocal tract length: multiplies every formant frequency
  breathiness: float  # aspiration noise mixed into voicing, 0..1
  jitter: float  # relative pitch jitter
  rate: float  # speaking rate; syllable durations are divided by it
  coarticulation_s: float  # std of the Gaussian that smooths the mouth shape track
  face_cx: float
  face_cy: float
  face_ry: float
  face_aspect: float  # ry / rx
  eye_dx: float
  eye_y: float
  hairline: float
  mouth_y: float
  mouth_w: float
  lip_th: float
  open_max: float
  rest_open: float  # mouth opening while silent
  skin: Colour
  lip: Colour
  hair: Colour
  iris: Colour
  clothes: Colour
  background: tuple[Colour, Colour]


@dataclasses.dataclass
class RenderedClip:
  """One clip. T = round(seconds * fps) frames, S = round(T * sample_rate / fps) samples."""
  frames: np.ndarray  # uint8 [T, H, W, 3] RGB
  audio: np.ndarray  # float32 [S] in [-1, 1]
  face_boxes: np.ndarray  # float32 [T, 4]: x, y, w, h of the face ellipse's bounding box, pixels
  mouth_centers: np.ndarray  # float32 [T, 2]: cx, cy, pixels
  mouth_open: np.ndarray  # float32 [T] in 0..1, the opening shown in each frame
  transcript: str
  words: list[tuple[str, float, float]]  # (word, start, end) seconds from the clip start, video time
  fps: float
  sample_rate: int
  offset_frames: int


def _rng(*words: int) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence([int(w) for w in words]))


def _colour(rng: np.random.Generator, low: float, high: float) -> Colour:
  return tuple(float(c) for c in rng.uniform(low, high, 3))


def speaker_style(seed: int, speaker_index: int) -> SpeakerStyle:
  """Draws speaker `speaker_index` of the dataset with this seed (deterministic)."""
  rng = _rng(seed, speaker_index, 0x5bea6e)
  low_voice = rng.random() < 0.5
  f0 = rng.uniform(85, 145) if low_voice else rng.uniform(165, 255)
  formant_scale = (rng.uniform(0.86, 1.0) if low_voice else rng.uniform(1.0, 1.18))
  shade = rng.uniform(0, 1)
  skin = np.array([236, 200, 175]) * (1 - shade) + np.array([95, 62, 42]) * shade + rng.uniform(-12, 12, 3)
  lip = skin * np.array([0.78, 0.55, 0.58]) + np.array([28, 4, 8])
  hair = [(25, 20, 18), (70, 45, 25), (120, 85, 50), (200, 170, 110), (150, 150, 150)][rng.integers(5)]
  hair = np.array(hair) * rng.uniform(0.8, 1.15)
  background = (_colour(rng, 20, 230), _colour(rng, 20, 230))
  face_ry = rng.uniform(0.34, 0.43)
  return SpeakerStyle(
      f0=float(f0), formant_scale=float(formant_scale), breathiness=float(rng.uniform(0.02, 0.3)),
      jitter=float(rng.uniform(0.005, 0.02)), rate=float(rng.uniform(0.8, 1.25)),
      coarticulation_s=float(rng.uniform(0.014, 0.024)),
      face_cx=float(rng.uniform(0.47, 0.53)), face_cy=float(rng.uniform(0.43, 0.49)), face_ry=float(face_ry),
      face_aspect=float(rng.uniform(1.2, 1.45)), eye_dx=float(rng.uniform(0.34, 0.44)),
      eye_y=float(rng.uniform(-0.22, -0.12)), hairline=float(rng.uniform(-0.75, -0.5)),
      mouth_y=float(rng.uniform(0.5, 0.6)), mouth_w=float(rng.uniform(0.38, 0.52)),
      lip_th=float(rng.uniform(0.035, 0.06)), open_max=float(rng.uniform(0.18, 0.26)),
      rest_open=float(rng.uniform(0.0, 0.06)),
      skin=tuple(float(c) for c in np.clip(skin, 0, 255)), lip=tuple(float(c) for c in np.clip(lip, 0, 255)),
      hair=tuple(float(c) for c in np.clip(hair, 0, 255)), iris=_colour(rng, 20, 120),
      clothes=_colour(rng, 15, 220), background=background)


# ---------------------------------------------------------------------------------------------------------
# Articulation track.


@dataclasses.dataclass
class _Segment:
  ms: int  # duration
  values: np.ndarray  # [len(_CHANNELS)] targets held for the duration


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
class _Track:
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


def _gaussian(sigma: float) -> np.ndarray:
  """Unit-sum Gaussian kernel, sigma in samples."""
  x = np.arange(-int(4 * sigma + 1), int(4 * sigma + 1) + 1)
  k = np.exp(-0.5 * (x / sigma) ** 2)
  return k / k.sum()


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
  return np.convolve(x, _gaussian(sigma), mode="same")


def _control_noise(seed: int, channel: int, start: int, length: int, sigma: float) -> np.ndarray:
  """Smoothed unit-variance noise on the control grid, a function of absolute time (drawn in 1 s blocks)."""
  first, last = start // CONTROL_RATE, (start + length) // CONTROL_RATE
  white = np.concatenate([_rng(seed, _CONTROL_NOISE, channel, b + _BLOCK_BASE).standard_normal(CONTROL_RATE)
                          for b in range(first, last + 1)])
  white = white[start - first * CONTROL_RATE:][:length]
  kernel = _gaussian(sigma)
  return np.convolve(white, kernel, mode="same") / np.sqrt(np.sum(kernel ** 2))


def _articulation(seed: int, style: SpeakerStyle, t_lo: float, t_hi: float, rate: float,
                  pitch: float) -> _Track:
  """Track covering absolute times [t_lo, t_hi] (plus a margin for the smoothing).

  Words are laid forward from time 0 by one random stream and backward from 0 by another, so the content at
  any time does not depend on how far the track extends (a shifted clip sees the same speech).
  """
  margin = 2.0  # > 4 sigma of the slowest smoothing, so the grid's ends never reach [t_lo, t_hi]
  start, stop = int(np.floor((t_lo - margin) * CONTROL_RATE)), int(np.ceil((t_hi + margin) * CONTROL_RATE))
  rest = _values(style.rest_open, 0.1)
  targets = np.tile(rest[:, None], (1, stop - start))
  words = []
  for stream, direction in ((_FWD, 1), (_BWD, -1)):
    rng, t = _rng(seed, stream), 0
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
    channels[_CH[name]] = _smooth(targets[_CH[name]], style.coarticulation_s * CONTROL_RATE)
  for name in ("voice", "n_lo", "n_mid", "n_hi", "nasal"):
    channels[_CH[name]] = _smooth(targets[_CH[name]], 0.005 * CONTROL_RATE)
  channels[_CH["pitch"]] = _smooth(targets[_CH["pitch"]], 0.04 * CONTROL_RATE)
  length = stop - start
  intonation = 0.08 * _control_noise(seed, 0, start, length, 0.25 * CONTROL_RATE)
  jitter = style.jitter * _control_noise(seed, 1, start, length, 0.001 * CONTROL_RATE)
  f0 = style.f0 * pitch * np.exp(intonation + channels[_CH["pitch"]] + jitter)
  # Anchored at absolute time 0 (start < 0 < stop always), so every grid extent gives the same waveform.
  phase = 2 * np.pi * np.cumsum(f0) / CONTROL_RATE
  phase -= phase[-start]
  gain = np.exp(0.2 * _control_noise(seed, 2, start, length, 0.4 * CONTROL_RATE))
  return _Track(start, channels, f0, phase, gain, words)


# ---------------------------------------------------------------------------------------------------------
# Audio.


def _bandpass(low: float, high: float, sample_rate: int, taps: int = 101) -> np.ndarray:
  """Windowed-sinc FIR, scaled to unit output variance for white input."""
  n = np.arange(taps) - (taps - 1) / 2
  h = (2 * high / sample_rate * np.sinc(2 * high / sample_rate * n)
       - 2 * low / sample_rate * np.sinc(2 * low / sample_rate * n)) * np.hamming(taps)
  return h / np.sqrt(np.sum(h ** 2))


def _sample_noise(seed: int, stream: int, first: int, length: int, sample_rate: int) -> np.ndarray:
  """White noise at absolute sample indices first .. first + length - 1 (drawn in 1 s blocks)."""
  b0, b1 = first // sample_rate, (first + length) // sample_rate
  white = np.concatenate([_rng(seed, stream, b + _BLOCK_BASE).standard_normal(sample_rate)
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


def _render_audio(seed: int, track: _Track, style: SpeakerStyle, first: int, length: int, sample_rate: int,
                  rng: np.random.Generator) -> np.ndarray:
  """float32 [length] audio for absolute samples first .. first + length - 1."""
  m = np.arange(first, first + length)
  t = m / sample_rate
  top = min(7600.0, 0.45 * sample_rate)  # speech band, and below Nyquist
  # Harmonic amplitudes at a coarse grid of absolute sample indices (every `hop`), linearly interpolated.
  hop = max(1, sample_rate // CONTROL_RATE)
  j = np.arange(first // hop, (first + length) // hop + 2)
  tj = j * hop / sample_rate
  open_, round_, nasal, voice = (track.at(tj, track.channels[_CH[c]])
                                 for c in ("open", "round", "nasal", "voice"))
  f0j = track.at(tj, track.f0)
  harmonics = int(top // f0j.min())
  k = np.arange(1, harmonics + 1)[:, None]
  freqs = k * f0j[None]
  amps = _formant_gains(freqs, open_, round_, nasal, style.formant_scale) / k
  amps *= np.clip((top - freqs) / 300, 0, 1)
  amps /= np.sqrt(0.5 * np.sum(amps ** 2, axis=0)) + 1e-9  # unit RMS: loudness comes from `voice` alone
  amps *= voice
  pos = (m - j[0] * hop) / hop
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
  white = _sample_noise(seed, _FRIC_NOISE, first - taps // 2, length + taps - 1, sample_rate)
  bands = ((300, 1500, "n_lo"), (1500, 3500, "n_mid"), (3500, top, "n_hi"))
  noise = np.zeros(length)
  aspiration = np.zeros(length)
  for low, high, name in bands:
    band = np.convolve(white, _bandpass(low, high, sample_rate, taps), mode="valid")
    noise += band * track.at(t, track.channels[_CH[name]])
    if name != "n_hi":
      aspiration += 0.5 * band
  aspiration *= style.breathiness * 0.4 * track.at(t, track.channels[_CH["voice"]])
  level = rng.uniform(0.05, 0.14)  # this clip's recording level
  speech = level * track.at(t, track.gain) * (voiced + noise + aspiration)
  room = _sample_noise(seed, _ROOM_NOISE, first - taps // 2, length + taps - 1, sample_rate)
  room = (0.7 * np.convolve(room, _bandpass(50, 1500, sample_rate, taps), mode="valid")
          + 0.3 * room[taps // 2:][:length])
  floor = level * 10 ** (rng.uniform(-45, -25) / 20)
  return np.clip(speech + floor * room, -1, 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Video.


def _frame_noise(rng: np.random.Generator, rows: int, frames: int, sigma: float) -> np.ndarray:
  """[rows, frames] smooth unit-variance noise over frames."""
  kernel = _gaussian(sigma)
  pad = len(kernel)
  white = rng.standard_normal((rows, frames + 2 * pad))
  out = np.stack([np.convolve(w, kernel, mode="same") for w in white])[:, pad:pad + frames]
  return out / np.sqrt(np.sum(kernel ** 2))


class _Canvas:
  """Float RGB frames [T, H, W, 3] with soft (antialiased) ellipse compositing, vectorised over frames."""

  def __init__(self, background: np.ndarray, frames: int):
    self.pixels = np.repeat(background[None].astype(np.float32), frames, axis=0)
    self.size = background.shape[0]

  def window(self, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray) -> tuple[slice, slice]:
    """Pixel rows/cols that the shape reaches in any frame."""
    x0, x1 = np.floor(np.min(cx - radius)), np.ceil(np.max(cx + radius)) + 1
    y0, y1 = np.floor(np.min(cy - radius)), np.ceil(np.max(cy + radius)) + 1
    clip = lambda v: int(np.clip(v, 0, self.size))
    return slice(clip(y0), clip(y1)), slice(clip(x0), clip(x1))

  def ellipse(self, cx, cy, a, b, theta, window: tuple[slice, slice] | None = None, b_below=None):
    """Ellipses with per-frame centre, half-axes and rotation ([T] arrays each).

    Returns (alpha, u, v, window): coverage [T, h, w] within window (default: all pixels the ellipse reaches
    in any frame) and the pixel centres in the ellipse's own axes (u along a, v along b, pointing down),
    [T, h, w] each. b_below, when given, is the half-axis for v > 0 (a jaw that drops).
    """
    cx, cy, a, b, theta = (np.asarray(v, np.float32)[:, None, None] for v in (cx, cy, a, b, theta))
    if window is None:
      reach = np.maximum(a, b if b_below is None else np.maximum(b, b_below[:, None, None]))
      window = self.window(cx, cy, reach)
    rows, cols = window
    y = np.arange(rows.start, rows.stop, dtype=np.float32)[None, :, None] + 0.5
    x = np.arange(cols.start, cols.stop, dtype=np.float32)[None, None, :] + 0.5
    cos, sin = np.cos(theta), np.sin(theta)
    u = cos * (x - cx) + sin * (y - cy)
    v = -sin * (x - cx) + cos * (y - cy)
    if b_below is not None:
      b = np.where(v > 0, np.asarray(b_below, np.float32)[:, None, None], b)
    ua, vb = u / a ** 2, v / b ** 2
    q = u * ua + v * vb
    # (1 - q) / |grad q| is the signed distance to the edge in pixels, to first order.
    alpha = np.clip((1 - q) / (2 * np.sqrt(ua ** 2 + vb ** 2) + 1e-6) + 0.5, 0, 1)
    return alpha, u, v, window

  def paint(self, alpha: np.ndarray, window, colour) -> None:
    """Composites colour ([3] or [T, h, w, 3]) over the window with coverage alpha [T, h, w]."""
    region = self.pixels[:, window[0], window[1]]
    step = np.asarray(colour, np.float32) - region
    step *= alpha[..., None]
    region += step


def _background(rng: np.random.Generator, style: SpeakerStyle, size: int) -> np.ndarray:
  """[H, W, 3]: a gradient between the speaker's two colours plus a few soft blobs."""
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
  angle = rng.uniform(0, 2 * np.pi)
  w = np.clip(0.5 + 0.7 * ((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle)), 0, 1)[..., None]
  c0, c1 = (np.array(c, np.float32) for c in style.background)
  image = c0 * (1 - w) + c1 * w
  for _ in range(3):
    bx, by, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.25)
    blob = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * r ** 2))[..., None]
    image += blob * rng.uniform(-40, 40, 3).astype(np.float32)
  return image


def _render_video(track: _Track, style: SpeakerStyle, rng: np.random.Generator, frames: int, size: int,
                  fps: float, face_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Frames uint8 [T, H, W, 3], face boxes [T, 4], mouth centres [T, 2], mouth opening [T]."""
  t = (np.arange(frames) + 0.5) / fps
  open_ = np.clip(track.at(t, track.channels[_CH["open"]]), 0, 1)
  round_ = np.clip(track.at(t, track.channels[_CH["round"]]), 0, 1)
  # Head motion and lighting: slow, independent of speech.
  motion = _frame_noise(rng, 5, frames, 0.6 * fps)
  sway = rng.uniform(0.01, 0.03) * size
  fx = size * (0.5 + (style.face_cx - 0.5) * face_scale) + sway * motion[0]
  fy = size * (0.5 + (style.face_cy - 0.5) * face_scale) + sway * motion[1]
  ry = style.face_ry * size * face_scale * (1 + 0.03 * motion[2])
  rx = ry / style.face_aspect
  theta = rng.uniform(0.01, 0.06) * motion[3]
  light = 1 + rng.uniform(0.03, 0.1) * motion[4]
  cos, sin = np.cos(theta), np.sin(theta)

  def at(u, v):  # face coordinates (pixels, u right, v down) -> image coordinates
    return fx + cos * u - sin * v, fy + sin * u + cos * v

  skin, lip, hair = (np.array(c, np.float32) for c in (style.skin, style.lip, style.hair))
  canvas = _Canvas(_background(rng, style, size), frames)
  zero = np.zeros(frames)
  alpha, _, _, win = canvas.ellipse(*at(zero, 2.0 * ry), 2.3 * rx, 0.95 * ry, theta)
  canvas.paint(alpha, win, style.clothes)
  alpha, _, _, win = canvas.ellipse(*at(zero, 0.9 * ry), 0.55 * rx, 0.75 * ry, theta)
  canvas.paint(alpha, win, skin * 0.78)
  alpha, _, _, win = canvas.ellipse(*at(zero, -0.12 * ry), 1.1 * rx, 1.04 * ry, theta)
  canvas.paint(alpha, win, hair)
  jaw = ry * (1 + 0.07 * open_)
  face, u, v, win = canvas.ellipse(fx, fy, rx, ry, theta, b_below=jaw)
  light_dir = rng.uniform(-1, 1, 2).astype(np.float32)
  fu, fv = u / rx[:, None, None], v / ry[:, None, None]  # face-relative coordinates
  shade = 1 - 0.2 * (fu ** 2 + fv ** 2) + 0.12 * (light_dir[0] * fu + light_dir[1] * fv)
  canvas.paint(face, win, skin * shade[..., None])
  fringe = face * np.clip(style.hairline * ry[:, None, None] - v + 0.5, 0, 1)
  canvas.paint(fringe, win, hair)
  blink = _blinks(rng, frames, fps)
  for side in (-1, 1):
    ex, ey = at(side * style.eye_dx * rx, style.eye_y * ry)
    alpha, _, _, win = canvas.ellipse(*at(side * style.eye_dx * rx, (style.eye_y - 0.12) * ry),
                                      0.17 * rx, 0.03 * ry, theta - side * 0.08)
    canvas.paint(alpha, win, hair * 0.7)
    sclera, _, _, win = canvas.ellipse(ex, ey, 0.13 * rx, 0.055 * ry * (1 - blink) + 1e-3, theta)
    canvas.paint(sclera, win, (232, 230, 225))
    iris, _, _, _ = canvas.ellipse(ex, ey, 0.055 * rx, 0.055 * rx, zero, window=win)
    canvas.paint(iris * sclera, win, style.iris)
  alpha, _, _, win = canvas.ellipse(*at(zero, 0.22 * ry), 0.09 * rx, 0.045 * ry, theta)
  canvas.paint(alpha, win, skin * 0.62)
  # Mouth: lips, the dark opening between them, upper teeth once the jaw drops far enough.
  mx, my = at(zero, style.mouth_y * ry + 0.5 * (jaw - ry))
  half_w = style.mouth_w * rx * (1 - 0.3 * round_ + 0.08 * open_)
  half_open = 0.5 * style.open_max * ry * open_
  alpha, _, _, win = canvas.ellipse(mx, my, half_w, style.lip_th * ry * (1 + 0.4 * round_) + half_open, theta)
  canvas.paint(alpha, win, lip)
  inner, _, v, win = canvas.ellipse(mx, my, half_w * (0.82 - 0.3 * round_), half_open + 0.6, theta)
  canvas.paint(inner, win, (55, 22, 28))
  teeth_h = (0.35 * half_open)[:, None, None]
  teeth = inner * np.clip(teeth_h - half_open[:, None, None] - v + 0.5, 0, 1)
  canvas.paint(teeth * np.clip((open_ - 0.12) * 5, 0, 1)[:, None, None], win, (226, 222, 208))

  # Lighting, then sensor noise (uniform with std 1..4 levels: as good as Gaussian here, and 7x cheaper).
  pixels = canvas.pixels
  pixels *= light[:, None, None, None].astype(np.float32)
  noise = rng.random(pixels.shape, dtype=np.float32)
  noise -= np.float32(0.5)
  noise *= np.float32(rng.uniform(1.0, 4.0) * np.sqrt(12))
  pixels += noise
  pixels += np.float32(0.5)  # rounds in the cast below
  image = np.clip(pixels, 0, 255, out=pixels).astype(np.uint8)
  half_x = np.sqrt((rx * cos) ** 2 + (jaw * sin) ** 2)
  top = fy - np.sqrt((rx * sin) ** 2 + (ry * cos) ** 2)
  bottom = fy + np.sqrt((rx * sin) ** 2 + (jaw * cos) ** 2)
  boxes = np.stack([fx - half_x, top, 2 * half_x, bottom - top], axis=1).astype(np.float32)
  return image, boxes, np.stack([mx, my], axis=1).astype(np.float32), open_.astype(np.float32)


def _blinks(rng: np.random.Generator, frames: int, fps: float) -> np.ndarray:
  """[T] eyelid closure 0..1: blinks at random, about every 3 s, 3 frames at 25 fps."""
  closure = np.zeros(frames)
  t = rng.exponential(3.0)
  while t * fps < frames:
    centre = t * fps
    closure = np.maximum(closure, np.clip(1 - np.abs(np.arange(frames) - centre) / (0.06 * fps + 0.5), 0, 1))
    t += 0.3 + rng.exponential(3.0)
  return closure


# ---------------------------------------------------------------------------------------------------------
# Clips.


def num_frames(seconds: float, fps: float) -> int:
  """Frames in a clip of `seconds` (at least one)."""
  return max(1, int(round(seconds * fps)))


def num_samples(frames: int, fps: float, sample_rate: int) -> int:
  """Audio samples spanning exactly the video's frames."""
  return int(round(frames * sample_rate / fps))


def render_clip(seed: int, speaker: SpeakerStyle, seconds: float, offset_frames: int = 0, size: int = 160,
                fps: float = 25.0, sample_rate: int = 16000, face_scale: float = 1.0) -> RenderedClip:
  """Renders one clip (deterministic in all arguments).

  The video never depends on offset_frames; the audio for offset k equals the in-sync audio moved earlier by
  k frames (k > 0: audio leads, the sound of video frame i is at audio frame i - k), continued with real
  speech at the end (or beginning, k < 0) rather than padded.

  Returns frames uint8 [T, size, size, 3] and audio float32 [S], T = round(seconds * fps),
  S = round(T * sample_rate / fps).
  """
  frames = num_frames(seconds, fps)
  samples = num_samples(frames, fps, sample_rate)
  shift = int(round(offset_frames * sample_rate / fps))
  clip_audio = _rng(seed, _CLIP_AUDIO)
  rate = speaker.rate * clip_audio.uniform(0.9, 1.1)
  pitch = clip_audio.uniform(0.92, 1.08)
  audio_start, audio_end = shift / sample_rate, (shift + samples) / sample_rate
  track = _articulation(seed, speaker, min(0.0, audio_start), max(frames / fps, audio_end), rate, pitch)
  audio = _render_audio(seed, track, speaker, shift, samples, sample_rate, clip_audio)
  image, boxes, mouths, open_ = _render_video(track, speaker, _rng(seed, _CLIP_VIDEO), frames, size, fps,
                                              face_scale)
  clip_seconds = frames / fps
  words = [(w, max(s, 0.0), min(e, clip_seconds))
           for w, s, e in track.words if 0 <= (s + e) / 2 < clip_seconds]
  return RenderedClip(frames=image, audio=audio, face_boxes=boxes, mouth_centers=mouths, mouth_open=open_,
                      transcript=" ".join(w for w, _, _ in words), words=words, fps=fps,
                      sample_rate=sample_rate, offset_frames=offset_frames)


# ---------------------------------------------------------------------------------------------------------
# Datasets.

MANIFEST = "manifest.jsonl"
# A manifest row whose fields match these (and whose files are on disk) is a finished clip on a rerun.
_JOB_FIELDS = ("path", "layout", "split", "speaker", "clip", "fps", "sample_rate", "channels", "seconds",
               "offset_frames", "seed", "shot")
SHOTS = ("closeup", "wide")  # wide: data.wide_shot (a small face in a busy 454x256 scene)


def speaker_splits(layout: str, speakers: int) -> list[str]:
  """Split of each speaker index. Whole speakers go to a split; test (and val for lrs2) get at least one
  speaker once there are enough speakers, and the main training split always keeps one."""
  fractions = SPLIT_FRACTIONS[layout]
  *held_out, main = fractions
  counts, left = {}, speakers
  for i, split in enumerate(held_out):
    wanted = round(fractions[split] * speakers)
    if split != "pretrain" and speakers >= i + 2:  # test from 2 speakers on, val from 3
      wanted = max(wanted, 1)
    counts[split] = min(wanted, left - 1)
    left -= counts[split]
  counts[main] = left
  order = ("pretrain", "train", "val", "test") if layout == "lrs2" else ("pretrain", "trainval", "test")
  return [split for split in order for _ in range(counts[split])]


def speaker_id(layout: str, seed: int, speaker_index: int) -> str:
  """LRS2-like show id (19 digits) or LRS3-like YouTube id (11 characters)."""
  rng = _rng(seed, speaker_index, 0x1d)
  if layout == "lrs2":
    return str(rng.integers(10 ** 18, 10 ** 19, dtype=np.uint64))
  alphabet = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
  return "".join(rng.choice(alphabet, 11))


def clip_path(layout: str, split: str, speaker: str, clip: str) -> str:
  """Relative path of a clip's mp4 (its transcript is the same path with .txt)."""
  if layout == "lrs2":
    return f"mvlrs_v1/{'pretrain' if split == 'pretrain' else 'main'}/{speaker}/{clip}.mp4"
  return f"{split}/{speaker}/{clip}.mp4"


def _transcript_file(layout: str, clip: RenderedClip, rng: np.random.Generator, size) -> str:
  """LRS2: Text, Conf, word table. LRS3 adds the per-frame face box table (relative coordinates, columns
  separated by ' \\t' and lines ending in a space, as in the released files) before the word table."""
  lines = [f"Text:  {clip.transcript}", f"Conf:  {rng.integers(1, 10)}", ""]
  if layout == "lrs3":
    lines.append("FRAME \tX \tY \tW \tH ")
    for i, box in enumerate(np.clip(clip.face_boxes / size, 0, 1)):
      lines.append(f"{i:06d} \t" + " \t".join(f"{v:.3f}" for v in box) + " ")
    lines.append("")
  lines.append("WORD START END ASDSCORE")
  for word, start, end in clip.words:
    lines.append(f"{word} {start:.2f} {end:.2f} {rng.uniform(2, 10):.1f}")
  return "\n".join(lines) + "\n"


def _make_clip(out_dir: str, job: dict, style: SpeakerStyle, threads: int) -> dict:
  """Renders and writes one clip (transcript, then mp4; each atomically) and returns its manifest row."""
  from modeformer_jax.media.encode import write_video  # av loads in the workers only

  layout = job["layout"]
  if job["shot"] == "wide":
    from modeformer_jax.data import wide_shot

    listener = speaker_style(job["dataset_seed"], 1_000_000 + job["speaker_index"])
    clip = wide_shot.render_wide_shot(job["seed"], style, listener, job["seconds"], job["offset_frames"],
                                      fps=job["fps"], sample_rate=job["sample_rate"])
    size = np.array([wide_shot.WIDTH, wide_shot.HEIGHT] * 2, np.float32)  # box table relative to the frame
  else:
    clip = render_clip(job["seed"], style, job["seconds"], job["offset_frames"], FRAME_SIZE[layout], job["fps"],
                       job["sample_rate"], FACE_SCALE[layout])
    size = FRAME_SIZE[layout]
  path = Path(out_dir) / job["path"]
  path.parent.mkdir(parents=True, exist_ok=True)
  text = _transcript_file(layout, clip, _rng(job["seed"], 0x7e47), size)
  atomic.write(path.with_suffix(".txt"), text)
  audio = clip.audio if job["channels"] == 1 else np.repeat(clip.audio[:, None], job["channels"], axis=1)
  size = write_video(path, clip.frames, job["fps"], audio, job["sample_rate"], threads=threads)
  return {**job, "num_frames": len(clip.frames), "transcript": clip.transcript,
          "face_boxes": np.round(clip.face_boxes, 2).tolist(),
          "mouth_centers": np.round(clip.mouth_centers, 2).tolist(),
          "mouth_open": np.round(clip.mouth_open, 4).tolist(), "bytes": size}


def read_manifest(out_dir: str | os.PathLike) -> list[dict]:
  """Rows of DIR/manifest.jsonl ([] if absent); a torn last line (interrupted append) is ignored."""
  path = Path(out_dir) / MANIFEST
  if not path.exists():
    return []
  rows = []
  for line in path.read_text().splitlines():
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return rows


def _finished(out_dir: Path, job: dict, row: dict | None) -> bool:
  if row is None or any(row.get(k, "closeup" if k == "shot" else None) != job[k] for k in _JOB_FIELDS):
    return False
  mp4 = out_dir / job["path"]
  return mp4.is_file() and mp4.stat().st_size == row.get("bytes") and mp4.with_suffix(".txt").is_file()


def plan_dataset(layout: str, speakers: int, clips_per_speaker: int, seconds: float, seed: int,
                 offsets_frames: Sequence[int] = (), offset_fraction: float = 0.5, fps: float = 25.0,
                 sample_rate: int = 16000, channels: int = 1, shot: str = "closeup") -> list[dict]:
  """The clips write_dataset makes, in manifest order: the manifest fields known before rendering."""
  if layout not in LAYOUTS:
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
  if shot not in SHOTS:
    raise ValueError(f"shot must be one of {SHOTS}, got {shot!r}")
  if speakers < 1 or clips_per_speaker < 1:
    raise ValueError(f"speakers and clips_per_speaker must be >= 1, got {speakers}, {clips_per_speaker}")
  if not (seconds > 0 and fps > 0 and sample_rate > 0):
    raise ValueError(f"seconds, fps and sample_rate must be > 0, got {seconds}, {fps}, {sample_rate}")
  if not 1 <= channels <= 7:
    raise ValueError(f"channels must be 1..7, got {channels}")
  if not 0 <= offset_fraction <= 1:
    raise ValueError(f"offset_fraction must be in [0, 1], got {offset_fraction}")
  jobs, ids = [], set()
  for s, split in enumerate(speaker_splits(layout, speakers)):
    speaker = speaker_id(layout, seed, s)
    if speaker in ids:
      raise ValueError(f"speaker id collision for seed {seed}: {speaker}")
    ids.add(speaker)
    for c in range(clips_per_speaker):
      clip = f"{c + 1:05d}"
      rng = _rng(seed, s, c, 0x0ff5e7)
      shifted = bool(offsets_frames) and rng.random() < offset_fraction
      offset = int(rng.choice(list(offsets_frames))) if shifted else 0
      jobs.append({"path": clip_path(layout, split, speaker, clip), "layout": layout, "split": split,
                   "speaker": speaker, "clip": clip, "fps": float(fps), "sample_rate": int(sample_rate),
                   "channels": int(channels), "seconds": float(seconds), "offset_frames": offset, "shot": shot,
                   "seed": int(np.random.SeedSequence([seed, s, c]).generate_state(1)[0]),
                   "dataset_seed": int(seed), "speaker_index": s})
  return jobs


def write_dataset(out_dir: str | os.PathLike, layout: str, speakers: int, clips_per_speaker: int,
                  seconds: float, seed: int, offsets_frames: Sequence[int] = (), offset_fraction: float = 0.5,
                  workers: int | None = None, fps: float = 25.0, sample_rate: int = 16000, channels: int = 1,
                  progress: bool = True, shot: str = "closeup") -> list[dict]:
  """Writes a stand-in dataset under out_dir and returns its manifest rows (in manifest order).

  Clips already complete from an earlier run with the same settings (manifest row matches, files present)
  are kept, so an interrupted run resumes. Each finished clip's row is appended to manifest.jsonl at once;
  at the end the manifest is rewritten to hold exactly this dataset's clips in order, and (lrs2) the split
  lists pretrain/train/val/test.txt are written.

  shot "wide" renders data.wide_shot scenes (454x256, a small face, a silent listener) instead of close-ups.

  A row: path (relative to out_dir), layout, split, speaker, clip, fps, sample_rate, channels, seconds,
  offset_frames (> 0: audio leads), shot, seed (render_clip's), dataset_seed, speaker_index, num_frames,
  transcript, face_boxes [T][x, y, w, h] px, mouth_centers [T][cx, cy] px, mouth_open [T] 0..1, bytes (mp4).
  """
  from tqdm import tqdm

  out = Path(out_dir)
  jobs = plan_dataset(layout, speakers, clips_per_speaker, seconds, seed, offsets_frames, offset_fraction,
                      fps, sample_rate, channels, shot)
  out.mkdir(parents=True, exist_ok=True)
  # Temporary files of a killed run would otherwise look like clips to a folder listing.
  for folder in {(out / job["path"]).parent for job in jobs}:
    for stale in folder.glob(".*.partial*"):
      stale.unlink()
  previous = {row.get("path"): row for row in read_manifest(out)}
  rows = {job["path"]: previous[job["path"]]
          for job in jobs if _finished(out, job, previous.get(job["path"]))}
  todo = [job for job in jobs if job["path"] not in rows]
  workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
  styles = {s: speaker_style(seed, s) for s in {job["speaker_index"] for job in todo}}
  bar = tqdm(total=len(jobs), initial=len(rows), desc=f"synth {layout}", unit="clip", file=sys.stderr,
             disable=not progress)
  with bar, open(out / MANIFEST, "a") as manifest:
    def done(row: dict) -> None:
      rows[row["path"]] = row
      manifest.write(json.dumps(row) + "\n")
      manifest.flush()
      bar.update()

    if workers == 1:
      for job in todo:
        done(_make_clip(str(out), job, styles[job["speaker_index"]], threads=0))
    else:
      # forkserver: never fork a parent that may hold threads (tqdm's monitor, a jax runtime in tests).
      context = multiprocessing.get_context("forkserver")
      with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_make_clip, str(out), job, styles[job["speaker_index"]], 1) for job in todo]
        try:
          for future in concurrent.futures.as_completed(futures):
            done(future.result())
        finally:
          pool.shutdown(cancel_futures=True)
  ordered = [rows[job["path"]] for job in jobs]
  atomic.write(out / MANIFEST, "".join(json.dumps(row) + "\n" for row in ordered))
  if layout == "lrs2":
    for split in ("pretrain", "train", "val", "test"):
      suffix = " NF" if split == "test" else ""  # the released test list flags each line
      names = [f"{row['speaker']}/{row['clip']}{suffix}\n" for row in ordered if row["split"] == split]
      atomic.write(out / f"{split}.txt", "".join(names))
  return ordered
