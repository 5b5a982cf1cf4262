"""What a timeline's offsets say about the file: one constant offset, a linear drift, or a step change.

Input: the decided segments of a timeline, each an AV offset (in frames, refined between whole frames) at its
centre time. Three models are fitted, each robustly (a few wrong segments do not pull it): constant
(offset = a), drift (offset = a + b t) and step (a1 before a time, a2 after). The one the evidence supports is
chosen by BIC on a truncated squared loss, with the segments' overlap counted (segments that share half their
windows carry half the evidence each), and only where the difference matters: a drift must move the offset by
at least half a frame over the file and stand out of its own error 3 times over; a step must be at least one
frame. When no model explains the offsets to within a frame (two steps, a wandering offset) the trend is
"irregular". A step's time is then refined window by window: the change point that best splits the windows
between the offset before and the one after.

Offsets follow SPEC section 6 (> 0: the audio leads the video). Times are seconds of the analysed file.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from modeformer_jax.offsets import describe_offset

# Residual scale (frames) below which offsets count as fitting exactly: refined offsets are good to about a
# tenth of a frame, and the loss needs a floor for a perfect fit.
_NOISE_FLOOR = 0.1
# A residual beyond this many robust standard deviations (at least _OUTLIER_FRAMES) is a wrong segment.
_OUTLIER_SIGMAS = 3.0
_OUTLIER_FRAMES = 1.0
# The smallest changes worth reporting: a drift moving the offset half a frame over the file, a 1-frame step.
_MIN_DRIFT_FRAMES = 0.5
_MIN_STEP_FRAMES = 1.0
_DRIFT_SIGMAS = 3.0
# Segments a model must leave on either side of a step.
_MIN_SIDE = 2
# No model fits when the robust residual spread is above this (frames) or more than this share are outliers.
_IRREGULAR_FRAMES = 1.0
_IRREGULAR_SHARE = 0.25

KINDS = ("constant", "drift", "step", "irregular", "unknown")


@dataclasses.dataclass
class Trend:
  """The offset over time, in one of KINDS. Offsets in frames at fps (> 0: audio leads)."""
  kind: str
  fps: float
  segments: int  # decided segments the fit used
  outliers: int = 0  # of those, left out as wrong
  offset_frames: float | None = None  # constant: the offset; drift: at time 0
  offset_error_frames: float | None = None
  drift_ms_per_min: float | None = None  # fitted for constant and drift (a constant's drift is ~0)
  drift_error_ms_per_min: float | None = None
  step_s: float | None = None
  before_frames: float | None = None
  after_frames: float | None = None
  residual_frames: float | None = None  # robust spread of the segments around the chosen model
  span_s: tuple[float, float] | None = None  # first and last segment centre

  @property
  def correctable(self) -> bool:
    """One mapping of the audio (a shift, or a shift plus resampling) puts the whole file in sync."""
    return self.kind in ("constant", "drift", "unknown")

  def offset_ms_at(self, seconds: float) -> float | None:
    """The fitted offset at `seconds` in ms (None for kinds without one mapping)."""
    if self.kind == "constant":
      return self.offset_frames * 1000 / self.fps
    if self.kind == "drift":
      return self.offset_frames * 1000 / self.fps + self.drift_ms_per_min * seconds / 60
    return None

  def text(self) -> str:
    """One line: the kind and its numbers."""
    ms = 1000 / self.fps
    used = f"{self.segments} segment{'s' * (self.segments != 1)}" + (
        f", {self.outliers} left out" if self.outliers else "")
    if self.kind == "unknown":
      return "unknown: no segment confident enough to decide"
    if self.kind == "constant":
      drift = (f"; drift {self.drift_ms_per_min:+.1f} +- {self.drift_error_ms_per_min:.1f} ms/min, not significant"
               if self.drift_ms_per_min is not None else "")
      return (f"constant {self.offset_frames:+.2f} frames ({self.offset_frames * ms:+.0f} +- "
              f"{self.offset_error_frames * ms:.0f} ms; {describe_offset(round(self.offset_frames), self.fps)})"
              f"{drift} ({used})")
    if self.kind == "drift":
      first, last = self.span_s
      at = lambda t: self.offset_frames + self.drift_ms_per_min * t / 60 / ms
      return (f"drift {self.drift_ms_per_min:+.1f} +- {self.drift_error_ms_per_min:.1f} ms/min (offset "
              f"{at(first):+.2f} frames at {first:.0f} s, {at(last):+.2f} at {last:.0f} s; "
              f"{'the audio gains on' if self.drift_ms_per_min > 0 else 'the audio falls behind'} the video) "
              f"({used})")
    if self.kind == "step":
      return (f"step at {self.step_s:.1f} s from {self.before_frames:+.2f} to {self.after_frames:+.2f} frames "
              f"({self.before_frames * ms:+.0f} ms -> {self.after_frames * ms:+.0f} ms) ({used})")
    return (f"irregular: the offsets vary by {self.residual_frames:.1f} frames around the best fit, more than one "
            f"offset, drift or step explains ({used})")

  def refusal(self) -> str | None:
    """Why one mapping cannot correct the file (None when it can)."""
    if self.kind == "step":
      return (f"the offset steps from {self.before_frames:+.1f} to {self.after_frames:+.1f} frames at "
              f"{self.step_s:.1f} s: no single shift or resampling corrects both parts; cut the file there and "
              f"correct each part")
    if self.kind == "irregular":
      return ("the offset varies over the file in a way no single shift or drift correction follows "
              f"({self.residual_frames:.1f} frames around the best fit); look at the timeline")
    return None

  def to_json(self) -> dict[str, Any]:
    def r(x, digits=3):
      return None if x is None else round(float(x), digits)

    return {"kind": self.kind, "text": self.text(), "segments": self.segments, "outliers": self.outliers,
            "offset_frames": r(self.offset_frames), "offset_ms": r(self.offset_frames and self.offset_frames
                                                                     * 1000 / self.fps, 1),
            "offset_error_ms": r(self.offset_error_frames and self.offset_error_frames * 1000 / self.fps, 1),
            "drift_ms_per_min": r(self.drift_ms_per_min, 2),
            "drift_error_ms_per_min": r(self.drift_error_ms_per_min, 2),
            "step_s": r(self.step_s, 2), "before_frames": r(self.before_frames), "after_frames": r(self.after_frames),
            "residual_frames": r(self.residual_frames), "correctable": self.correctable}


@dataclasses.dataclass
class _Fit:
  predicted: np.ndarray  # [n] the model's offsets at the segments
  params: int
  inliers: np.ndarray  # bool [n]
  extra: dict


def _robust_scale(residuals: np.ndarray) -> float:
  return max(_NOISE_FLOOR, 1.4826 * float(np.median(np.abs(residuals))))


def _inliers(residuals: np.ndarray) -> np.ndarray:
  return np.abs(residuals) <= max(_OUTLIER_SIGMAS * _robust_scale(residuals), _OUTLIER_FRAMES)


def _constant(t: np.ndarray, y: np.ndarray) -> _Fit:
  keep = _inliers(y - np.median(y))
  mean = float(y[keep].mean())
  return _Fit(np.full(len(y), mean), 1, keep, {"offset": mean})


def _line(t: np.ndarray, y: np.ndarray) -> _Fit:
  keep = np.ones(len(y), bool)
  for _ in range(2):  # fit, drop the wrong segments, fit again
    slope, intercept = np.polyfit(t[keep], y[keep], 1)
    keep = _inliers(y - (intercept + slope * t))
  slope, intercept = np.polyfit(t[keep], y[keep], 1)
  return _Fit(intercept + slope * t, 2, keep, {"intercept": float(intercept), "slope": float(slope)})


def _step(t: np.ndarray, y: np.ndarray) -> _Fit | None:
  best = None
  for k in range(_MIN_SIDE, len(y) - _MIN_SIDE + 1):
    left, right = np.median(y[:k]), np.median(y[k:])
    predicted = np.where(np.arange(len(y)) < k, left, right)
    loss = np.abs(y - predicted).sum()
    if best is None or loss < best[0]:
      best = (loss, k)
  if best is None:
    return None
  k = best[1]
  keep = _inliers(y - np.where(np.arange(len(y)) < k, np.median(y[:k]), np.median(y[k:])))
  before, after = y[:k][keep[:k]], y[k:][keep[k:]]
  if not len(before) or not len(after):
    return None
  predicted = np.where(np.arange(len(y)) < k, before.mean(), after.mean())
  return _Fit(predicted, 3, keep, {"split": k, "before": float(before.mean()), "after": float(after.mean())})


def _criterion(fit: _Fit, y: np.ndarray, evidence: float) -> float:
  """BIC with a truncated squared loss: outliers cost as much as a residual at the outlier bound."""
  bound = max(_OUTLIER_FRAMES, _OUTLIER_SIGMAS * _robust_scale(y - fit.predicted))
  loss = np.minimum((y - fit.predicted) ** 2, bound ** 2)
  n = evidence * len(y)
  return n * np.log(max(loss.mean(), _NOISE_FLOOR ** 2)) + fit.params * np.log(max(n, 2.0))


def fit_trend(times: np.ndarray, offsets: np.ndarray, fps: float, evidence: float = 1.0,
              window_scores: np.ndarray | None = None, window_times: np.ndarray | None = None) -> Trend:
  """The trend of decided segments.

  Args:
    times: float [n] segment centres in seconds, increasing.
    offsets: float [n] their AV offsets in frames (refined between whole frames).
    fps: frames per second of the offsets.
    evidence: the share of a segment's windows no other segment holds (hop / window when segments overlap,
      at most 1): it scales the evidence in the model choice and the errors.
    window_scores: float [L, 2S+1] per-window similarities of the speaking face (column j = AV offset S - j,
      NaN = missing), to place a step to the window; without them a step lies between two segment centres.
    window_times: float [L] the windows' centre times in seconds.
  """
  t, y = np.asarray(times, np.float64), np.asarray(offsets, np.float64)
  n = len(y)
  if n == 0:
    return Trend("unknown", fps, 0)
  span = (float(t[0]), float(t[-1]))
  if n < 3:
    return Trend("constant", fps, n, offset_frames=float(y.mean()), offset_error_frames=_NOISE_FLOOR,
                 residual_frames=0.0, span_s=span)
  evidence = min(1.0, max(evidence, 1e-3))
  constant, line, step = _constant(t, y), _line(t, y), _step(t, y)
  slope_error = _slope_error(t, y, line, evidence)
  drift_ms = line.extra["slope"] * 60 * 1000 / fps
  drift_error_ms = slope_error * 60 * 1000 / fps
  scores = {"constant": _criterion(constant, y, evidence), "drift": _criterion(line, y, evidence)}
  if step is not None:
    scores["step"] = _criterion(step, y, evidence)
  drift_matters = (abs(line.extra["slope"]) * (t[-1] - t[0]) >= _MIN_DRIFT_FRAMES
                   and abs(line.extra["slope"]) >= _DRIFT_SIGMAS * slope_error)
  if not drift_matters:
    scores["drift"] = np.inf
  if step is not None and abs(step.extra["after"] - step.extra["before"]) < _MIN_STEP_FRAMES:
    scores["step"] = np.inf
  kind = min(scores, key=scores.get)
  fit = {"constant": constant, "drift": line, "step": step}[kind]
  residual = _robust_scale((y - fit.predicted)[fit.inliers])
  outliers = int((~fit.inliers).sum())
  if residual > _IRREGULAR_FRAMES or outliers > _IRREGULAR_SHARE * n:
    return Trend("irregular", fps, n, outliers, residual_frames=residual, span_s=span)
  common = dict(fps=fps, segments=n, outliers=outliers, residual_frames=residual, span_s=span)
  if kind == "constant":
    kept = y[fit.inliers]
    error = residual / np.sqrt(max(1.0, evidence * len(kept)))
    return Trend("constant", offset_frames=float(kept.mean()), offset_error_frames=error,
                 drift_ms_per_min=drift_ms, drift_error_ms_per_min=drift_error_ms, **common)
  if kind == "drift":
    return Trend("drift", offset_frames=line.extra["intercept"], offset_error_frames=residual,
                 drift_ms_per_min=drift_ms, drift_error_ms_per_min=drift_error_ms, **common)
  split = step.extra["split"]
  at = 0.5 * (t[split - 1] + t[split])
  if window_scores is not None and window_times is not None:
    at = _refine_step(window_scores, np.asarray(window_times), t[split - 1], t[split], step.extra["before"],
                      step.extra["after"])
  return Trend("step", step_s=float(at), before_frames=step.extra["before"], after_frames=step.extra["after"],
               **common)


def _slope_error(t: np.ndarray, y: np.ndarray, line: _Fit, evidence: float) -> float:
  """Standard error of the line's slope (frames per second) from its inliers, for overlapping segments."""
  keep = line.inliers
  spread = np.sum((t[keep] - t[keep].mean()) ** 2)
  if keep.sum() < 3 or spread <= 0:
    return np.inf
  residual = y[keep] - line.predicted[keep]
  variance = max(np.sum(residual ** 2) / (keep.sum() - 2), _NOISE_FLOOR ** 2)
  return float(np.sqrt(variance / spread / evidence))


def _refine_step(scores: np.ndarray, times: np.ndarray, lo: float, hi: float, before: float,
                 after: float) -> float:
  """The change point between times lo and hi (seconds) that best splits the windows there between offset
  `before` and offset `after`: argmax over tau of sum_{t < tau} s(before) + sum_{t >= tau} s(after)."""
  max_offset = scores.shape[1] // 2
  column = lambda offset: max_offset - int(np.clip(round(offset), -max_offset, max_offset))
  inside = np.flatnonzero((times >= lo) & (times <= hi))
  if len(inside) < 2:
    return 0.5 * (lo + hi)
  gain = np.nan_to_num(scores[inside, column(before)] - scores[inside, column(after)])
  # Splitting before window i keeps the windows before i with `before`: their gains sum.
  totals = np.concatenate([[0.0], np.cumsum(gain)])
  i = int(np.argmax(totals))
  return float(times[inside[min(i, len(inside) - 1)]] if i < len(inside) else hi)
