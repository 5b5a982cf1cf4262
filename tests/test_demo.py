"""`modeformer demo` at its smallest setting, end to end: every promised artefact exists and is valid."""

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
  from modeformer_jax.config_loading import load_config
  from modeformer_jax.train import budget
  config = load_config("tiny", ["--config.stages.0.batch_size=8", "--config.stages.0.num_negatives=1"])
  settings = {"minutes": 3.0, "batch_size": 8, "negatives": 1}
  plan_path = tmp_path / "plan.json"
  plan = budget.plan_steps(config, 8, minutes=3.0, elapsed_s=30.0, plan_path=str(plan_path), settings=settings)
  written = json.loads(plan_path.read_text())
  assert written["steps"] == plan.steps and written["minutes"] == 3.0 and written["step_s"] > 0
  # The planned training fits in what the budget leaves (180 s - 30 s spent), and is not trivially short.
  assert budget.MIN_STEPS <= plan.steps and plan.steps * written["step_s"] < 150
  assert plan.steps * written["step_s"] > 30, "the budget left for training should mostly go to training"
  # A rerun with the same settings reuses the plan instead of timing again; other settings time again.
  monkeypatch.setattr(budget, "time_step", lambda *a, **k: pytest.fail("timed again"))
  again = budget.plan_steps(config, 8, minutes=3.0, elapsed_s=0.0, plan_path=str(plan_path), settings=settings)
  assert again.reused and again.steps == plan.steps
  with pytest.raises(pytest.fail.Exception, match="timed again"):
    budget.plan_steps(config, 8, minutes=5.0, elapsed_s=0.0, plan_path=str(plan_path),
                      settings={**settings, "minutes": 5.0})
