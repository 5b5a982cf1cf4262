"""How long one real train step takes on this host: the compiled step of a config on random inputs of the real
shapes (the input pipeline is not included). Used by bench/train_step.py and by `modeformer demo --minutes`
to size a training run to a time budget."""

from __future__ import annotations

import time

import jax
import ml_collections
import numpy as np

from modeformer_jax.data.augment import Augment
from modeformer_jax.models.flops import clip_flops
from modeformer_jax.train.mesh import global_batch, make_mesh
from modeformer_jax.train.train_step import hyperparameters, init_model, init_state, make_step, optimizer


def random_batch(config: ml_collections.ConfigDict, batch: int, negatives: int, seed: int = 0) -> dict[str, np.ndarray]:
  """A training batch of random values as the loader gives it for `config`: video uint8 [B, 5, 48 + margin, 96,
  3] (ModEFormer; margin: the augmentation's, data/augment.py), audio float16 [B, 1+N, 16, 80] (time-major), every
  audio window distinct (audio_ids)."""
  rng = np.random.default_rng(seed)
  k = 1 + negatives
  pp = config.preprocess
  rows = pp.crop_size - pp.mouth_row_start + Augment.from_config(config.data.augment).margin(pp.mouth_row_start)
  return {"video": rng.integers(0, 255, (batch, 5, rows, pp.crop_size, 3), dtype=np.uint8),
          "audio": rng.normal(size=(batch, k, pp.mel_window_frames, pp.n_mels)).astype(np.float16),
          "audio_mask": np.ones((batch, k), bool),
          "offsets": np.zeros((batch, k), np.int32),
          "audio_ids": np.stack(np.meshgrid(np.arange(batch), np.arange(k), indexing="ij"), -1).astype(np.int32)}


def time_step(config: ml_collections.ConfigDict, batch: int, steps: int, warmup: int) -> dict[str, float]:
  """Compiles the first stage's train step for a global batch of `batch` clips; times `steps` steps after
  `warmup` untimed ones. Returns compile_s, step_s (mean), clips_per_s and FLOP counts."""
  stage = config.stages[0]
  mesh = make_mesh(config.mesh)
  model = init_model(config)
  state = init_state(model, optimizer(stage), mesh)
  step = make_step(config, stage, model, mesh, state)
  hyper = hyperparameters(stage, mesh)
  data = global_batch(random_batch(config, batch, stage.num_negatives), mesh)
  t = time.perf_counter()
  compiled = step.lower(state, data, hyper).compile()
  compile_s = time.perf_counter() - t
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", float("nan")))
  for _ in range(warmup):
    state, metrics = compiled(state, data, hyper)
  jax.block_until_ready(metrics)
  t = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, data, hyper)
  jax.block_until_ready(metrics)
  step_s = (time.perf_counter() - t) / steps
  model_flops = clip_flops(config.model, stage.num_negatives)["train_per_clip"] * batch
  return {"batch": batch, "negatives": stage.num_negatives, "compile_s": compile_s, "step_s": step_s,
          "clips_per_s": batch / step_s, "xla_step_flops": flops, "model_step_flops": model_flops,
          "model_flops_per_s": model_flops / step_s}
