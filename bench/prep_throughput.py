"""Throughput of `modeformer prep` and the raw-vs-JPEG frame storage trade-off, measured in one run.

Generates a small LRS2-layout stand-in (160x160, 25 fps; or takes --src), prepares it with one worker in this
process for each frame storage, and prints:
  - seconds of video prepared per CPU-second (x real time per core; target >= 20 for 160x160 input), from the
    per-clip CPU time (decoder threads included), and the wall-time split decode / faces / crop / mel /
    encode / save, plus the shard writing;
  - bytes per hour of video on disk and loader throughput (records/s decoded to uint8 crops; whole clips and
    one 5-frame window per record) for raw and JPEG storage;
  - a JPEG quality sweep on the same crops (bytes per frame, PSNR against raw, decode time per frame);
  - the ratios between the two storages.

  python bench/prep_throughput.py [--src DIR] [--speakers 6] [--clips 4] [--seconds 5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from modeformer_jax.data import prep, synth
from modeformer_jax.data.records import decode_jpeg_frames, encode_jpeg_frames, open_split

STAGES = ("decode", "faces", "crop", "mel", "encode", "save")


def _dir_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _loader_rate(sources, window: bool, min_seconds: float) -> float:
  """Records per second through RecordSource (random order), all crops decoded or one 5-frame window."""
  order = [(s, i) for s in sources for i in range(len(s))]
  rng = np.random.default_rng(0)
  count, start = 0, time.perf_counter()
  while time.perf_counter() - start < min_seconds:
    for k in rng.permutation(len(order)):
      source, i = order[k]
      record = source.load(i, frames=slice(0, 5)) if window else source[i]
      assert record["crops"].dtype == np.uint8
      count += 1
  return count / (time.perf_counter() - start)


def _storage_run(src: str, out: str, storage: str, quality: int, min_seconds: float) -> dict:
  options = prep.PrepOptions("lrs2", frame_storage=storage, jpeg_quality=quality)
  cpu = time.process_time()
  summary = prep.prepare("lrs2", src, out, options=options, workers=1, progress=False)
  total_cpu = time.process_time() - cpu
  if summary["status"] != "written":
    raise SystemExit(f"prep wrote nothing for {storage}: {summary['skipped_by_reason']}")
  sources = [open_split(out, "lrs2", split) for split in summary["tfds_splits"]]
  hours = summary["seconds"] / 3600
  return {
      "summary": summary,
      "write_cpu": total_cpu - summary["cpu_seconds"],
      "bytes_per_hour": _dir_bytes(summary["dataset_dir"]) / hours,
      "records_per_s": _loader_rate(sources, False, min_seconds),
      "windows_per_s": _loader_rate(sources, True, min_seconds),
      "sources": sources,
  }


def _quality_sweep(sources, qualities, max_frames: int = 2000) -> list[tuple]:
  frames = np.concatenate([s[i]["crops"] for s in sources for i in range(len(s))])[:max_frames]
  rows = []
  for q in qualities:
    jpegs = encode_jpeg_frames(frames, q)
    start = time.perf_counter()
    decoded = decode_jpeg_frames(jpegs)
    decode_us = (time.perf_counter() - start) / len(frames) * 1e6
    mse = np.mean((decoded.astype(np.float64) - frames) ** 2)
    rows.append((q, np.mean([len(j) for j in jpegs]), 10 * np.log10(255 ** 2 / mse), decode_us))
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--src", help="an LRS2-layout folder (default: generate one)")
  parser.add_argument("--speakers", type=int, default=6, help="generated speakers")
  parser.add_argument("--clips", type=int, default=4, help="generated clips per speaker")
  parser.add_argument("--seconds", type=float, default=5.0, help="generated clip length")
  parser.add_argument("--jpeg-quality", type=int, default=90, help="quality of the JPEG run")
  parser.add_argument("--loader-seconds", type=float, default=2.0, help="minimum time per loader measurement")
  parser.add_argument("--workdir", help="where to put the generated data and outputs (default: a temp dir)")
  args = parser.parse_args(argv)

  with tempfile.TemporaryDirectory(dir=args.workdir) as work:
    src = args.src
    if src is None:
      src = os.path.join(work, "lrs2")
      start = time.perf_counter()
      synth.write_dataset(src, "lrs2", args.speakers, args.clips, args.seconds, seed=0, progress=False)
      print(f"generated {args.speakers * args.clips} clips x {args.seconds:g} s (160x160, 25 fps) in "
            f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    runs = {s: _storage_run(src, os.path.join(work, s), s, args.jpeg_quality, args.loader_seconds)
            for s in ("raw", "jpeg")}
    sweep = _quality_sweep(runs["raw"]["sources"], (75, 85, 90, 95))

  raw, jpeg = runs["raw"], runs["jpeg"]
  s = jpeg["summary"]
  stage_total = sum(s["clip_timings"][k] for k in STAGES) + s["write_seconds"]
  print(f"\nprep, 1 worker, jpeg q{args.jpeg_quality}: {s['ok']} clips, {s['seconds']:.1f} s of video "
        f"({s['skipped']} skipped)")
  print(f"{'stage':<22}{'wall s':>10}{'share':>8}")
  for k in STAGES:
    print(f"{k:<22}{s['clip_timings'][k]:>10.3f}{s['clip_timings'][k] / stage_total:>8.1%}")
  print(f"{'write (TFDS shards)':<22}{s['write_seconds']:>10.3f}{s['write_seconds'] / stage_total:>8.1%}")
  print(f"{'per-clip CPU s':<22}{s['cpu_seconds']:>10.3f}")
  print(f"{'shard writing CPU s':<22}{jpeg['write_cpu']:>10.3f}")

  print(f"\n{'storage':<10}{'x real time/core':>18}{'incl. write':>13}{'MB / hour':>11}{'records/s':>11}"
        f"{'windows/s':>11}")
  for name, run in runs.items():
    sm = run["summary"]
    overall = sm["seconds"] / (sm["cpu_seconds"] + run["write_cpu"])
    print(f"{name:<10}{sm['real_time_per_core']:>18.1f}{overall:>13.1f}{run['bytes_per_hour'] / 1e6:>11.1f}"
          f"{run['records_per_s']:>11.1f}{run['windows_per_s']:>11.1f}")

  print(f"\n{'JPEG quality':<14}{'bytes/frame':>12}{'PSNR dB':>9}{'decode us/frame':>17}   (raw: {96 * 96 * 3} B)")
  for q, size, psnr, decode_us in sweep:
    print(f"{q:<14}{size:>12.0f}{psnr:>9.1f}{decode_us:>17.1f}")

  print("\nratios (jpeg / raw, this run):")
  print(f"  bytes per hour       {jpeg['bytes_per_hour'] / raw['bytes_per_hour']:.3f}")
  print(f"  loader records/s     {jpeg['records_per_s'] / raw['records_per_s']:.3f}")
  print(f"  loader windows/s     {jpeg['windows_per_s'] / raw['windows_per_s']:.3f}")
  print(f"  prep x real time     {s['real_time_per_core'] / raw['summary']['real_time_per_core']:.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
