"""`modeformer demo` at its smallest setting, end to end: every promised artefact exists and is valid."""

import argparse
import json
import os

import numpy as np
import pytest
from PIL import Image

from modeformer_jax import cli

pytest.importorskip("torch")


def test_demo_end_to_end(tmp_path, capsys):
  w = tmp_path / "demo"
  assert cli.main(["demo", "--workdir", str(w), "--speakers", "6", "--clips-per-speaker", "2", "--seconds", "3",
                   "--steps", "8", "--batch-size", "8"]) == 0
  out = capsys.readouterr().out
  assert "demo finished" in out
  # Eval: results.json parses and has every clip length; table.md has the paper's rows; the plot opens.
  results = json.loads((w / "eval" / "results.json").read_text())
  table = (w / "eval" / "table.md").read_text()
  assert "ModEFormer (paper)" in table and "| 5 |" in table
  with Image.open(w / "eval" / "accuracy_vs_clip_length.png") as img:
    assert img.size[0] > 100 and img.size[1] > 100
  assert str(results).count("accuracy") >= 6
  # Sync: the detected-vs-true table lists every shifted clip.
  assert sum(1 for line in out.splitlines() if line.strip().endswith(tuple("0123456789")) and ".mp4" in line) >= 4
  # Export: loads back into JAX and into torch with the same weights.
  from modeformer_jax.weights import load_exported, restore_weights
  _, params, _ = load_exported(str(w / "export"))
  _, _, run_params, _ = restore_weights(str(w / "run"))
  import jax
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(run_params)):
    np.testing.assert_array_equal(a, b)
  assert os.path.isdir(w / "run" / "tensorboard") and os.listdir(w / "run" / "tensorboard")
  # A rerun reuses the finished steps (synth, prep, train) and still succeeds.
  assert cli.main(["demo", "--workdir", str(w), "--speakers", "6", "--clips-per-speaker", "2", "--seconds", "3",
                   "--steps", "8", "--batch-size", "8"]) == 0


def test_minutes_plan_the_steps_from_the_measured_step_and_reruns_reuse_the_plan(tmp_path, monkeypatch):
  from modeformer_jax.commands import demo
  from modeformer_jax.train import step_timing
  args = argparse.Namespace(steps=0, minutes=3.0, batch_size=8, negatives=1, seed=0)
  overrides = demo._train_overrides(args, str(tmp_path / "prepared"))
  plan_path = tmp_path / "plan.json"
  steps = demo._planned_steps(args, overrides, str(plan_path), elapsed_s=30.0)
  plan = json.loads(plan_path.read_text())
  assert plan["steps"] == steps and plan["minutes"] == 3.0 and plan["step_s"] > 0
  # The planned training fits in what the budget leaves (180 s - 30 s spent), and is not trivially short.
  assert demo.MIN_STEPS <= steps and steps * plan["step_s"] < 150
  assert steps * plan["step_s"] > 30, "the budget left for training should mostly go to training"
  # A rerun with the same budget reuses the plan instead of timing again; --steps overrides everything.
  monkeypatch.setattr(step_timing, "time_step", lambda *a, **k: pytest.fail("timed again"))
  assert demo._planned_steps(args, overrides, str(plan_path), elapsed_s=0.0) == steps
  assert demo._planned_steps(argparse.Namespace(**{**vars(args), "steps": 7}), overrides, str(plan_path), 0.0) == 7
