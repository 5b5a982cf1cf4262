"""Train state, optimiser and the jitted train step (functional over plain pytrees of arrays).

The state holds parameters and BatchNorm statistics as pure nested dicts, so a checkpoint is a plain tree that
export and evaluation read without rebuilding optimiser objects; the model is re-assembled inside the step
with nnx.merge, which costs nothing after tracing.
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from modeformer_jax.data.augment import Augment
from modeformer_jax.loss import objective_loss
from modeformer_jax.models.functional import Model, init_weights
from modeformer_jax.models.layers import biases_before_batchnorm
from modeformer_jax.train.mesh import BATCH_AXES, replicated, state_shardings

PyTree = Any
# fold_in constant of the augmentation keys' stream (dropout's keys fold the step into the seed's key directly).
AUGMENT_STREAM = 0x0A06


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # global step over all stages, int32 scalar
  params: PyTree           # pure dict of float32 parameters
  batch_stats: PyTree      # pure dict of BatchNorm running statistics
  opt_state: PyTree


# The stage's optimiser settings that enter the step as arguments, not as constants compiled into it: runs and
# stages that differ only in these (a learning-rate sweep, a fine-tune stage, the tests' runs) share one compiled
# step, also through the persistent compilation cache. grad_clip stays a constant: 0 removes the clipping.
HYPERPARAMETERS = ("lr", "warmup_steps", "steps", "end_lr_factor", "weight_decay", "adam_eps")


def hyperparameters(stage: ml_collections.ConfigDict, mesh: Mesh | None = None) -> dict[str, Any]:
  """float32 scalars of HYPERPARAMETERS (numpy; replicated over `mesh` when given, as the step takes them)."""
  values = {name: np.float32(stage[name]) for name in HYPERPARAMETERS}
  return values if mesh is None else jax.device_put(values, replicated(mesh))


def learning_rate(hyper: dict[str, Any]) -> optax.Schedule:
  """Linear warmup from 0, then cosine decay to lr * end_lr_factor at the stage's last step (ours; the paper
  gives none). optax.warmup_cosine_decay_schedule's curve, in jnp so that its settings may be traced."""
  def schedule(count):
    count = jnp.asarray(count, jnp.float32)
    warmup, peak = hyper["warmup_steps"], hyper["lr"]
    end = peak * hyper["end_lr_factor"]
    progress = jnp.clip((count - warmup) / jnp.maximum(hyper["steps"] - warmup, 1.0), 0.0, 1.0)
    decayed = end + (peak - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
    return jnp.where(count < warmup, peak * count / jnp.maximum(warmup, 1.0), decayed)

  return schedule


def optimizer(stage: ml_collections.ConfigDict, hyper: dict[str, Any] | None = None) -> optax.GradientTransformation:
  """AdamW with global-norm clipping; weight decay on kernels only (not biases, norms, tokens, temperature).

  `hyper`: hyperparameters(stage) by default; the train step passes them as traced arrays. The optimiser's
  state has the same structure either way.

  Conv biases that feed a BatchNorm are not updated (layers.biases_before_batchnorm): their true gradient is
  zero, and Adam would otherwise move them by the learning rate in a direction set by rounding noise, so that
  runs on different device layouts or numbers of processes would drift apart for nothing.
  """
  hyper = hyperparameters(stage) if hyper is None else hyper
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
  return optax.chain(
      optax.masked(optax.set_to_zero(), biases_before_batchnorm),
      optax.clip_by_global_norm(stage.grad_clip) if stage.grad_clip else optax.identity(),
      optax.adamw(learning_rate(hyper), eps=hyper["adam_eps"], weight_decay=hyper["weight_decay"],
                  mask=decay_mask))


def init_model(config: ml_collections.ConfigDict) -> Model:
  """The run's model (config.model) with its initial weights at config.seed."""
  return init_weights(config.model, config.seed)


def init_state(model: Model, tx: optax.GradientTransformation, mesh: Mesh, step: int = 0) -> TrainState:
  """A fresh optimiser around the given weights, placed on the mesh (replicated or fsdp-split)."""
  state = TrainState(jnp.asarray(step, jnp.int32), model.params, model.batch_stats, None)
  state = state.replace(opt_state=tx.init(state.params))
  return jax.device_put(state, state_sharding(mesh, state))


def state_sharding(mesh: Mesh, state: TrainState) -> TrainState:
  return state.replace(step=replicated(mesh), params=state_shardings(mesh, state.params),
                       batch_stats=state_shardings(mesh, state.batch_stats),
                       opt_state=state_shardings(mesh, state.opt_state))


def make_train_step(model: Model, tx_for: Callable[[dict], optax.GradientTransformation], mesh: Mesh,
                    state: TrainState, *, negatives: str, chunk_size: int, seed: int, augment: Augment,
                    row_start: int, symmetric: bool = False) -> Callable:
  """(state, global batch, hyperparameters) -> (state, metrics). The input state's buffers are donated.

  tx_for(hyper) is the optimiser with the given hyperparameters (hyperparameters(stage, mesh), traced here).

  The batch holds data/pipeline.py's arrays (audio_ids optional) and optionally "stop" bool [B]: each
  process's rows say whether it was asked to stop (SIGTERM); metrics["stop"] is then their logical or. Its
  video has augment.margin(row_start) rows above the model's (preprocess.mouth_row_start = row_start): the step
  augments video and audio first (data/augment.py).

  The loss is the model's objective (loss.objective_loss): InfoNCE over `negatives` for ModEFormer, with its
  audio -> video rows too when `symmetric`.

  Dropout keys are fold_in(seed, step) and augmentation keys fold_in(fold_in(seed, AUGMENT_STREAM), step), so a
  resumed run draws the same masks and augmentations as an uninterrupted one. A step whose loss or gradient is
  not finite leaves the state unchanged and reports finite=False; the trainer stops. BatchNorm statistics are
  over the global batch: jit sees global arrays, so the batch mean spans devices.
  """
  base_key = jax.random.key(seed)
  augment_key = jax.random.fold_in(base_key, AUGMENT_STREAM)

  def step_fn(state: TrainState, batch: dict[str, jax.Array], hyper: dict[str, jax.Array]):
    tx = tx_for(hyper)
    key = jax.random.fold_in(base_key, state.step)
    video, audio = augment(batch["video"], batch["audio"], jax.random.fold_in(augment_key, state.step), row_start,
                           batch.get("video_mask"))

    def loss_fn(params):
      rngs = nnx.Rngs(dropout=key)  # created inside the traced function, which mutates its counter
      net = model.merge(params, state.batch_stats)
      clips = {"video_mask": batch["video_mask"]} if "video_mask" in batch else {}  # variable-length clips (AVST)
      outputs = net(video, audio, train=True, rngs=rngs, **clips)
      loss, metrics = objective_loss(net, outputs, batch["audio_mask"], mesh=mesh, batch_axes=BATCH_AXES,
                                     negatives=negatives, chunk_size=chunk_size or None,
                                     audio_ids=batch.get("audio_ids"), symmetric=symmetric)
      stats = nnx.to_pure_dict(nnx.state(net, nnx.BatchStat))
      return loss, (metrics, stats)

    (loss, (metrics, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grad_norm = optax.global_norm(grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                        batch_stats=stats, opt_state=opt_state)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    new = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, state.replace(step=state.step + 1))
    metrics = dict(metrics, loss=loss, grad_norm=grad_norm, finite=finite, lr=_step_lr(state.opt_state, hyper))
    if "stop" in batch:  # any process asked to stop: one replicated answer that every process reads alike
      metrics["stop"] = jnp.any(batch["stop"])
    return new, metrics

  shardings = state_sharding(mesh, state)
  return jax.jit(step_fn, donate_argnums=0, out_shardings=(shardings, replicated(mesh)))


def _step_lr(opt_state, hyper: dict[str, jax.Array]) -> jax.Array:
  """The learning rate a step applies: the schedule at the stage's update count (its ScaleByScheduleState), so that
  the trainer logs it without computing on the device itself."""
  is_count = lambda node: isinstance(node, optax.ScaleByScheduleState)
  count = next(node.count for node in jax.tree.leaves(opt_state, is_leaf=is_count) if is_count(node))
  return learning_rate(hyper)(count)


def make_step(config: ml_collections.ConfigDict, stage: ml_collections.ConfigDict, model: Model, mesh: Mesh,
              state: TrainState) -> Callable:
  """The train step of `stage` as the trainer makes it (its optimiser, negatives, symmetry, chunking, seed,
  augmentation); call it with hyperparameters(stage, mesh)."""
  tx_for = lambda hyper: optimizer(stage, hyper)
  return make_train_step(model, tx_for, mesh, state, negatives=stage.negatives, chunk_size=config.loss_chunk_size,
                         seed=config.seed, augment=Augment.from_config(config.data.augment),
                         row_start=config.preprocess.mouth_row_start, symmetric=stage.get("symmetric", False))
