"""The run's summary (counts per split and skip reason, timings) and its per-clip report, OUT/prep_report.jsonl."""

from __future__ import annotations

import collections
import json
import os
from typing import Any, Iterable

from modeformer_jax import atomic
from modeformer_jax.data.prep.clip import TIMING_KEYS

REPORT_FILE = "prep_report.jsonl"
SKIPPED_LISTED = 20  # skipped clips the summary names one per line; the per-clip report holds them all


def summarise(splits: Iterable[str], reports: list[dict], computed: int) -> dict[str, Any]:
  by_split = {s: {"clips": 0, "ok": 0, "skipped": 0, "seconds": 0.0} for s in splits}
  reasons, warnings = collections.Counter(), collections.Counter()
  skipped = []
  timings = dict.fromkeys(TIMING_KEYS, 0.0)
  for r in reports:
    s = by_split[r["split"]]
    s["clips"] += 1
    s[r["status"]] += 1
    s["seconds"] = round(s["seconds"] + r["seconds"], 3)
    if r["status"] == "skipped":
      reasons[r["reason"]] += 1
      skipped.append({"source": r["source"], "reason": r["reason"], "detail": r["detail"]})
    warnings.update(w.split(":")[0] for w in r["warnings"])
    for k, v in r["timings"].items():
      timings[k] += v
  ok = sum(s["ok"] for s in by_split.values())
  cpu = sum(r["cpu_seconds"] for r in reports)
  seconds = sum(r["seconds"] for r in reports)
  return {
      "clips": len(reports), "ok": ok, "skipped": len(reports) - ok, "computed": computed,
      "resumed": len(reports) - computed, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
      "real_time_per_core": round(seconds / cpu, 2) if cpu else None,
      "splits": by_split, "skipped_by_reason": dict(reasons.most_common()),
      "skipped_items": skipped[:SKIPPED_LISTED], "skipped_unlisted": max(0, len(skipped) - SKIPPED_LISTED),
      "warnings": dict(warnings.most_common()), "clip_timings": {k: round(v, 3) for k, v in timings.items()},
  }


def write_report(out: str, dataset: str, reports: list[dict]) -> str:
  path = os.path.join(out, REPORT_FILE)
  lines = [json.dumps({"dataset": dataset, **r}, ensure_ascii=False) for r in reports]
  atomic.write(path, "\n".join(lines) + "\n", durable=True)
  return path


def _duration(seconds: float) -> str:
  return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def format_summary(summary: dict[str, Any]) -> str:
  """Human-readable summary: one line per split, then skip reasons and warnings."""
  status = {"written": f"wrote {summary.get('dataset_dir')}",
            "unchanged": f"{summary.get('dataset_dir')} is up to date: nothing to do",
            "nothing": "no clip could be prepared: no dataset written"}[summary["status"]]
  lines = [f"{summary['dataset']}: {status}",
           f"  {summary['clips']} clips: {summary['ok']} prepared, {summary['skipped']} skipped "
           f"({summary['computed']} computed, {summary['resumed']} from earlier runs), "
           f"{_duration(summary['seconds'])} of video"]
  if summary.get("real_time_per_core"):
    lines.append(f"  {summary['real_time_per_core']:.1f}x real time per core")
  for split, s in summary["splits"].items():
    lines.append(f"  {split:>10}: {s['ok']:>7} ok {s['skipped']:>7} skipped {_duration(s['seconds']):>10}")
  for reason, n in summary["skipped_by_reason"].items():
    lines.append(f"  skipped {reason}: {n}")
  for item in summary["skipped_items"]:
    lines.append(f"  skipped {item['source']}: {item['reason']}" + (f": {item['detail']}" if item["detail"] else ""))
  if summary["skipped_unlisted"]:
    lines.append(f"  ... and {summary['skipped_unlisted']} more skipped clips in the per-clip report")
  for warning, n in summary["warnings"].items():
    lines.append(f"  warning ({n}x): {warning}")
  if summary.get("report"):
    lines.append(f"  per-clip report: {summary['report']}")
  return "\n".join(lines)
