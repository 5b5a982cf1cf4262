"""JAX parameter trees <-> flat PyTorch-named tensors (the state_dict of export/torch_model.ModEFormer).

numpy only, so that loading an export needs neither torch nor a conversion framework. Every JAX leaf maps
through one rule (`_rule`); the inverse uses the same rule on a template tree, so both directions agree by
construction and a leaf without a rule, a missing or extra tensor, or a shape mismatch is an error instead
of a silently dropped parameter.

Layouts: conv kernel (*k, in, out) -> weight (out, in, *k); linear kernel (in, out) -> weight (out, in);
attention query/key/value kernels [width, heads, head_dim] -> rows of in_proj_weight [3 width, width]
(head-major, as nn.MultiheadAttention splits heads); out kernel [heads, head_dim, width] -> out_proj.weight.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

_QKV = ("query", "key", "value")
_MODULES = {"attn": "self_attn", "ln1": "norm1", "ln2": "norm2", "mlp_in": "linear1", "mlp_out": "linear2"}
# Modules with a kernel and a bias -> the kernel's layout.
_KERNELS = {"conv": "conv", "mlp_in": "linear", "mlp_out": "linear", "projection": "linear", "out": "attn_out",
            "fc1": "linear", "fc2": "linear"}
_NORMS = ("bn", "ln1", "ln2", "final_ln")
_NORM_LEAVES = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
_UNCHANGED = ("token", "pos", "log_temperature")

Path = tuple[Any, ...]


def _rule(path: Path) -> tuple[str, str, int | None]:
  """JAX leaf path -> (torch name, layout, slot in a fused tensor or None)."""
  keys = [str(k) for k in path]
  if keys[-1] in _UNCHANGED:
    return ".".join(keys), "same", None
  *prefix, owner, leaf = ["", *keys]
  prefix = prefix[1:]
  base = [_MODULES.get(k, k) for k in prefix]
  in_attn = bool(prefix) and prefix[-1] == "attn"
  if in_attn and owner in _QKV and leaf in ("kernel", "bias"):
    return ".".join(base + [f"in_proj_{'weight' if leaf == 'kernel' else 'bias'}"]), f"qkv_{leaf}", _QKV.index(owner)
  if owner in _KERNELS and leaf in ("kernel", "bias") and in_attn == (owner == "out"):
    module = "out_proj" if owner == "out" else _MODULES.get(owner, owner)
    if leaf == "kernel":
      return ".".join(base + [module, "weight"]), _KERNELS[owner], None
    return ".".join(base + [module, "bias"]), "same", None
  if owner in _NORMS and leaf in _NORM_LEAVES:
    return ".".join(base + [_MODULES.get(owner, owner), _NORM_LEAVES[leaf]]), "same", None
  raise ValueError(f"no PyTorch name for the JAX parameter {'/'.join(keys)}")


def to_torch_layout(layout: str, x: np.ndarray) -> np.ndarray:
  if layout == "conv":
    n = x.ndim - 2
    return x.transpose(n + 1, n, *range(n))
  if layout == "linear":
    return x.T
  if layout == "qkv_kernel":
    return x.reshape(x.shape[0], -1).T
  if layout == "qkv_bias":
    return x.reshape(-1)
  if layout == "attn_out":
    return x.reshape(-1, x.shape[-1]).T
  return x


def from_torch_layout(layout: str, t: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
  if layout == "conv":
    return t.transpose(*range(2, t.ndim), 1, 0)
  if layout in ("linear", "qkv_kernel", "attn_out"):
    return t.T.reshape(shape)
  return t.reshape(shape)


def _leaves(tree: dict, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
  """(path, leaf) of a nested dict (a pure-dict parameter tree), keys as stored (ints for list indices)."""
  for k, v in tree.items():
    if isinstance(v, dict):
      yield from _leaves(v, prefix + (k,))
    else:
      yield prefix + (k,), v


def to_torch(params: dict, batch_stats: dict, num_batches_tracked: int = 0) -> dict[str, np.ndarray]:
  """JAX pure-dict trees -> {torch name: C-contiguous array}, the full state_dict of torch_model.ModEFormer.

  num_batches_tracked fills each BatchNorm's counter (PyTorch state the JAX model does not keep).
  """
  return {k: np.array(v, order="C") for k, v in _torch_views(params, batch_stats, num_batches_tracked).items()}


def _torch_views(params: dict, batch_stats: dict, num_batches_tracked: int = 0) -> dict[str, np.ndarray]:
  """to_torch without the copies: transposed views, so templates of zero-stride arrays stay free."""
  out, fused = {}, {}
  for path, x in [*_leaves(params), *_leaves(batch_stats)]:
    name, layout, slot = _rule(path)
    y = to_torch_layout(layout, np.asarray(x))
    if slot is None:
      out[name] = y
    else:
      fused.setdefault(name, [None] * len(_QKV))[slot] = y
    if path[-1] == "mean":
      out[name.replace("running_mean", "num_batches_tracked")] = np.array(num_batches_tracked, np.int64)
  for name, parts in fused.items():
    if any(p is None for p in parts):
      raise ValueError(f"{name}: attention has only {sum(p is not None for p in parts)} of query/key/value")
    out[name] = np.concatenate(parts)
  return dict(sorted(out.items()))


def from_torch(tensors: dict[str, np.ndarray], params_like: dict, batch_stats_like: dict) -> tuple[dict, dict]:
  """{torch name: array} -> (params, batch_stats) shaped like the templates (arrays or ShapeDtypeStructs).

  Raises ValueError naming the missing, extra or misshapen tensors; the result is bitwise what to_torch got.
  """
  zeros = lambda tree: {k: zeros(v) if isinstance(v, dict) else np.broadcast_to(np.zeros((), v.dtype), v.shape)
                        for k, v in tree.items()}
  expected = _torch_views(zeros(params_like), zeros(batch_stats_like))
  problems = [f"missing {k}" for k in expected if k not in tensors]
  problems += [f"unexpected {k}" for k in tensors if k not in expected]
  problems += [f"{k}: shape {tuple(tensors[k].shape)} {tensors[k].dtype}, expected {tuple(v.shape)} {v.dtype}"
               for k, v in expected.items()
               if k in tensors and (tensors[k].shape != v.shape or tensors[k].dtype != v.dtype)]
  if problems:
    shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
    raise ValueError(shown)

  def fill(tree: dict, prefix: Path) -> dict:
    out = {}
    for k, v in tree.items():
      if isinstance(v, dict):
        out[k] = fill(v, prefix + (k,))
        continue
      name, layout, slot = _rule(prefix + (k,))
      t = tensors[name]
      if slot is not None:
        t = np.split(t, len(_QKV))[slot]
      out[k] = np.array(from_torch_layout(layout, t, v.shape), order="C")
    return out

  return fill(params_like, ()), fill(batch_stats_like, ())
