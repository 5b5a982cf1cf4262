"""The training loop: stages of InfoNCE training on a device mesh, on one process or many, resumable at any step.

Reads top to bottom: setup (processes, compilation cache, mesh, workdir) -> model -> resume point -> for each
stage: optimiser and state, input pipeline, compiled step, loop (step, metrics, validation, checkpoints) ->
final weights.

Every process runs this same function on its own devices. What they must agree on (when to stop, what to
save, which checkpoint is best) comes out of compiled programs over the whole mesh, so no process decides
alone: a SIGTERM travels into the train step as a per-row flag and comes back as one replicated value,
validation accuracies are summed over the processes. Only process 0 writes logs, TensorBoard and config.json.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from modeformer_jax import runtime
from modeformer_jax.data.pipeline import records_per_process_batch, train_batches
from modeformer_jax.errors import UserError
from modeformer_jax.evaluation.evaluate import validation_metrics, validation_records
from modeformer_jax.inference import SyncModel
from modeformer_jax.train import checkpoints as ckpt_lib
from modeformer_jax.train.logging import MetricsLogger
from modeformer_jax.train.mesh import global_batch, make_mesh
from modeformer_jax.train.train_step import hyperparameters, init_model, init_state, make_step, optimizer
from modeformer_jax.weights import run_folder


class NonFiniteError(RuntimeError):
  pass


class Preempted(RuntimeError):
  pass


@dataclasses.dataclass
class TrainResult:
  step: int
  params: dict
  batch_stats: dict
  last_metrics: dict[str, float]
  history: list[dict]  # per-step metrics of this invocation (process 0)


class _SigtermFlag:
  """SIGTERM (a scheduler's preemption notice) sets a flag; the loop checkpoints once every process knows."""

  def __init__(self):
    self.raised = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    self.raised = True

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


def train(config: ml_collections.ConfigDict, workdir: str, *, progress: bool = True) -> TrainResult:
  # ---- Setup: processes, compilation cache, mesh, workdir ---------------------------------------------------
  runtime.initialize_distributed()
  runtime.enable_compilation_cache(config.compilation_cache_dir)
  mesh = make_mesh(config.mesh)
  for i, s in enumerate(config.stages):
    if s.batch_size % mesh.size:
      raise UserError(f"config.stages.{i}.batch_size: {s.batch_size} is not divisible by the {mesh.size} devices")
    records_per_process_batch(s.batch_size, config.data.windows_per_record, jax.process_count())
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() == 0:
    run_folder.write_config(workdir, config)
  checkpoints = ckpt_lib.RunCheckpoints(workdir, config.keep_checkpoints)
  logger = MetricsLogger(workdir, enabled=jax.process_index() == 0, progress=progress)
  sigterm = _SigtermFlag()

  # ---- Model and validation set -----------------------------------------------------------------------------
  model = init_model(config)
  # Each process scores its share of the validation videos on its own devices; the sums are combined.
  val_records = (validation_records(config)[jax.process_index()::jax.process_count()] if config.eval_every
                 else None)
  # One inference model for all validations: its encoders compile once, new weights are swapped in.
  val_model = (SyncModel(config, model.params, model.batch_stats, graphdef=model.graphdef)
               if val_records is not None else None)

  # ---- Resume point -----------------------------------------------------------------------------------------
  # meta = {"stage": i, "stage_step": k}: k steps of stage i are done. Restoring needs a target of the same
  # structure, so the stage's fresh state is built first and the checkpoint is read into it. The input
  # position is k global batches (data/pipeline.py), whatever number of processes saved it.
  latest = checkpoints.latest_step()
  resume_meta = checkpoints.read_meta(latest) if latest is not None else None
  first_stage = resume_meta["stage"] if resume_meta else 0
  stage_starts = np.cumsum([0] + [s.steps for s in config.stages])
  metrics = {}

  try:
    for stage_index in range(first_stage, len(config.stages)):
      stage = config.stages[stage_index]

      # ---- Stage: optimiser, state, input pipeline --------------------------------------------------------
      state = init_state(model, optimizer(stage), mesh, step=int(stage_starts[stage_index]))
      stage_step = 0
      if resume_meta and resume_meta["stage"] == stage_index:
        state, meta = checkpoints.restore(latest, state)
        stage_step = meta["stage_step"]
        logger.message(f"resumed from step {latest} (stage {stage.name}, {stage_step}/{stage.steps})")
        resume_meta = None
      batches = train_batches(config, stage, seed=config.seed * 1000 + stage_index, start=stage_step)
      train_step = make_step(config, stage, model, mesh, state)
      hyper = hyperparameters(stage, mesh)
      logger.start_stage(stage.name, total=stage.steps, done=stage_step, batch_size=stage.batch_size)

      # ---- Stage: loop ------------------------------------------------------------------------------------
      # Metrics are fetched one step late so the host never waits on the step it just dispatched; the stop
      # flag among them is the same on every process, so all of them stop after the same step.
      pending, started = None, time.perf_counter()
      while stage_step < stage.steps:
        local = next(batches)
        local["stop"] = np.full(len(local["video"]), sigterm.raised)
        state, step_metrics = train_step(state, global_batch(local, mesh), hyper)
        if pending is None:
          logger.message(f"first step in {time.perf_counter() - started:.1f} s (compiling, or loading from the "
                         "compilation cache)")
        stage_step += 1
        global_step = int(stage_starts[stage_index]) + stage_step
        stop = False
        if pending is not None:
          metrics, stop = _host_metrics(*pending)
          logger.step(pending[1], metrics)
        pending = (step_metrics, global_step)
        meta = {"stage": stage_index, "stage_step": stage_step}
        if val_records is not None and global_step % config.eval_every == 0:
          val = _validate(val_model, state, val_records)
          logger.scalars(global_step, val, "val")
          logger.message(f"step {global_step}: " + ", ".join(f"{k} {v:.3f}" for k, v in val.items()))
          checkpoints.save_best(global_step, state, meta, val)
        if stage_step % config.checkpoint_every == 0 or stage_step == stage.steps or stop:
          checkpoints.save(global_step, state, meta, force=stop)
        if stop:
          checkpoints.wait()
          raise Preempted(f"SIGTERM: checkpoint saved at step {global_step}; run the same command to resume")
      if pending:
        metrics, _ = _host_metrics(*pending)
        logger.step(pending[1], metrics)
      logger.end_stage()

      # ---- Stage: hand the weights to the next stage --------------------------------------------------------
      model = dataclasses.replace(model, params=_host_tree(state.params), batch_stats=_host_tree(state.batch_stats))
  finally:
    checkpoints.wait()
    checkpoints.close()
    logger.close()
    sigterm.restore()

  # ---- Final ----------------------------------------------------------------------------------------------
  final_step = int(stage_starts[-1])
  return TrainResult(final_step, model.params, model.batch_stats, metrics, logger.history)


def _host_tree(tree):
  """Numpy copies of a tree of global arrays on every process, also of arrays split over other processes."""
  return multihost_utils.process_allgather(tree, tiled=True)


def _validate(sync_model: SyncModel, state, records: list[dict]) -> dict[str, float]:
  """The protocol's 5- and 15-frame accuracy (SPEC section 5) of the current weights on the validation subset:
  each process scores its records, the per-video sums are added up over processes, so all get the same numbers."""
  params, stats = _host_tree((state.params, state.batch_stats))
  names = ("val_accuracy_5", "val_accuracy_15")
  local = np.zeros(len(names) + 1)
  if records:
    val = validation_metrics(sync_model.with_weights(params, stats), records)
    local = np.array([val[k] * val["val_videos"] for k in names] + [val["val_videos"]])
  total = np.asarray(multihost_utils.process_allgather(local)).reshape(-1, len(names) + 1).sum(0)
  return {k: float(total[i] / total[-1]) for i, k in enumerate(names)}


def _host_metrics(step_metrics: dict, global_step: int) -> tuple[dict[str, float], bool]:
  """(host float metrics of a finished step, whether any process asked to stop)."""
  host = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
  if not host.pop("finite"):
    raise NonFiniteError(f"non-finite loss or gradient at step {global_step} (loss={host['loss']}, "
                         f"grad_norm={host['grad_norm']}); the last checkpoint holds the weights before it")
  return host, bool(host.pop("stop", False))
