"""Training steps that fit a wall-clock budget on this machine (`modeformer demo --minutes`).

The real train step is compiled and timed here (step_timing.time_step); the budget's other costs are set
aside; the plan is kept in a JSON file, so a rerun with the same settings trains the same steps instead of
timing again (a run resumed from its checkpoint must not change its length).
"""

from __future__ import annotations

import dataclasses
import json
import os

import ml_collections

from modeformer_jax import atomic
from modeformer_jax.train.step_timing import time_step

MIN_STEPS = 20  # fewer steps than this do not leave chance
# Measured in demo runs on the development machine (BENCHMARKS.md): the input pipeline makes a training step
# 13-17% slower than the step timed here, setting up this timing and the trainer (shards, model, mesh, final
# checkpoint) takes about 30 s, and eval + sync + export about 25 s. The trainer compiles its step again (the
# schedule's length is part of the program), so the compile is paid twice.
PIPELINE_SLOWDOWN = 1.15
SETUP_S = 30


@dataclasses.dataclass
class Plan:
  steps: int
  step_s: float  # expected seconds per training step (the timed step, slowed by the input pipeline)
  budget_s: float | None  # seconds left for training (None: the plan of an earlier run)
  fitting: int | None  # steps that fit in budget_s; `steps` is at least MIN_STEPS
  reused: bool = False


def plan_steps(config: ml_collections.ConfigDict, batch_size: int, *, minutes: float, elapsed_s: float,
               plan_path: str, settings: dict) -> Plan:
  """Steps of `batch_size` clips for the first stage of `config` that fit in what `minutes` leaves after
  `elapsed_s`; reuses plan_path when it was written with the same `settings` (JSON values)."""
  if os.path.exists(plan_path):
    with open(plan_path) as f:
      plan = json.load(f)
    if all(plan.get(k) == v for k, v in settings.items()):
      return Plan(plan["steps"], PIPELINE_SLOWDOWN * plan["step_s"], None, None, reused=True)
  timing = time_step(config, batch_size, steps=3, warmup=1)
  step_s = PIPELINE_SLOWDOWN * timing["step_s"]
  budget_s = 60 * minutes - elapsed_s - 2 * timing["compile_s"] - SETUP_S - (20 + 10 * timing["step_s"])
  fitting = int(budget_s / step_s)
  steps = max(fitting, MIN_STEPS)
  atomic.write(plan_path, json.dumps({**settings, "steps": steps, "step_s": timing["step_s"],
                                      "compile_s": timing["compile_s"]}))
  return Plan(steps, step_s, budget_s, fitting)
