"""Device mesh and shardings: the batch splits over ('data', 'fsdp'); parameters split over 'fsdp' when asked.

With fsdp = 1 parameters are replicated (plain data parallelism). With fsdp > 1 each large parameter (and its
optimiser state) is split along its largest dimension divisible by the fsdp size, so memory per device falls
with the fsdp size while jit inserts the gathers (ZeRO-3 style).
"""

from __future__ import annotations

import math

import jax
import ml_collections
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

BATCH_AXES = ("data", "fsdp")
_MIN_SHARDED_SIZE = 2 ** 14  # smaller arrays (biases, norms) stay replicated: splitting them buys nothing


def make_mesh(cfg: ml_collections.ConfigDict, devices=None) -> Mesh:
  """Mesh of shape (data, fsdp) over all devices; data = -1 takes what fsdp leaves."""
  devices = jax.devices() if devices is None else devices
  fsdp, data = cfg.fsdp, cfg.data
  if data == -1:
    if len(devices) % fsdp:
      raise ValueError(f"mesh.fsdp={fsdp} does not divide the {len(devices)} devices")
    data = len(devices) // fsdp
  if data * fsdp != len(devices):
    raise ValueError(f"mesh data={data} x fsdp={fsdp} != {len(devices)} devices")
  return jax.make_mesh((data, fsdp), BATCH_AXES, axis_types=(AxisType.Auto,) * 2, devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _param_spec(shape: tuple[int, ...], fsdp: int) -> P:
  if fsdp == 1 or math.prod(shape) < _MIN_SHARDED_SIZE:
    return P()
  for axis in np.argsort(shape)[::-1]:
    if shape[axis] % fsdp == 0:
      spec = [None] * len(shape)
      spec[axis] = "fsdp"
      return P(*spec)
  return P()


def state_shardings(mesh: Mesh, tree):
  """NamedSharding per leaf of a parameter/optimiser-state tree (arrays or ShapeDtypeStructs)."""
  fsdp = mesh.shape["fsdp"]
  return jax.tree.map(lambda x: NamedSharding(mesh, _param_spec(tuple(x.shape), fsdp)), tree)


def global_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This host's slice of the batch -> global arrays split over the batch axes (works on one host too)."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
