"""Generated wide shots: the talking face of data.synth, small, in a larger and busier scene.

What real footage has and close-ups lack: a face 24-48 px tall in a 454x256 frame (a TED-style wide shot), a
head that moves across the frame, a second face that does not speak, a microphone in front of the speaker's
jaw (partial occlusion), and a cluttered background (shelves, posters, stripes). The speaker is rendered by
render_clip (so audio, offsets and mouth motion are the generator's own) and cut out of its
background: the clip is rendered twice with two flat background colours and everything else equal, and
alpha = 1 - (difference of the renders) / (difference of the colours), exact up to rounding, so the
composite keeps the renderer's antialiased edges. The listener is another speaker rendered with a mouth that
cannot open: the head sways, the eyes blink, the lips stay closed. In a dialogue (`turns`) the listener is a
second speaker instead: the two take turns (synth.timing), each silent with lips at rest in the other's turns,
and the audio holds both voices.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from modeformer_jax.data.synth import streams
from modeformer_jax.data.synth.clip import RenderedClip, render_clip
from modeformer_jax.data.synth.speakers import SpeakerStyle
from modeformer_jax.data.synth.timing import AudioTiming, talking_intervals

WIDTH, HEIGHT = 454, 256  # the TED-style wide shot of issue 18
_SPRITE = 160  # the speaker is rendered at this size, then scaled down to face_px
_KEY_DARK, _KEY_LIGHT = 60.0, 180.0  # flat backgrounds of the two renders; headroom for lighting and noise


@dataclasses.dataclass
class WideShot:
  """One wide-shot clip; like RenderedClip, with the boxes in scene pixels."""
  frames: np.ndarray  # uint8 [T, HEIGHT, WIDTH, 3] RGB
  audio: np.ndarray  # float32 [S] in [-1, 1]
  face_boxes: np.ndarray  # float32 [T, 4] the speaker's face (x, y, w, h): the face ellipse's bounding box
  listener_boxes: np.ndarray  # float32 [T, 4] the second face (silent, or the other speaker of a dialogue)
  mouth_centers: np.ndarray  # float32 [T, 2]
  mouth_open: np.ndarray  # float32 [T]
  transcript: str
  words: list[tuple[str, float, float]]
  fps: float
  sample_rate: int
  offset_frames: int
  timing: AudioTiming = AudioTiming()  # the offset over time (drift, step)
  # A dialogue's (start, end, face) seconds, face 0 the speaker and 1 the listener; None: the speaker talks alone.
  turns: list[tuple[float, float, int]] | None = None
  listener_mouth_open: np.ndarray | None = None  # float32 [T] in a dialogue


def render_wide_shot(seed: int, speaker: SpeakerStyle, listener: SpeakerStyle | None, seconds: float,
                     offset_frames: int = 0, face_px: float | None = None, width: int = WIDTH,
                     height: int = HEIGHT, fps: float = 25.0, sample_rate: int = 16000, *,
                     drift_ms_per_min: float = 0.0, step: tuple[float, int] | None = None,
                     turns: list[tuple[float, float, int]] | None = None) -> WideShot:
  """Renders one wide shot (deterministic in all arguments); face_px is the speaker's face height (default:
  drawn from 24..48 px by the seed); listener None leaves the second face out (listener_boxes are then NaN).
  drift_ms_per_min and step time the audio as render_clip does. turns (synth.timing.alternating_turns) makes
  it a dialogue: the listener talks in the turns of face 1, the speaker in those of face 0.

  Returns frames uint8 [T, height, width, 3] and audio float32 [S]; without turns the audio is render_clip's
  for the same seed, speaker, seconds and timing.
  """
  if turns is not None and listener is None:
    raise ValueError("a dialogue (turns) needs a listener to take turns with")
  rng = streams.generator(seed, 0x1de)
  face_px = rng.uniform(24, 48) if face_px is None else face_px
  timing = dict(drift_ms_per_min=drift_ms_per_min, step=step)
  clip, alpha = _cut_out(seed, speaker, seconds, offset_frames, fps, sample_rate, **timing,
                         talking=None if turns is None else talking_intervals(turns, 0))
  audio = clip.audio
  count = len(clip.frames)
  scale = face_px / float(np.median(clip.face_boxes[:, 3]))
  scene = np.repeat(_busy_background(rng, height, width)[None], count, axis=0)

  # The speaker walks slowly along a smooth path in the left two thirds, the listener stands on the right.
  t = np.arange(count) / fps
  phase = rng.uniform(0, 2 * np.pi, 2)
  centre_x = width * (0.36 + 0.04 * np.sin(2 * np.pi * t / rng.uniform(5, 8) + phase[0]))
  centre_y = height * (0.45 + 0.05 * np.sin(2 * np.pi * t / rng.uniform(3, 5) + phase[1]))
  # The listener is a speaker whose mouth cannot open: head, eyes and lighting move, the lips barely.
  if listener is not None and turns is None:
    silent = dataclasses.replace(listener, open_max=0.0, rest_open=0.0)
    listener_clip, listener_alpha = _cut_out(seed + 1, silent, seconds, 0, fps, sample_rate)
  elif listener is not None:
    listener_clip, listener_alpha = _cut_out(seed + 1, listener, seconds, offset_frames, fps, sample_rate, **timing,
                                             talking=talking_intervals(turns, 1))
    audio = np.clip(audio + listener_clip.audio, -1, 1)
  listener_scale = scale * rng.uniform(0.8, 1.1)
  listener_x = width * (0.8 + 0.02 * np.sin(2 * np.pi * t / rng.uniform(3, 5)))
  listener_y = height * (0.42 + 0.01 * np.sin(2 * np.pi * t / rng.uniform(2, 4)))
  face_boxes = np.empty((count, 4), np.float32)
  listener_boxes = np.full((count, 4), np.nan, np.float32)
  mouths = np.empty((count, 2), np.float32)
  for i in range(count):
    if listener is not None:
      placed = _place(scene[i], listener_clip.frames[i], listener_alpha[i], listener_scale, listener_x[i],
                      listener_y[i], listener_clip.face_boxes[i], listener.clothes)
      listener_boxes[i] = _box_in_scene(listener_clip.face_boxes[i], placed)
    placed = _place(scene[i], clip.frames[i], alpha[i], scale, centre_x[i], centre_y[i], clip.face_boxes[i],
                    speaker.clothes)
    face_boxes[i] = _box_in_scene(clip.face_boxes[i], placed)
    mouths[i] = np.asarray(placed[:2]) + clip.mouth_centers[i] * placed[2]
  _microphone(scene, rng, face_boxes)
  words = clip.words if turns is None else sorted(clip.words + listener_clip.words, key=lambda w: w[1])
  return WideShot(frames=scene, audio=audio, face_boxes=face_boxes, listener_boxes=listener_boxes,
                  mouth_centers=mouths, mouth_open=clip.mouth_open, transcript=" ".join(w for w, _, _ in words),
                  words=words, fps=fps, sample_rate=sample_rate, offset_frames=offset_frames, timing=clip.timing,
                  turns=turns, listener_mouth_open=None if turns is None else listener_clip.mouth_open)


def _cut_out(seed: int, style: SpeakerStyle, seconds: float, offset_frames: int, fps: float,
             sample_rate: int, **timing) -> tuple[RenderedClip, np.ndarray]:
  """The clip rendered on the dark key (render_clip's timing and talking keywords passed on), and its alpha
  float32 [T, S, S] (1 = the person)."""
  render = lambda key: render_clip(seed, dataclasses.replace(style, background=((key,) * 3, (key,) * 3)),
                                   seconds, offset_frames, _SPRITE, fps, sample_rate, **timing)
  dark, light = render(_KEY_DARK), render(_KEY_LIGHT)
  diff = light.frames.astype(np.float32).mean(axis=3) - dark.frames.astype(np.float32).mean(axis=3)
  # The frame's lighting scales the key difference too: each frame's corner (background) gives its scale.
  reference = np.median(diff[:, :8, :8].reshape(len(diff), -1), axis=1)[:, None, None]
  alpha = np.clip(1 - diff / np.maximum(reference, 1.0), 0, 1)
  alpha[alpha < 0.08] = 0  # rounding and sensor noise in the background
  return dark, alpha


def _place(scene: np.ndarray, sprite: np.ndarray, alpha: np.ndarray, scale: float, centre_x: float,
           centre_y: float, face_box: np.ndarray, clothes) -> tuple[float, float, float]:
  """Composites the sprite scaled by `scale` with its face centre at (centre_x, centre_y), a torso in its
  clothes' colour below it down to the frame's bottom; returns where the sprite's (0, 0) landed and the scale
  used (rounded to whole pixels of the scaled sprite)."""
  height, width = scene.shape[:2]
  side = max(1, round(sprite.shape[0] * scale))
  scale = side / sprite.shape[0]
  fx, fy = face_box[0] + face_box[2] / 2, face_box[1] + face_box[3] / 2
  x0, y0 = centre_x - fx * scale, centre_y - fy * scale
  # Area averaging to the new size (no aliasing), then a sub-pixel shift into place.
  shift = np.array([[1, 0, x0], [0, 1, y0]], np.float64)
  size = (width, height)
  layer = cv2.warpAffine(cv2.resize(sprite, (side, side), interpolation=cv2.INTER_AREA), shift, size,
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
  cover = cv2.warpAffine(cv2.resize(alpha, (side, side), interpolation=cv2.INTER_AREA), shift, size,
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
  # Torso: the sprite stops at its shoulders; the clothes continue to the bottom of the frame.
  bottom = int(np.floor(y0 + scale * sprite.shape[0])) - 1
  if 0 <= bottom < height - 1:
    row = cover[bottom] > 0.5
    if row.any():
      cols = np.flatnonzero(row)
      shade = np.asarray(clothes, np.float32) * 0.9
      scene[bottom:, cols[0]:cols[-1] + 1] = shade.astype(np.uint8)
  mixed = layer.astype(np.float32) * cover[..., None] + scene.astype(np.float32) * (1 - cover[..., None])
  scene[:] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
  return x0, y0, scale


def _box_in_scene(box: np.ndarray, placed: tuple[float, float, float]) -> np.ndarray:
  x0, y0, scale = placed
  return np.array([x0 + box[0] * scale, y0 + box[1] * scale, box[2] * scale, box[3] * scale], np.float32)


def _busy_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """uint8 [H, W, 3]: a wall with shelves of books, framed posters, a striped panel and a floor."""
  image = np.empty((height, width, 3), np.uint8)
  image[:] = rng.uniform(90, 200, 3)
  floor = int(height * rng.uniform(0.75, 0.85))
  image[floor:] = rng.uniform(40, 120, 3)
  for _ in range(int(rng.integers(2, 4))):  # shelves with books
    x0, y0 = int(rng.uniform(0, width * 0.8)), int(rng.uniform(0.05, 0.6) * height)
    shelf_w = int(rng.uniform(0.15, 0.35) * width)
    x = x0
    while x < min(width, x0 + shelf_w):
      book_w, book_h = int(rng.integers(3, 9)), int(rng.integers(14, 30))
      cv2.rectangle(image, (x, y0 - book_h), (x + book_w - 1, y0), tuple(rng.uniform(20, 235, 3).tolist()), -1)
      x += book_w + int(rng.integers(0, 2))
    cv2.rectangle(image, (x0 - 2, y0), (x0 + shelf_w + 2, y0 + 3), tuple(rng.uniform(40, 110, 3).tolist()), -1)
  for _ in range(int(rng.integers(2, 4))):  # posters: a frame around noise blocks
    px, py = int(rng.uniform(0, width * 0.85)), int(rng.uniform(0, height * 0.5))
    pw, ph = int(rng.uniform(25, 60)), int(rng.uniform(30, 70))
    cv2.rectangle(image, (px, py), (px + pw, py + ph), tuple(rng.uniform(10, 60, 3).tolist()), -1)
    blocks = rng.uniform(30, 230, (max(1, ph // 8), max(1, pw // 8), 3)).astype(np.uint8)
    inner = image[py + 3:py + ph - 2, px + 3:px + pw - 2]
    inner[:] = cv2.resize(blocks, (inner.shape[1], inner.shape[0]), interpolation=cv2.INTER_NEAREST)
  sx = int(rng.uniform(0, width * 0.8))  # a striped panel
  for k in range(0, int(rng.uniform(40, 90)), 6):
    cv2.line(image, (sx + k, 0), (sx + k, floor), tuple(rng.uniform(60, 200, 3).tolist()), 2)
  noise = rng.normal(0, 3, image.shape)
  return np.clip(image + noise, 0, 255).astype(np.uint8)


def _microphone(frames: np.ndarray, rng: np.random.Generator, face_boxes: np.ndarray) -> None:
  """A microphone on a stand, fixed in the scene, in front of the speaker's jaw on one side: it covers
  the cheek and jaw on that side (more or less as the head moves), never the mouth."""
  height = frames.shape[1]
  median = np.median(face_boxes, axis=0)
  side = rng.choice([-1, 1])
  x = median[0] + median[2] / 2 + side * median[2] * 0.55
  y = median[1] + median[3] * 0.8
  head_w, head_h = max(2, median[2] * 0.16), max(3, median[3] * 0.2)
  colour = tuple(rng.uniform(15, 50, 3).tolist())
  for frame in frames:
    cv2.line(frame, (int(x), int(y)), (int(x), height), colour, max(1, int(median[2] * 0.05)))
    cv2.ellipse(frame, (int(x), int(y)), (int(head_w), int(head_h)), 0, 0, 360, colour, -1)
