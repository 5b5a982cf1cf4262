"""syncnet_python's published weights (syncnet_v2.model) -> our SyncNet parameter trees, and an export folder
that `modeformer sync` / `modeformer eval` load like any other (`modeformer import-syncnet`).

The state dict has keys netcnnlip.*, netfclip.*, netcnnaud.*, netfcaud.* of nn.Sequential stacks: conv
blocks at indices 0, 4, 8, 11, 14, 18 with their BatchNorm at index + 1; heads Linear 0, BatchNorm1d 1,
Linear 3. Every tensor must be used and every parameter filled, or the import fails naming what differs.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import ml_collections
import numpy as np

from modeformer_jax.errors import UserError
from modeformer_jax.models.functional import abstract_model
from modeformer_jax.weights import export_folder, state_dict

CONV_INDICES = (0, 4, 8, 11, 14, 18)
TOWERS = {"lip": ("netcnnlip", "netfclip"), "audio": ("netcnnaud", "netfcaud")}
# Prefixes some copies of the weights carry (DataParallel, SyncNetInstance's own state dict).
STRIP_PREFIXES = ("module.", "__S__.")


def key_map() -> dict[tuple, tuple[str, str]]:
  """Our parameter / statistic path -> (published key, layout of state_dict.from_torch_layout)."""
  out = {}
  bn = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
  for tower, (cnn, fc) in TOWERS.items():
    for i, j in enumerate(CONV_INDICES):
      out[(tower, "cnn", i, "block", "conv", "kernel")] = (f"{cnn}.{j}.weight", "conv")
      out[(tower, "cnn", i, "block", "conv", "bias")] = (f"{cnn}.{j}.bias", "same")
      out.update({(tower, "cnn", i, "block", "bn", k): (f"{cnn}.{j + 1}.{v}", "same") for k, v in bn.items()})
    for name, j in (("fc1", 0), ("fc2", 3)):
      out[(tower, "head", name, "kernel")] = (f"{fc}.{j}.weight", "linear")
      out[(tower, "head", name, "bias")] = (f"{fc}.{j}.bias", "same")
    out.update({(tower, "head", "bn", k): (f"{fc}.1.{v}", "same") for k, v in bn.items()})
  return out


def from_state_dict(state: Mapping[str, np.ndarray], model_cfg: ml_collections.ConfigDict) -> tuple[dict, dict]:
  """Published state dict (numpy arrays) -> (params, batch_stats) pure dicts for SyncNet(model_cfg).

  Raises:
    ValueError: a missing, unexpected or misshapen tensor (all of them named).
  """
  for prefix in STRIP_PREFIXES:
    if state and all(k.startswith(prefix) for k in state):
      state = {k[len(prefix):]: v for k, v in state.items()}
  abstract = abstract_model(model_cfg)
  trees = (abstract.params, abstract.batch_stats)
  mapping = key_map()
  used, problems = set(), []

  def fill(tree: dict, prefix: tuple) -> dict:
    out = {}
    for k, v in tree.items():
      path = prefix + (k,)
      if isinstance(v, dict):
        out[k] = fill(v, path)
      elif path not in mapping or mapping[path][0] not in state:
        problems.append(f"missing {mapping[path][0] if path in mapping else '/'.join(map(str, path))}")
      else:
        key, layout = mapping[path]
        t = np.asarray(state[key], np.float32)
        used.add(key)
        expected = state_dict.to_torch_layout(layout, np.zeros(v.shape, np.float32)).shape
        if t.shape != expected:
          problems.append(f"{key}: shape {tuple(t.shape)}, expected {expected}")
          continue
        out[k] = np.array(state_dict.from_torch_layout(layout, t, v.shape), np.float32, order="C")
    return out

  params, stats = fill(trees[0], ()), fill(trees[1], ())
  problems += [f"unexpected {k}" for k in state if k not in used and not k.endswith("num_batches_tracked")]
  if problems:
    shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
    raise ValueError(shown)
  return params, stats


def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
  """A PyTorch state dict file, read with torch's weights-only loader (no arbitrary unpickling)."""
  try:
    import torch
  except ImportError as e:
    raise UserError("reading PyTorch weights needs torch: pip install 'modeformer-jax[torch]'") from e
  try:
    obj = torch.load(path, map_location="cpu", weights_only=True)
  except FileNotFoundError as e:
    raise UserError(f"{path}: no such file") from e
  except Exception as e:  # the weights-only unpickler refuses anything but tensors and plain containers
    raise UserError(f"{path}: not a PyTorch state dict readable with weights_only=True: {e}") from e
  if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
    obj = obj["state_dict"]
  if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
    raise UserError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
  return {k: v.detach().cpu().numpy() for k, v in obj.items()}


def write_folder(out: str, config: ml_collections.ConfigDict, params: dict, batch_stats: dict,
                 source: str) -> list[str]:
  """An export folder (config.json + model.safetensors, our PyTorch-style names) that load_sync_model reads."""
  os.makedirs(out, exist_ok=True)
  model_cfg = json.loads(config.model.to_json_best_effort())
  export_folder.write_weights(os.path.join(out, export_folder.WEIGHTS), state_dict.to_torch(params, batch_stats),
                              model_cfg)
  meta = {"model": model_cfg, "preprocess": json.loads(config.preprocess.to_json_best_effort()),
          "source": {"checkpoint": os.path.abspath(source), "step": None, "imported": "syncnet_python"}}
  with open(os.path.join(out, export_folder.CONFIG), "w") as f:
    json.dump(meta, f, indent=2)
  return sorted(os.listdir(out))
