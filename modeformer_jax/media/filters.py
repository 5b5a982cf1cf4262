"""Filters along time, shared by syncnet_python's crops (media/crops.py) and metrics (sync/)."""

from __future__ import annotations

import numpy as np


def median_filter(x: np.ndarray, kernel: int) -> np.ndarray:
  """scipy.signal.medfilt(x, kernel) (zero-padded ends) that skips NaN inside a window; NaN stays NaN.

  x [L] -> [L]. Without NaN it equals medfilt exactly.
  """
  x = np.asarray(x, np.float64)
  if kernel % 2 != 1:
    raise ValueError(f"kernel must be odd, got {kernel}")
  half = kernel // 2
  windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, half), kernel)  # [L, kernel]
  out = np.full(len(x), np.nan)
  present = ~np.isnan(x)
  if present.any():
    out[present] = np.nanmedian(windows[present], axis=1)
  return out
