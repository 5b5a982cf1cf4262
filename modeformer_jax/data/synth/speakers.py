"""What stays fixed for one speaker across clips: voice (pitch, formants, breathiness, rate) and looks (face
geometry, colours), drawn deterministically from the dataset seed and the speaker's index."""

from __future__ import annotations

import dataclasses

import numpy as np

from modeformer_jax.data.synth import streams

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


def _colour(rng: np.random.Generator, low: float, high: float) -> Colour:
  return tuple(float(c) for c in rng.uniform(low, high, 3))


def speaker_style(seed: int, speaker_index: int) -> SpeakerStyle:
  """Draws speaker `speaker_index` of the dataset with this seed (deterministic)."""
  rng = streams.generator(seed, speaker_index, 0x5bea6e)
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
