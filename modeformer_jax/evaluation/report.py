"""What `modeformer eval` and the experiments write: results.json, a Table 1 markdown table, plots.

Tables follow the layout of the paper's Table 1 (accuracy % at clip lengths 5..15 frames, parameters), with
the paper's rows of SPEC section 5 alongside ours. Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
import os
from typing import Sequence

from modeformer_jax import atomic
from modeformer_jax.evaluation.protocol import CLIP_LENGTHS
from modeformer_jax.offsets import describe_offset

# SPEC section 5 (the paper's Table 1): dataset, model, accuracy % at 5/7/9/11/13/15 frames, parameters.
PAPER_TABLE1 = (
    ("LRS2", "SyncNet", (75.8, 82.3, 87.6, 91.8, 94.5, 96.1), "13.6M"),
    ("LRS2", "PM", (88.1, 93.8, 96.4, 97.9, 98.7, 99.1), "13.6M"),
    ("LRS2", "AVST (variable length)", (91.9, 97.0, 98.8, 99.6, 99.8, 99.9), "42.4M"),
    ("LRS2", "VocaLiST", (92.8, 96.7, 98.4, 99.3, 99.6, 99.8), "80.1M"),
    ("LRS2", "ModEFormer", (94.5, 97.1, 98.5, 99.3, 99.7, 99.8), "59.0M"),
    ("LRS3", "AVST", (77.3, 88.0, 93.3, 96.4, 97.8, 98.6), "42.4M"),
    ("LRS3", "ModEFormer", (90.9, 93.1, 96.0, 97.7, 98.7, 99.2), "59.0M"),
)
TABLE_COLUMNS = ("dataset", "model")


def format_params(count: int) -> str:
  return f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count / 1e3:.0f}K"


# SyncNet checkpoints by objective: the original loss, Perfect Match's, ours.
SYNCNET_LABELS = {"contrastive": "SyncNet", "multiway": "PM", "infonce": "SyncNet (InfoNCE)"}


def model_label(results: dict) -> str:
  """The system's name in Table 1 terms (SyncNet, PM, VocaLiST, AVST, ModEFormer, 3D-SyncNet for the temporal
  pooling ablation), with the checkpoint step."""
  model = results["model"]
  name = {"syncnet": SYNCNET_LABELS.get(model.get("objective"), "SyncNet"), "vocalist": "VocaLiST",
          "avst": "AVST"}.get(
      model.get("name"), "3D-SyncNet" if model.get("temporal") == "pool" else "ModEFormer")
  step = model["step"]
  return f"{name} (ours{'' if step is None else f', step {step}'})"


def accuracy_percent(results: dict) -> dict[int, float]:
  """{K: accuracy %} of an evaluation's results."""
  return {int(k): 100 * v["accuracy"] for k, v in results["clip_lengths"].items()}


def results_row(results: dict, **columns) -> dict:
  """A table row of our results; `columns` override or add key columns (default: dataset and model)."""
  dataset = results["data"].get("dataset", "?")
  return {"dataset": dataset.upper() if dataset in ("lrs2", "lrs3") else dataset, "model": model_label(results),
          **columns, "accuracy": accuracy_percent(results), "params": format_params(results["model"]["params"])}


def paper_rows(datasets: Sequence[str]) -> list[dict]:
  """The paper's rows for these datasets (all of them when none is LRS2 or LRS3)."""
  wanted = {d.upper() for d in datasets} & {"LRS2", "LRS3"} or {"LRS2", "LRS3"}
  return [{"dataset": d, "model": f"{m} (paper)", "accuracy": dict(zip(CLIP_LENGTHS, acc)), "params": p}
          for d, m, acc, p in PAPER_TABLE1 if d in wanted]


def markdown_table(rows: Sequence[dict], columns: Sequence[str] = TABLE_COLUMNS) -> str:
  """Table 1 layout: key columns, accuracy % per clip length (every length any row has), params."""
  lengths = sorted({k for r in rows for k in r["accuracy"]} | set(CLIP_LENGTHS))
  header = [*columns, *map(str, lengths), "params"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for r in rows:
    cells = [str(r.get(c, "")) for c in columns]
    cells += [f"{r['accuracy'][k]:.1f}" if k in r["accuracy"] else "-" for k in lengths]
    lines.append("| " + " | ".join([*cells, r.get("params", "")]) + " |")
  return "\n".join(lines) + "\n"


def summary_text(results: dict) -> str:
  """Human-readable: the Table 1 rows (ours and the paper's) and the counts behind our number."""
  row = results_row(results)
  lengths = sorted(int(k) for k in results["clip_lengths"])
  counts = results["clip_lengths"][str(lengths[0])]
  offsets = results["offsets"]
  mode = offsets[max(range(len(offsets)), key=results["video_offset_histogram"].__getitem__)]
  words = describe_offset(mode, results["protocol"]["fps"])
  facts = [f"{counts['videos']} videos, {counts['windows']} windows", f"{len(results['skipped'])} skipped",
           f"{results['mode']} scoring", results["data"].get("description", ""),
           f"checkpoint {results['model']['source']} step {results['model']['step']}"]
  text = ["Sync accuracy (%), SPEC section 5 protocol (+-1 frame tolerance, mean over videos)", "",
          markdown_table([row, *paper_rows([row["dataset"]])]), "; ".join(f for f in facts if f),
          f"most common per-video AV offset: {mode:+d} frames ({words}), "
          f"{max(results['video_offset_histogram'])} of {counts['videos']} videos"]
  return "\n".join(text) + "\n"


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")  # files only; no display on servers
  from matplotlib import pyplot
  return pyplot


def plot_lines(path: str, series: dict[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str,
               ylabel: str = "accuracy (%)", title: str = "", dashed: Sequence[str] = ()) -> None:
  """One line per series {label: (xs, ys)}; labels in `dashed` are references (the paper)."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
  for label, (xs, ys) in series.items():
    ax.plot(xs, ys, "--" if label in dashed else "-", marker="o", label=label)
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  ax.set_xticks(sorted({x for xs, _ in series.values() for x in xs}))
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  with atomic.replacing(path) as tmp:
    fig.savefig(tmp)
  plt.close(fig)


def accuracy_series(rows: Sequence[dict], keys: Sequence[str] = TABLE_COLUMNS
                    ) -> dict[str, tuple[list[int], list[float]]]:
  """{label: (clip lengths, accuracy %)} of table rows; label = the rows' `keys` columns that they have."""
  return {" ".join(str(r[k]) for k in keys if k in r): (sorted(r["accuracy"]),
                                                        [r["accuracy"][k] for k in sorted(r["accuracy"])])
          for r in rows}


def plot_offset_histogram(results: dict, path: str) -> None:
  plt = _pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), dpi=100)
  for ax, key, title in ((axes[0], "window_offset_histogram", "best offset per 5-frame window"),
                         (axes[1], "video_offset_histogram", "most likely offset per video")):
    ax.bar(results["offsets"], results[key])
    ax.set(xlabel="AV offset (frames; > 0: audio leads video)", ylabel="count", title=title)
  fig.tight_layout()
  with atomic.replacing(path) as tmp:
    fig.savefig(tmp)
  plt.close(fig)


def write_report(results: dict, out: str) -> dict[str, str]:
  """results.json, table.md, accuracy_vs_clip_length.png and offset_histogram.png in `out`.

  Each file is written whole, results.json last: where it exists the report is complete (sweeps skip such
  runs when resumed).
  """
  paths = {name: os.path.join(out, name) for name in
           ("results.json", "table.md", "accuracy_vs_clip_length.png", "offset_histogram.png")}
  atomic.write(paths["table.md"], summary_text(results))
  row = results_row(results)
  reference = [r for r in paper_rows([row["dataset"]]) if r["model"].startswith("ModEFormer")]
  plot_lines(paths["accuracy_vs_clip_length.png"], accuracy_series([row, *reference]), xlabel="clip length (frames)",
             title=f"{row['dataset']} {results['data'].get('split', '')}",
             dashed=list(accuracy_series(reference)))
  plot_offset_histogram(results, paths["offset_histogram.png"])
  atomic.write(paths["results.json"], json.dumps(results, indent=1))
  return paths
