"""The training loop: stages of InfoNCE training on a device mesh, resumable at any step.

Reads top to bottom: setup (hosts, mesh, workdir) -> model -> resume point -> for each stage: input
pipeline, optimiser, compiled step, loop (step, metrics, checkpoints) -> final checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import signal

import jax
import ml_collections
import numpy as np

from modeformer_jax.data.pipeline import train_batches
from modeformer_jax.errors import UserError
from modeformer_jax.evaluation.evaluate import validation_metrics, validation_records
from modeformer_jax.inference import SyncModel
from modeformer_jax.train import checkpoints as ckpt_lib
from modeformer_jax.train.logging import MetricsLogger
from modeformer_jax.train.mesh import global_batch, make_mesh
from modeformer_jax.train.train_step import init_model, init_state, learning_rate, make_train_step, optimizer
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


def maybe_initialize_distributed() -> None:
  """jax.distributed.initialize() when a launcher says this is one process of several; one process needs none.

  SLURM, Open MPI and TPU pod slices are detected by JAX itself; by hand, set JAX_COORDINATOR_ADDRESS
  (host:port of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID on every host.
  """
  env = os.environ
  if jax.distributed.is_initialized():
    return
  if "JAX_COORDINATOR_ADDRESS" in env:
    jax.distributed.initialize(env["JAX_COORDINATOR_ADDRESS"], int(env["JAX_NUM_PROCESSES"]),
                               int(env["JAX_PROCESS_ID"]))
  elif (int(env.get("SLURM_NTASKS", "1")) > 1 or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
        or "," in env.get("TPU_WORKER_HOSTNAMES", "")):
    jax.distributed.initialize()


class _SigtermFlag:
  """SIGTERM (a scheduler's preemption notice) sets a flag; the loop checkpoints at the next step and stops."""

  def __init__(self):
    self.raised = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    self.raised = True

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


def train(config: ml_collections.ConfigDict, workdir: str, *, progress: bool = True) -> TrainResult:
  # ---- Setup: hosts, mesh, workdir --------------------------------------------------------------------------
  maybe_initialize_distributed()
  mesh = make_mesh(config.mesh)
  for i, s in enumerate(config.stages):
    if s.batch_size % mesh.size:
      raise UserError(f"config.stages.{i}.batch_size: {s.batch_size} is not divisible by the {mesh.size} devices")
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() == 0:
    run_folder.write_config(workdir, config)
  checkpoints = ckpt_lib.RunCheckpoints(workdir, config.keep_checkpoints)
  logger = MetricsLogger(workdir, enabled=jax.process_index() == 0, progress=progress)
  sigterm = _SigtermFlag()

  # ---- Model and validation set -----------------------------------------------------------------------------
  model = init_model(config)
  val_records = validation_records(config) if config.eval_every else None
  # One inference model for all validations: its encoders compile once, new weights are swapped in.
  val_model = SyncModel(config, model.params, model.batch_stats, graphdef=model.graphdef) if val_records else None

  # ---- Resume point -----------------------------------------------------------------------------------------
  # meta = {"stage": i, "stage_step": k}: k steps of stage i are done. Restoring needs a target of the same
  # structure, so the stage's fresh state is built first and the checkpoint is read into it.
  latest = checkpoints.latest_step()
  resume_meta = checkpoints.read_meta(latest) if latest is not None else None
  first_stage = resume_meta["stage"] if resume_meta else 0
  stage_starts = np.cumsum([0] + [s.steps for s in config.stages])
  state, metrics = None, {}

  try:
    for stage_index in range(first_stage, len(config.stages)):
      stage = config.stages[stage_index]

      # ---- Stage: input pipeline, optimiser, state --------------------------------------------------------
      batches = train_batches(config, stage, seed=config.seed * 1000 + stage_index)
      tx = optimizer(stage)
      state = init_state(model, tx, mesh, step=int(stage_starts[stage_index]))
      stage_step = 0
      if resume_meta and resume_meta["stage"] == stage_index:
        state, data_state, meta = checkpoints.restore(latest, state)
        stage_step = meta["stage_step"]
        if data_state:
          batches.set_state(data_state)
        logger.message(f"resumed from step {latest} (stage {stage.name}, {stage_step}/{stage.steps})")
        resume_meta = None
      train_step = make_train_step(model, tx, mesh, state, negatives=stage.negatives,
                                   chunk_size=config.loss_chunk_size, seed=config.seed)
      schedule = learning_rate(stage)
      logger.start_stage(stage.name, total=stage.steps, done=stage_step, batch_size=stage.batch_size)

      # ---- Stage: loop ------------------------------------------------------------------------------------
      # Metrics are fetched one step late so the host never waits on the step it just dispatched.
      pending = None
      while stage_step < stage.steps:
        batch = global_batch(next(batches), mesh)
        state, step_metrics = train_step(state, batch)
        stage_step += 1
        global_step = int(stage_starts[stage_index]) + stage_step
        if pending is not None:
          logger.step(pending[2], metrics := _host_metrics(*pending, schedule))
        pending = (stage_step, step_metrics, global_step)
        meta = {"stage": stage_index, "stage_step": stage_step}
        if val_records is not None and global_step % config.eval_every == 0:
          val = _validate(val_model, state, val_records)
          logger.scalars(global_step, val, "val")
          logger.message(f"step {global_step}: " + ", ".join(f"{k} {v:.3f}" for k, v in val.items()))
          checkpoints.save_best(global_step, state, meta, val)
        if stage_step % config.checkpoint_every == 0 or stage_step == stage.steps or sigterm.raised:
          checkpoints.save(global_step, state, batches.get_state(), meta, force=sigterm.raised)
        if sigterm.raised:
          checkpoints.wait()
          raise Preempted(f"SIGTERM: checkpoint saved at step {global_step}; run the same command to resume")
      if pending:
        logger.step(pending[2], metrics := _host_metrics(*pending, schedule))
      logger.end_stage()

      # ---- Stage: hand the weights to the next stage --------------------------------------------------------
      model = dataclasses.replace(model, params=jax.device_get(state.params),
                                  batch_stats=jax.device_get(state.batch_stats))
  finally:
    checkpoints.wait()
    checkpoints.close()
    logger.close()
    sigterm.restore()

  # ---- Final ----------------------------------------------------------------------------------------------
  final_step = int(stage_starts[-1])
  return TrainResult(final_step, model.params, model.batch_stats, metrics, logger.history)


def _validate(sync_model: SyncModel, state, records) -> dict[str, float]:
  """The protocol's 5- and 15-frame accuracy (SPEC section 5) of the current weights on the validation subset."""
  params, stats = jax.device_get((state.params, state.batch_stats))
  return validation_metrics(sync_model.with_weights(params, stats), records)


def _host_metrics(stage_step: int, step_metrics: dict, global_step: int, schedule) -> dict[str, float]:
  host = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
  if not host.pop("finite"):
    raise NonFiniteError(f"non-finite loss or gradient at step {global_step} (loss={host['loss']}, "
                         f"grad_norm={host['grad_norm']}); the last checkpoint holds the weights before it")
  host["lr"] = float(schedule(stage_step - 1))
  return host
