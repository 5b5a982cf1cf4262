"""The trainer end to end on 8 simulated CPU devices: learning, resume after interruption, fsdp sharding."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from modeformer_jax.config_loading import load_config
from modeformer_jax.train import trainer
from modeformer_jax.train.train_step import hyperparameters, learning_rate
from modeformer_jax.weights import restore_weights

pytestmark = pytest.mark.integration

# Narrower than configs/tiny.py so CPU steps take a fraction of a second.
OVERRIDES = ["--config.model.width=32", "--config.model.video_widths=(4,8,8,16,32)",
             "--config.model.audio_widths=(4,8,8,16,32)", "--config.model.depth=1", "--config.model.mlp_dim=64",
             "--config.data.synthetic_clips=16", "--config.stages.0.batch_size=8"]


def _config(*extra):
  return load_config("tiny:synthetic", OVERRIDES + list(extra))


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_tiny_training_lowers_the_loss(tmp_path):
  config = _config("--config.stages.0.steps=40", "--config.stages.0.lr=3e-3", "--config.checkpoint_every=100")
  result = trainer.train(config, str(tmp_path), progress=False)
  losses = [h["loss"] for h in result.history]
  print("losses", np.round(losses, 2))
  assert len(losses) == 40 and all(np.isfinite(losses))
  assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.1
  assert os.listdir(tmp_path / "tensorboard")  # event files written
  config_read, step, params, _ = restore_weights(str(tmp_path))
  assert step == 40 and config_read.model.width == 32
  for a, b in zip(_leaves(params), _leaves(result.params)):
    np.testing.assert_array_equal(a, b)


def _cli(workdir, steps):
  return [sys.executable, "-m", "modeformer_jax.cli", "train", "--config", "tiny:synthetic",
          "--workdir", str(workdir), "--no-progress", f"--config.stages.0.steps={steps}",
          "--config.checkpoint_every=3", *OVERRIDES]


def _interrupt_after(cmd, checkpoint_dir, step, sig):
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while not os.path.isdir(os.path.join(checkpoint_dir, str(step))):
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert time.time() < deadline, "no checkpoint appeared"
    time.sleep(0.1)
  proc.send_signal(sig)
  proc.communicate(timeout=240)
  return proc.returncode


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
  """A hard kill loses what happened since the last checkpoint, nothing more. (SIGTERM, which checkpoints and
  exits 143, is tests/test_multiprocess.py's default test.)"""
  steps = 12
  reference = trainer.train(_config(f"--config.stages.0.steps={steps}", "--config.checkpoint_every=3"),
                            str(tmp_path / "reference"), progress=False)
  workdir = tmp_path / "interrupted"
  ckdir = workdir / "checkpoints"
  assert _interrupt_after(_cli(workdir, steps), ckdir, 3, signal.SIGKILL) == -signal.SIGKILL
  done = subprocess.run(_cli(workdir, steps), capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "resumed from step" in done.stderr
  _, step, params, stats = restore_weights(str(workdir))
  assert step == steps
  for a, b in zip(_leaves((params, stats)), _leaves((reference.params, reference.batch_stats))):
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_fsdp_sharding_matches_data_parallel(tmp_path):
  common = ["--config.stages.0.steps=3", "--config.checkpoint_every=100"]
  dp = trainer.train(_config(*common), str(tmp_path / "dp"), progress=False)
  fsdp = trainer.train(_config(*common, "--config.mesh.fsdp=2"), str(tmp_path / "fsdp"), progress=False)
  # Same losses and gradient norms step by step. (Parameters are not compared elementwise: Adam's first steps
  # divide by |g|, so a 1e-9 difference in a near-zero gradient moves a weight by up to the learning rate.)
  for key in ("loss", "grad_norm", "accuracy"):
    np.testing.assert_allclose([h[key] for h in fsdp.history], [h[key] for h in dp.history], rtol=1e-5)


def test_two_stages_chain_weights(tmp_path):
  config = _config("--config.stages.0.steps=2", "--config.checkpoint_every=100")
  second = config.stages[0].copy_and_resolve_references()
  second.name, second.steps, second.lr = "second", 2, 1e-4  # a fine-tune: its step is the first stage's, compiled once
  config.stages = [config.stages[0], second]
  result = trainer.train(config, str(tmp_path), progress=False)
  assert result.step == 4
  assert [h["stage"] for h in result.history] == ["main", "main", "second", "second"]
  assert max(h["lr"] for h in result.history[2:]) <= 1e-4 < result.history[1]["lr"]  # each stage its own schedule
  for stage, rows in ((config.stages[0], result.history[:2]), (second, result.history[2:])):  # as its step applied it
    schedule = learning_rate(hyperparameters(stage))
    np.testing.assert_allclose([h["lr"] for h in rows], [float(schedule(count)) for count in range(2)], rtol=1e-6)
  _, step, _, _ = restore_weights(str(tmp_path))
  assert step == 4


def test_non_finite_loss_stops_with_the_step(tmp_path):
  config = _config("--config.stages.0.steps=5", "--config.stages.0.lr=1e30", "--config.checkpoint_every=100")
  with pytest.raises(trainer.NonFiniteError, match="step"):
    trainer.train(config, str(tmp_path), progress=False)


def test_validation_during_training_keeps_the_best(tmp_path):
  config = _config("--config.stages.0.steps=4", "--config.checkpoint_every=100", "--config.eval_every=2",
                   "--config.eval_videos=2", "--config.eval_split=val")
  trainer.train(config, str(tmp_path), progress=False)
  _, step, _, _ = restore_weights(str(tmp_path), "best")
  assert step in (2, 4)
  events = os.listdir(tmp_path / "tensorboard")
  assert events
