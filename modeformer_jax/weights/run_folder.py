"""A training run's folder (`modeformer train --workdir`): config.json, checkpoints/ (the last k) and best/.

Every checkpoint holds the items ITEMS; `weights` (params and BatchNorm statistics) is all that inference needs,
and restore_weights reads it on its own, onto one device, whatever mesh saved it. train/checkpoints.py writes
these folders (and reads the other items to resume).
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import orbax.checkpoint as ocp

from modeformer_jax import atomic
from modeformer_jax.errors import UserError
from modeformer_jax.models.functional import abstract_model

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"  # the last k checkpoints
BEST = "best"  # the best one by validation accuracy
ITEMS = ("weights", "optimizer", "data", "meta")


def parse_which(text: str) -> str | int:
  """Which checkpoint of a run: 'last', 'best' or a step number ('1000' -> 1000); ValueError otherwise."""
  if text in ("last", "best"):
    return text
  if not text.isdigit():
    raise ValueError("expected last, best or a step number")
  return int(text)


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  atomic.write(os.path.join(workdir, CONFIG), config.to_json_best_effort(indent=2))


def read_config(workdir: str) -> ml_collections.ConfigDict:
  with open(os.path.join(workdir, CONFIG)) as f:
    return ml_collections.ConfigDict(json.load(f))


def restore_weights(workdir: str, which: str | int = "last") -> tuple[ml_collections.ConfigDict, int, dict, dict]:
  """(config, step, params, batch_stats) of a run: which = "last", "best" or a step number. Host arrays."""
  if not os.path.isfile(os.path.join(workdir, CONFIG)):
    raise UserError(f"{workdir}: not a training run (no {CONFIG})")
  config = read_config(workdir)
  folder = os.path.join(os.path.abspath(workdir), BEST if which == "best" else CHECKPOINTS)
  manager = ocp.CheckpointManager(folder, item_names=ITEMS, options=ocp.CheckpointManagerOptions(read_only=True))
  steps = manager.all_steps()
  if not steps:
    raise UserError(f"{folder}: no checkpoint")
  step = steps[-1] if which in ("last", "best") else int(which)
  if step not in steps:
    raise UserError(f"{folder}: no checkpoint at step {step} (have {', '.join(map(str, steps))})")
  abstract = abstract_model(config.model)
  # Onto one local device whatever mesh saved it: a run trained on 8 GPUs is read by a 1-CPU `sync`.
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                        {"params": abstract.params, "batch_stats": abstract.batch_stats})
  try:
    weights = manager.restore(step, args=ocp.args.Composite(weights=ocp.args.StandardRestore(target))).weights
  except (ValueError, KeyError) as e:
    raise UserError(f"{folder}/{step}: checkpoint does not match the run's {CONFIG}: {e}") from e
  finally:
    manager.close()
  weights = jax.device_get(weights)
  return config, step, weights["params"], weights["batch_stats"]
