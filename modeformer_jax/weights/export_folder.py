"""An export folder (`modeformer export`) read back into JAX, so eval and sync run on exported models.

The weights are read with safetensors' numpy backend: loading an export needs neither torch nor the training
run. model.safetensors carries the model config it was written for as metadata; a config.json that differs
from it, or tensors that do not fit the model config.json describes, are errors, never a partial load. A
file without that metadata (e.g. a state_dict fine-tuned and saved in PyTorch) is checked by names and
shapes alone.
"""

from __future__ import annotations

import json
import os

import ml_collections
import numpy as np
import safetensors
from safetensors.numpy import save_file

from modeformer_jax.errors import UserError
from modeformer_jax.models.functional import abstract_model
from modeformer_jax.weights import state_dict

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
MODEL_METADATA = "modeformer.model"  # safetensors metadata key: the model config as JSON
# How the JAX model computes, not what: config.json may change these without re-exporting.
COMPUTE_FIELDS = ("conv3d_impl", "dtype")


def is_export(path: str) -> bool:
  """Whether `path` is an export folder (rather than a training run's)."""
  return os.path.isfile(os.path.join(path, WEIGHTS))


def read_export_config(path: str) -> dict:
  """config.json of an export folder as written by `modeformer export` (model, preprocess, inputs, ...)."""
  file = os.path.join(path, CONFIG)
  try:
    with open(file) as f:
      meta = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"{file}: cannot read: {e}") from e
  if not isinstance(meta, dict) or not {"model", "preprocess"} <= meta.keys():
    raise UserError(f"{file}: not a modeformer export config (needs 'model' and 'preprocess' sections)")
  return meta


def read_weights(file: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
  """(tensors, metadata) of a safetensors file; UserError when it is missing, truncated or unreadable."""
  try:
    with safetensors.safe_open(file, framework="np") as f:
      return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
  except (safetensors.SafetensorError, OSError, ValueError, TypeError) as e:
    raise UserError(f"{file}: not a readable safetensors file: {e}") from e


def write_weights(file: str, tensors: dict[str, np.ndarray], model_cfg: dict) -> None:
  """model.safetensors: PyTorch-named tensors (state_dict.to_torch), with the model config they fit as metadata
  (load_exported checks config.json against it)."""
  save_file(tensors, file, metadata={"format": "pt", MODEL_METADATA: json.dumps(model_cfg, sort_keys=True)})


def load_exported(path: str) -> tuple[ml_collections.ConfigDict, dict, dict]:
  """Export folder -> (config with `model` and `preprocess`, params, batch_stats), pure dicts of host arrays.

  The trees have the structure restore_weights returns, and their values are bitwise those exported.
  """
  meta = read_export_config(path)
  config_file, weights_file = os.path.join(path, CONFIG), os.path.join(path, WEIGHTS)
  config = ml_collections.ConfigDict({"model": meta["model"], "preprocess": meta["preprocess"]})
  try:
    abstract = abstract_model(config.model)
  except (ValueError, KeyError, AttributeError, TypeError) as e:
    raise UserError(f"{config_file}: model section does not describe a model: {e}") from e
  tensors, metadata = read_weights(weights_file)
  if MODEL_METADATA in metadata:
    written_for = json.loads(metadata[MODEL_METADATA])
    differ = sorted(k for k in written_for.keys() | meta["model"].keys()
                    if k not in COMPUTE_FIELDS and written_for.get(k) != meta["model"].get(k))
    if differ:
      raise UserError(f"{weights_file}: written for a different model than {config_file} describes "
                      f"(fields {', '.join(differ)})")
  try:
    params, batch_stats = state_dict.from_torch(tensors, abstract.params, abstract.batch_stats)
  except ValueError as e:
    raise UserError(f"{weights_file}: does not match the model in {config_file}: {e}") from e
  return config, params, batch_stats
