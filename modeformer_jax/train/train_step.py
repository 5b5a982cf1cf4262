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
import optax
from flax import nnx
from jax.sharding import Mesh

from modeformer_jax.loss import objective_loss
from modeformer_jax.models import build_model
from modeformer_jax.models.functional import Model, abstract_model, split_model
from modeformer_jax.models.layers import biases_before_batchnorm
from modeformer_jax.train.mesh import BATCH_AXES, replicated, state_shardings

PyTree = Any


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # global step over all stages, int32 scalar
  params: PyTree           # pure dict of float32 parameters
  batch_stats: PyTree      # pure dict of BatchNorm running statistics
  opt_state: PyTree


def learning_rate(stage: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warmup then cosine decay to lr * end_lr_factor over the stage (ours; the paper gives none)."""
  return optax.warmup_cosine_decay_schedule(
      0.0, stage.lr, stage.warmup_steps, max(stage.steps, stage.warmup_steps + 1), stage.lr * stage.end_lr_factor)


def optimizer(stage: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW with global-norm clipping; weight decay on kernels only (not biases, norms, tokens, temperature).

  Conv biases that feed a BatchNorm are not updated (layers.biases_before_batchnorm): their true gradient is
  zero, and Adam would otherwise move them by the learning rate in a direction set by rounding noise, so that
  runs on different device layouts or numbers of processes would drift apart for nothing.
  """
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
  return optax.chain(
      optax.masked(optax.set_to_zero(), biases_before_batchnorm),
      optax.clip_by_global_norm(stage.grad_clip) if stage.grad_clip else optax.identity(),
      optax.adamw(learning_rate(stage), eps=stage.adam_eps, weight_decay=stage.weight_decay, mask=decay_mask))


def init_model(config: ml_collections.ConfigDict) -> Model:
  """Builds the model under jit (eager init of the 59M model costs seconds of op-by-op dispatch)."""
  def init():
    model = split_model(build_model(config.model, seed=config.seed))
    return model.params, model.batch_stats

  return Model(abstract_model(config.model, config.seed).graphdef, *jax.jit(init)())


def init_state(model: Model, tx: optax.GradientTransformation, mesh: Mesh, step: int = 0) -> TrainState:
  """A fresh optimiser around the given weights, placed on the mesh (replicated or fsdp-split)."""
  state = TrainState(jnp.asarray(step, jnp.int32), model.params, model.batch_stats, None)
  state = state.replace(opt_state=tx.init(state.params))
  return jax.device_put(state, state_sharding(mesh, state))


def state_sharding(mesh: Mesh, state: TrainState) -> TrainState:
  return state.replace(step=replicated(mesh), params=state_shardings(mesh, state.params),
                       batch_stats=state_shardings(mesh, state.batch_stats),
                       opt_state=state_shardings(mesh, state.opt_state))


def make_train_step(model: Model, tx: optax.GradientTransformation, mesh: Mesh, state: TrainState, *,
                    negatives: str, chunk_size: int, seed: int, symmetric: bool = False) -> Callable:
  """(state, global batch) -> (state, metrics). The input state's buffers are donated.

  The batch holds data/pipeline.py's arrays (audio_ids optional) and optionally "stop" bool [B]: each
  process's rows say whether it was asked to stop (SIGTERM); metrics["stop"] is then their logical or.

  The loss is the model's objective (loss.objective_loss): InfoNCE over `negatives` for ModEFormer, with its
  audio -> video rows too when `symmetric`.

  Dropout keys are fold_in(seed, step), so a resumed run draws the same masks as an uninterrupted one. A step
  whose loss or gradient is not finite leaves the state unchanged and reports finite=False; the trainer stops.
  BatchNorm statistics are over the global batch: jit sees global arrays, so the batch mean spans devices.
  """
  base_key = jax.random.key(seed)

  def step_fn(state: TrainState, batch: dict[str, jax.Array]):
    key = jax.random.fold_in(base_key, state.step)

    def loss_fn(params):
      rngs = nnx.Rngs(dropout=key)  # created inside the traced function, which mutates its counter
      net = model.merge(params, state.batch_stats)
      clips = {"video_mask": batch["video_mask"]} if "video_mask" in batch else {}  # variable-length clips (AVST)
      outputs = net(batch["video"], batch["audio"], train=True, rngs=rngs, **clips)
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
    metrics = dict(metrics, loss=loss, grad_norm=grad_norm, finite=finite)
    if "stop" in batch:  # any process asked to stop: one replicated answer that every process reads alike
      metrics["stop"] = jnp.any(batch["stop"])
    return new, metrics

  shardings = state_sharding(mesh, state)
  return jax.jit(step_fn, donate_argnums=0, out_shardings=(shardings, replicated(mesh)))
