"""A trained model's weights wherever they are kept: a training run's folder (orbax checkpoints, run_folder.py)
or an export folder (safetensors with PyTorch names, export_folder.py). `load_weights` reads either; eval,
sync and export take both.
"""

from __future__ import annotations

import os

import ml_collections

from modeformer_jax.errors import UserError
from modeformer_jax.weights.export_folder import is_export, load_exported, read_export_config
from modeformer_jax.weights.run_folder import parse_which, restore_weights


def load_weights(path: str, which: str | int = "last") -> tuple[ml_collections.ConfigDict, int | None, dict, dict]:
  """(config, step, params, batch_stats) of a run folder's checkpoint `which` ("last", "best" or a step) or of an
  export folder (which does not apply; step is the one it was exported from, None when unknown). Host arrays."""
  if not os.path.exists(path):
    raise UserError(f"{path}: no such checkpoint folder")
  if is_export(path):
    config, params, batch_stats = load_exported(path)
    return config, read_export_config(path).get("source", {}).get("step"), params, batch_stats
  return restore_weights(path, which)
