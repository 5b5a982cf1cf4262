"""orbax checkpoints of a run: the last k (asynchronous) and the best by validation metric.

A checkpoint holds four items: `weights` (params and BatchNorm statistics: all that inference needs, read on
its own by evaluation, offset detection and export through modeformer_jax.weights), `optimizer` (step and
optimiser state), `data` (the input position: global batches consumed and the process count that consumed them,
for the record; every process restores its own position from it, see data/pipeline.py) and `meta` (stage index
and progress, as JSON). The run's config is written once as workdir/config.json: evaluation, offset detection
and export rebuild the model from it. The folder layout is weights/run_folder.py's.

On several processes every call here is collective (all processes call it with the same arguments); orbax
writes each array's shards from the processes that hold them, and the JSON items from process 0.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from modeformer_jax.weights.run_folder import BEST, CHECKPOINTS, ITEMS
# Moved to weights/run_folder.py; importable from here while callers move.

BEST_METRIC = "val_accuracy_5"


class RunCheckpoints:
  """workdir/checkpoints (last `keep`, async) and workdir/best (one, by BEST_METRIC, highest wins)."""

  def __init__(self, workdir: str, keep: int):
    self.last = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), CHECKPOINTS),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True),
        item_names=ITEMS)
    self.best = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), BEST),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, best_fn=lambda m: m[BEST_METRIC], best_mode="max",
                                             keep_checkpoints_without_metrics=False,
                                             enable_async_checkpointing=False),
        item_names=ITEMS)

  @staticmethod
  def _args(state, meta: dict) -> ocp.args.Composite:
    data = {"global_batches": meta["stage_step"], "process_count": jax.process_count()}
    return ocp.args.Composite(
        weights=ocp.args.StandardSave({"params": state.params, "batch_stats": state.batch_stats}),
        optimizer=ocp.args.StandardSave({"step": state.step, "opt_state": state.opt_state}),
        data=ocp.args.JsonSave(data), meta=ocp.args.JsonSave(meta))

  def save(self, step: int, state, meta: dict, *, force: bool = False) -> None:
    """meta = {"stage": i, "stage_step": k} (k steps of stage i done); asynchronous, see wait()."""
    self.last.save(step, args=self._args(state, meta), force=force)

  def save_best(self, step: int, state, meta: dict, metrics: dict[str, float]) -> None:
    """Offers this step's weights to workdir/best, which keeps whichever has the highest BEST_METRIC."""
    self.best.save(step, args=self._args(state, meta), metrics=metrics, force=True)

  def latest_step(self) -> int | None:
    return self.last.latest_step()

  def read_meta(self, step: int) -> dict:
    return self.last.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

  def restore(self, step: int, target_state) -> tuple[Any, dict]:
    """(state, meta) of a checkpoint, restored into the structure, dtypes and shardings of `target_state` (arrays
    or ShapeDtypeStructs): onto this run's mesh, whatever mesh or number of processes saved it."""
    a = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
    out = self.last.restore(step, args=ocp.args.Composite(
        weights=ocp.args.StandardRestore({"params": a.params, "batch_stats": a.batch_stats}),
        optimizer=ocp.args.StandardRestore({"step": a.step, "opt_state": a.opt_state}),
        meta=ocp.args.JsonRestore()))
    state = target_state.replace(step=out.optimizer["step"], opt_state=out.optimizer["opt_state"],
                                 params=out.weights["params"], batch_stats=out.weights["batch_stats"])
    return state, out.meta

  def wait(self) -> None:
    self.last.wait_until_finished()

  def close(self) -> None:
    self.last.close()
    self.best.close()
