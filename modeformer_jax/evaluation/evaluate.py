"""Protocol accuracy (SPEC section 5) of a SyncModel over a split, and the validation numbers for training.

Scores come from the model, the numbers from evaluation/protocol.py. Default ("batched") mode: each window
of each video is encoded once per modality (the inputs of inference.embed_utterance), windows of many
videos share encoder batches, and the 2S+1 candidates are dot products (inference.offset_similarities):
O(L) encoder passes per video. Naive mode scores every (video window, audio window) pair inside the band
with its own pass of both encoders, as a cross-modal model has to be evaluated: about 2S+1 times the
passes, kept to prove that both give the same numbers and to measure the saving (bench/eval_cost.py).

Usable length: L = min(frames, samples // (sample_rate / fps)) with samples = len(record["audio"]); records
without raw audio use the mel length, samples = (M - 1) * hop_length, the fewest
samples that give M mel frames (log_mel returns M = 1 + samples // hop), so L is never overstated. Every
video with at least one window (L >= 6) is scored, however short, as VocaLiST's test script does; a video
with fewer than 2S windows also gets each window's score against an all-zero audio window, which the script
scores its candidates past the end against (protocol.py, quirk 1). Shorter videos are skipped and listed.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, Iterable, Iterator, Sequence

import jax
import ml_collections
import numpy as np
import tqdm

from modeformer_jax.data.features import record_features
from modeformer_jax.errors import UserError
from modeformer_jax.evaluation import protocol
from modeformer_jax.evaluation.protocol import CLIP_LENGTHS
from modeformer_jax.inference import (SyncModel, audio_windows, load_sync_model, offset_similarities, pair_scores,
                                      video_windows)

# Encoder rows gathered from consecutive videos before encoding: padding is paid once per group, not once per
# video, and a group's uint8 video windows stay under ~300 MB (4096 ModEFormer mouth windows; SyncNet's whole
# faces are twice as large, so its groups hold half as many).
GROUP_BYTES = 4096 * 5 * 48 * 96 * 3


@dataclasses.dataclass
class VideoScores:
  id: str
  length: int          # L: usable frames
  scores: np.ndarray   # float32 [n, 2S+1], n = L - 5 windows; NaN where the candidate lies outside the utterance
  padded: np.ndarray | None = None  # float32 [n]: each window against all-zero audio, where n < 2S (else None)


def _samples(record: dict, pp: ml_collections.ConfigDict) -> int:
  if "audio" in record:
    return len(record["audio"])
  return max(len(record["mel"]) - 1, 0) * pp.hop_length


def _band_pairs(count: int, max_offset: int) -> tuple[np.ndarray, np.ndarray]:
  """(f, d) of every candidate inside the utterance: window f, offset d, 0 <= f + d < count."""
  f, d = np.meshgrid(np.arange(count), np.arange(-max_offset, max_offset + 1), indexing="ij")
  inside = (f + d >= 0) & (f + d < count)
  return f[inside], d[inside]


def _jobs(model: SyncModel, records: Sequence[dict], indices: Iterable[int], max_offset: int, naive: bool,
          skipped: list[dict], bar: tqdm.tqdm) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
  """(key, video encoder inputs, audio encoder inputs) per usable video; those without a window go to `skipped`.

  A video with fewer than 2S windows needs its windows' scores against all-zero audio (protocol.py, quirk 1):
  one zero audio window after its own (naive mode: a (window, zero audio) pair per window after the band's).
  """
  pp, spec = model.config.preprocess, model.spec
  samples_per_frame = pp.sample_rate // int(pp.fps)
  features = record_features(pp)
  for i in indices:
    record = features(records[i]) if features else records[i]
    vid = str(record.get("id", f"#{i}"))
    frames, samples = len(record["crops"]), _samples(record, pp)
    length = min(frames, samples // samples_per_frame)
    count = min(protocol.num_windows(length, spec.video_frames),
                spec.num_windows(frames, len(record[spec.features])))
    if count < 1:
      skipped.append({"id": vid, "reason": f"too short: {frames} frames, audio for {samples // samples_per_frame} "
                      f"frames; the protocol needs {spec.video_frames + 1} for one window"})
      bar.update(1)
      continue
    video, audio = video_windows(record["crops"], count, spec), audio_windows(record[spec.features], count, spec)
    with_padded = count < 2 * max_offset
    zero = np.zeros_like(audio[:1])
    if naive:
      f, d = _band_pairs(count, max_offset)
      if with_padded:
        video, audio = np.concatenate([video[f], video]), np.concatenate([audio[f + d], np.repeat(zero, count, 0)])
      else:
        video, audio = video[f], audio[f + d]
    elif with_padded:
      audio = np.concatenate([audio, zero])
    yield (vid, count + spec.video_frames, count, with_padded), video, audio


def _embed_grouped(model: SyncModel, jobs: Iterator[tuple[Any, np.ndarray, np.ndarray]]
                   ) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
  """Encodes the jobs' inputs about GROUP_BYTES of video windows at a time; yields (key, video [a, D],
  audio [b, D]) in order."""
  pending: list = []

  def flush():
    v = model.embed_video(np.concatenate([j[1] for j in pending]))
    a = model.embed_audio(np.concatenate([j[2] for j in pending]))
    v_split = np.cumsum([len(j[1]) for j in pending])[:-1]
    a_split = np.cumsum([len(j[2]) for j in pending])[:-1]
    out = [(j[0], vi, ai) for j, vi, ai in zip(pending, np.split(v, v_split), np.split(a, a_split))]
    pending.clear()
    return out

  size = 0
  for job in jobs:
    pending.append(job)
    size += job[1].nbytes
    if size >= GROUP_BYTES:
      yield from flush()
      size = 0
  if pending:
    yield from flush()


def _score_pairs(model: SyncModel, jobs: Iterator[tuple[Any, np.ndarray, np.ndarray]]
                 ) -> Iterator[tuple[Any, np.ndarray, None]]:
  """Cross-modal models, naive mode: (key, scores [P] of whole forward passes, None) per job of pairs."""
  for key, video, audio in jobs:
    yield key, model.score_pairs(video, audio), None


def utterance_scores(model: SyncModel, records: Sequence[dict], *, max_offset: int = 15, naive: bool = False,
                     limit: int | None = None, progress: bool = False) -> tuple[list[VideoScores], list[dict]]:
  """Scores [L-5, 2S+1] (and padded scores, see VideoScores) of every usable video of `records` (the first
  `limit`), and the skipped ones ({"id", "reason"}). Both modes give the same scores up to float rounding.

  Cross-modal models (VocaLiST) run their transformers and classifier once per pair in both modes; the
  default mode computes their CNN front-end tokens once per window (as embeddings are), the naive one runs
  the whole model per pair.
  """
  total = len(records) if limit is None else min(limit, len(records))
  pairwise = model.scoring == "pairwise"
  skipped: list[dict] = []
  out = []
  with tqdm.tqdm(total=total, desc="eval" + (" (naive)" if naive else ""), unit="video", file=sys.stderr,
                 disable=not progress, dynamic_ncols=True) as bar:
    jobs = _jobs(model, records, range(total), max_offset, naive, skipped, bar)
    for (vid, length, count, with_padded), v, a in (_score_pairs if naive and pairwise else _embed_grouped)(
        model, jobs):
      padded = None
      if naive or pairwise:
        f, d = _band_pairs(count, max_offset)
        if naive:
          values = v if pairwise else pair_scores(v, a, model.scoring)
        else:  # front-end tokens: the band's pairs, then each window with the zero audio window a[count]
          pair_v, pair_a = v[f], a[f + d]
          if with_padded:
            pair_v, pair_a = np.concatenate([pair_v, v]), np.concatenate([pair_a, np.repeat(a[count:], count, 0)])
          values = model.classify(pair_v, pair_a)
        scores = np.full((count, 2 * max_offset + 1), np.nan, np.float32)
        scores[f, d + max_offset] = values[:len(f)]
        if with_padded:
          padded = values[len(f):]
      else:
        scores = offset_similarities(v, a[:count], max_offset, model.scoring)
        if with_padded:
          padded = pair_scores(v, a[count], model.scoring).astype(np.float32)
      out.append(VideoScores(vid, length, scores, padded))
      bar.update(1)
  return out, skipped


def _check_usable(videos: list[VideoScores], skipped: list[dict], what: str) -> None:
  if not videos:
    reasons = "; ".join(f"{s['id']}: {s['reason']}" for s in skipped[:3])
    raise UserError(f"{what}: no usable video among {len(skipped)} ({reasons})")


def evaluate(model: SyncModel, records: Sequence[dict], *, clip_lengths: Sequence[int] = CLIP_LENGTHS,
             max_offset: int = 15, naive: bool = False, limit: int | None = None, progress: bool = False,
             data: dict | None = None) -> dict:
  """Protocol results of `model` on `records` as a JSON-ready dict (layout: evaluation/report.py)."""
  what = (data or {}).get("description", "records")
  if len(records) == 0:
    raise UserError(f"{what}: no records to evaluate")
  start = time.perf_counter()
  videos, skipped = utterance_scores(model, records, max_offset=max_offset, naive=naive, limit=limit,
                                     progress=progress)
  seconds = time.perf_counter() - start
  _check_usable(videos, skipped, what)
  results = protocol.protocol_results([v.scores for v in videos], clip_lengths, model.spec.video_frames,
                                      [v.padded for v in videos])
  per_video = results.pop("per_video")
  offsets = results.pop("video_offsets")
  windows = sum(len(v.scores) for v in videos)
  padded_rows = sum(len(v.padded) for v in videos if v.padded is not None)
  if naive:  # a pass of both encoders per pair of the band and per (window, zero audio) pair
    pairs = sum(int(np.isfinite(v.scores).sum()) for v in videos) + padded_rows
    passes = {"video": pairs, "audio": pairs}
  else:  # a pass per window, and one zero audio window per video that needs it
    passes = {"video": windows, "audio": windows + sum(v.padded is not None for v in videos)}
  return {
      "model": {"source": model.source, "step": model.step, "name": model.config.model.name,
                "temporal": model.config.model.get("temporal"), "objective": model.config.model.get("objective"),
                "params": int(sum(x.size for x in jax.tree.leaves(model.params)))},
      "data": dict(data or {}),
      "mode": "naive" if naive else "batched",
      "protocol": {
          "max_offset": max_offset, "tolerance": protocol.TOLERANCE, "window_frames": model.spec.video_frames,
          "fps": float(model.config.preprocess.fps),
          "reference": "VocaLiST's test_lrs2.py, its short-video quirks included (evaluation/protocol.py)",
          "length": "L = min(frames, samples // 640); samples = len(audio), or (mel frames - 1) * hop without audio",
          "windows": "L - 5 per video (starts 0 .. L-6); every video with one counts",
          "missing_candidates": "-1000, also inside K-frame means; with fewer than 2S windows the rows f < S score "
                                "candidates past the end against all-zero audio",
          "context": "K frames: mean of windows f-(K-5)//2 .. f+(K-5)//2, clipped to the video; with fewer than "
                     "K-5 windows, K-5 rows (the truncated means at the centres 0..h-1 and n-h..n-1)",
          "offsets": "AV offsets as `modeformer sync` reports them: > 0 when the audio leads the video",
          "video_offset": "the offset whose mean score over the windows that have it is highest",
      },
      **results,
      "offsets": list(range(-max_offset, max_offset + 1)),
      "videos": [{"id": v.id, "frames": v.length, "windows": len(v.scores), "offset": o,
                  "accuracy": {k: acc[i] for k, acc in per_video.items()}}
                 for i, (v, o) in enumerate(zip(videos, offsets))],
      "skipped": skipped,
      "encoder_windows": passes,
      "seconds": seconds,
  }


def _only_dataset(data_dir: str) -> str:
  """The dataset prepared under data_dir when there is exactly one (prep writes DATA_DIR/<dataset>/)."""
  found = [d for d in ("lrs2", "lrs3") if os.path.isdir(os.path.join(data_dir, d))]
  if len(found) != 1:
    raise UserError(f"{data_dir}: {'both lrs2 and lrs3' if found else 'no lrs2 or lrs3'} prepared here; "
                    "pass --dataset")
  return found[0]


def open_records(config: ml_collections.ConfigDict, split: str, data_dir: str | None = None,
                 dataset: str | None = None) -> tuple[Sequence[dict], dict]:
  """(records, description) of `split`: prepared shards under data_dir, else the config's own data source."""
  if data_dir:
    from modeformer_jax.data.records import open_split
    if not os.path.isdir(data_dir):
      raise UserError(f"{data_dir}: no such data folder")
    dataset = dataset or (config.data.dataset if "data" in config else _only_dataset(data_dir))
    source = open_split(data_dir, dataset, split)
    return source, {"source": "shards", "data_dir": data_dir, "dataset": dataset, "split": split,
                    "description": f"{source.path} split '{split}'"}
  if "data" not in config:
    raise UserError("an exported model carries no data source: give data_dir (a `modeformer prep --out` folder)")
  from modeformer_jax.data.pipeline import open_source
  source = open_source(config, split)
  if config.data.source == "synthetic":
    return source, {"source": "synthetic", "dataset": "synthetic", "split": split,
                    "description": f"synthetic split '{split}'"}
  return source, {"source": "shards", "data_dir": config.data.data_dir, "dataset": config.data.dataset,
                  "split": split, "description": f"{source.path} split '{split}'"}


def evaluate_run(path: str, *, which: str | int = "last", split: str = "test", data_dir: str | None = None,
                 dataset: str | None = None, clip_lengths: Sequence[int] = CLIP_LENGTHS, max_offset: int = 15,
                 naive: bool = False, limit: int | None = None, batch_size: int = 64,
                 progress: bool = False) -> dict:
  """evaluate() of a run folder's checkpoint (or an exported model folder) on a split."""
  model = load_sync_model(path, which, batch_size=batch_size)
  records, data = open_records(model.config, split, data_dir, dataset)
  return evaluate(model, records, clip_lengths=clip_lengths, max_offset=max_offset, naive=naive, limit=limit,
                  progress=progress, data=data)


def validation_records(config: ml_collections.ConfigDict) -> list[dict]:
  """config.eval_videos records of config.eval_split, evenly spaced over the split (held in memory)."""
  from modeformer_jax.data.pipeline import open_source
  source = open_source(config, config.eval_split)
  if len(source) == 0:
    raise UserError(f"config.eval_split: split '{config.eval_split}' has no records")
  count = min(config.eval_videos, len(source))
  return [source[int(i)] for i in np.unique(np.linspace(0, len(source) - 1, count).round())]


def validation_metrics(model: SyncModel, records: Sequence[dict], clip_lengths: Sequence[int] = (5, 15),
                       max_offset: int = 15) -> dict[str, float]:
  """{"val_accuracy_K": protocol accuracy with K frames of context, "val_videos": videos scored} on a small
  in-memory subset."""
  videos, skipped = utterance_scores(model, records, max_offset=max_offset)
  _check_usable(videos, skipped, "validation records")
  results = protocol.protocol_results([v.scores for v in videos], clip_lengths, model.spec.video_frames,
                                      [v.padded for v in videos])
  return {**{f"val_accuracy_{k}": results["clip_lengths"][str(k)]["accuracy"] for k in clip_lengths},
          "val_videos": len(videos)}
