"""The optimiser's settings as arguments of the compiled train step: the schedule they give, and one compiled step
for runs that differ only in them."""

import numpy as np
import optax
import pytest

from modeformer_jax.config_loading import load_config
from modeformer_jax.train.mesh import global_batch, make_mesh
from modeformer_jax.train.step_timing import random_batch
from modeformer_jax.train.train_step import hyperparameters, init_model, init_state, learning_rate, make_step, optimizer

pytestmark = pytest.mark.unit

TINY = ["--config.model.width=32", "--config.model.video_widths=(4,8,8,16,32)",
        "--config.model.audio_widths=(4,8,8,16,32)", "--config.model.depth=1", "--config.model.mlp_dim=64",
        "--config.stages.0.batch_size=8"]


@pytest.mark.parametrize("warmup,steps", [(5, 40), (0, 12), (10, 10), (2000, 100_000)])
def test_schedule_is_optax_warmup_cosine_decay(warmup, steps):
  stage = load_config("tiny", [f"--config.stages.0.warmup_steps={warmup}", f"--config.stages.0.steps={steps}",
                               "--config.stages.0.end_lr_factor=0.05"]).stages[0]
  ours = learning_rate(hyperparameters(stage))
  theirs = optax.warmup_cosine_decay_schedule(0.0, stage.lr, warmup, max(steps, warmup + 1), stage.lr * 0.05)
  counts = np.unique(np.linspace(0, steps + 3, 60).astype(int))
  np.testing.assert_allclose([float(ours(c)) for c in counts], [float(theirs(c)) for c in counts],
                             rtol=2e-6, atol=1e-9)


def test_runs_that_differ_in_optimiser_settings_share_one_compiled_step():
  """Learning rate, schedule length, warmup, weight decay and Adam's epsilon are arguments, not constants: the
  lowered programs are identical, so the second run takes the first one's step from the compilation cache."""
  programs = []
  for settings in (["--config.stages.0.lr=2e-3", "--config.stages.0.steps=40"],
                   ["--config.stages.0.lr=1e-4", "--config.stages.0.steps=3", "--config.stages.0.warmup_steps=0",
                    "--config.stages.0.weight_decay=0.05", "--config.stages.0.adam_eps=1e-3"]):
    config = load_config("tiny", TINY + settings)
    stage, mesh = config.stages[0], make_mesh(config.mesh)
    model = init_model(config)
    state = init_state(model, optimizer(stage), mesh)
    batch = global_batch(random_batch(config, stage.batch_size, stage.num_negatives), mesh)
    step = make_step(config, stage, model, mesh, state)
    programs.append(step.lower(state, batch, hyperparameters(stage, mesh)).as_text())
  assert programs[0] == programs[1]

