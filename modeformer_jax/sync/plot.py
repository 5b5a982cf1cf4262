"""PNG report of one video's offset search: similarity and distance by offset, the per-window histogram, and
syncnet's framewise confidence over time. matplotlib's object API with the Agg canvas: no pyplot state, no
display needed, safe to call from any thread."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from modeformer_jax import atomic
from modeformer_jax.offsets import describe_offset
from modeformer_jax.sync.detect import SyncResult


def plot_result(result: SyncResult, path: str | os.PathLike) -> str:
  """Writes the PNG (parent folders created) and returns its path."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  fig = Figure(figsize=(10, 7.5))
  FigureCanvasAgg(fig)
  # Fixed margins: matplotlib's automatic layouts cost seconds per figure on a busy CPU.
  curve, hist, frames = fig.subplots(3, 1, height_ratios=(3, 2, 2),
                                     gridspec_kw=dict(left=0.09, right=0.91, top=0.95, bottom=0.07, hspace=0.45))
  offsets = result.offsets
  curve.plot(offsets, result.similarity, "o-", color="tab:blue", ms=3, label="mean cosine similarity")
  curve.set_ylabel("cosine similarity", color="tab:blue")
  dist = curve.twinx()
  dist.plot(offsets, result.mdist, "s--", color="tab:red", ms=2, lw=1, label="mdist (sqrt(2 - 2 cos))")
  dist.set_ylabel("mean distance", color="tab:red")
  curve.axvline(result.offset, color="k", lw=1)
  curve.set_xlabel("AV offset (frames; > 0: audio leads video)")
  curve.set_xlim(offsets[0] - 0.5, offsets[-1] + 0.5)
  curve.set_title(f"{Path(result.path).name}: AV offset {result.offset} ({describe_offset(result.offset, result.fps)})"
                  f", Min dist {result.min_dist:.3f}, Confidence {result.confidence:.3f}", fontsize=10)

  hist.bar(offsets, result.histogram, width=0.8, color="tab:gray")
  hist.bar([result.mode], [result.histogram[list(offsets).index(result.mode)]], width=0.8, color="tab:orange",
           label=f"mode {result.mode}")
  hist.set_xlim(offsets[0] - 0.5, offsets[-1] + 0.5)
  hist.set_xlabel("best AV offset of each 5-frame window (frames)")
  hist.set_ylabel("windows")
  hist.legend(loc="upper right", fontsize=8)

  seconds = np.arange(len(result.framewise_conf)) / result.fps
  frames.plot(seconds, result.framewise_conf, color="tab:green", lw=1)
  frames.axhline(0, color="k", lw=0.5)
  frames.set_xlabel("window start (s)")
  frames.set_ylabel("framewise conf.")
  frames.set_title("syncnet framewise confidence (median-filtered over 9 windows)", fontsize=9)
  with atomic.replacing(path) as tmp:
    fig.savefig(tmp, dpi=100)
  return os.fspath(path)
