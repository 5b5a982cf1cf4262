"""PNG report of one video's offset search: similarity and distance by offset, the per-window histogram, and
syncnet's framewise confidence over time; with a timeline, the offset and Confidence of every segment over time
with the trend. matplotlib's object API with the Agg canvas: no pyplot state, no display needed, safe to call
from any thread."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np

from modeformer_jax import atomic
from modeformer_jax.offsets import describe_offset
from modeformer_jax.sync.detect import SyncResult


# Face tracks' colours in the timeline panel: none of the trend's (black) or the Confidence's (green).
_TRACK_COLOURS = ("tab:blue", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def plot_result(result: SyncResult, path: str | os.PathLike) -> str:
  """Writes the PNG (parent folders created) and returns its path."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  shown = result.timeline_shown
  fig = Figure(figsize=(10, 10 if shown else 7.5))
  FigureCanvasAgg(fig)
  # Fixed margins: matplotlib's automatic layouts cost seconds per figure on a busy CPU.
  panels = fig.subplots(4 if shown else 3, 1, height_ratios=(3, 2, 2, 3) if shown else (3, 2, 2),
                        gridspec_kw=dict(left=0.09, right=0.91, top=0.96, bottom=0.05, hspace=0.55))
  curve, hist, frames = panels[:3]
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
  if shown:
    _plot_timeline(panels[3], result)
  with atomic.replacing(path) as tmp:
    fig.savefig(tmp, dpi=100)
  return os.fspath(path)


def _plot_timeline(axes, result: SyncResult) -> None:
  """Offset (frames) of each segment at its centre (coloured by the speaking face when there are several), the
  trend, and each segment's Confidence with the threshold."""
  timeline = result.timeline
  segments = timeline.segments
  centres = np.array([s.centre_s for s in segments])
  decided = np.array([s.decided for s in segments])
  fine = np.array([s.offset_fine if s.decided else np.nan for s in segments])
  if len(result.tracks) > 1:  # who speaks: each face's segments in its own colour
    track = np.array([-1 if s.track is None else s.track for s in segments])
    for k in range(len(result.tracks)):
      mine = decided & (track == k)
      axes.plot(centres[mine], fine[mine], "o", color=_TRACK_COLOURS[k % len(_TRACK_COLOURS)], ms=4,
                label=f"offset, face track {k} speaking")
  else:
    axes.plot(centres[decided], fine[decided], "o", color="tab:blue", ms=4, label="offset (decided)")
  trend = timeline.trend
  ends = np.array([0.0, result.duration])
  if trend.kind in ("constant", "drift"):
    axes.plot(ends, [trend.offset_ms_at(t) * result.fps / 1000 for t in ends], "-", color="black", lw=1.2,
              label=trend.kind)
  elif trend.kind == "step":
    axes.plot([0, trend.step_s, trend.step_s, result.duration],
              [trend.before_frames, trend.before_frames, trend.after_frames, trend.after_frames], "-",
              color="black", lw=1.2, label=f"step at {trend.step_s:.1f} s")
  axes.set_xlim(0, result.duration)
  axes.set_xlabel("time (s)")
  axes.set_ylabel("AV offset (frames)", color="tab:blue")
  low = [s.start_s for s in segments if not s.decided]
  if low:  # where the segments could not decide: a mark on the time axis
    axes.plot([s.centre_s for s in segments if not s.decided], np.full(len(low), np.nanmin(fine) - 1
              if decided.any() else 0.0), "x", color="tab:gray", ms=5, label="too low to decide")
  axes.legend(loc="best", fontsize=8)
  confidence = axes.twinx()
  confidence.plot(centres, [np.nan if s.confidence is None else s.confidence for s in segments], "-",
                  color="tab:green", lw=1)
  if timeline.threshold is not None:
    confidence.axhline(timeline.threshold, color="tab:green", lw=0.8, ls="--")
  confidence.set_ylabel("Confidence (dashed: threshold)", color="tab:green")
  axes.set_title(f"timeline ({timeline.options.window_s:g} s segments every {timeline.options.hop:g} s)\n"
                 f"{textwrap.shorten(trend.text(), 150)}", fontsize=9)
