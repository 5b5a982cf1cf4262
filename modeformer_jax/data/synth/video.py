"""A clip's frames from its articulation track: a face drawn with soft ellipses (head, hair, eyes that blink, a
mouth whose opening and rounding follow the track), slow head motion and lighting, sensor noise."""

from __future__ import annotations

import numpy as np

from modeformer_jax.data.synth.articulation import CHANNEL, Track, gaussian
from modeformer_jax.data.synth.speakers import SpeakerStyle


def _frame_noise(rng: np.random.Generator, rows: int, frames: int, sigma: float) -> np.ndarray:
  """[rows, frames] smooth unit-variance noise over frames."""
  kernel = gaussian(sigma)
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


def render_video(track: Track, style: SpeakerStyle, rng: np.random.Generator, frames: int, size: int,
                  fps: float, face_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Frames uint8 [T, H, W, 3], face boxes [T, 4], mouth centres [T, 2], mouth opening [T]."""
  t = (np.arange(frames) + 0.5) / fps
  open_ = np.clip(track.at(t, track.channels[CHANNEL["open"]]), 0, 1)
  round_ = np.clip(track.at(t, track.channels[CHANNEL["round"]]), 0, 1)
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
