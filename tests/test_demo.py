"""`modeformer demo` at its smallest setting, end to end: every promised artefact exists and is valid."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from modeformer_jax import cli

pytest.importorskip("torch")
pytestmark = pytest.mark.e2e


DEMO = ["--speakers", "6", "--clips-per-speaker", "2", "--seconds", "3", "--steps", "8", "--batch-size", "8"]


def _manifest(folder):
  return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_demo_end_to_end(tmp_path, capsys):
  w = tmp_path / "demo"
  assert cli.main(["demo", "--workdir", str(w), *DEMO]) == 0
  out = capsys.readouterr().out
  assert "demo finished" in out
  # The model trained with the demo's recipe, small faces' crops included (commands/demo.py).
  config = json.loads((w / "run" / "config.json").read_text())
  assert config["data"]["augment"]["low_res"] > 0
  # Eval: every clip length of the paper over every test video; table.md shows these numbers beside the
  # paper's rows; the plot opens.
  results = json.loads((w / "eval" / "results.json").read_text())
  test_videos = sum(row["split"] == "test" for row in _manifest(w / "data" / "lrs2"))
  assert results["data"]["split"] == "test" and results["model"]["step"] == 8
  assert sorted(results["clip_lengths"], key=int) == ["5", "7", "9", "11", "13", "15"]
  for k, r in results["clip_lengths"].items():
    assert r["videos"] == test_videos > 0 and r["windows"] > 0 and 0 <= r["accuracy"] <= 1, k
  table = (w / "eval" / "table.md").read_text()
  ours = next(line for line in table.splitlines() if "ModEFormer (ours, step 8)" in line)
  assert ours.split(" | ")[2:8] == [f"{100 * results['clip_lengths'][k]['accuracy']:.1f}"
                                     for k in ("5", "7", "9", "11", "13", "15")]
  assert "ModEFormer (paper) | 94.5" in table
  with Image.open(w / "eval" / "accuracy_vs_clip_length.png") as img:
    assert img.size[0] > 100 and img.size[1] > 100
  # Sync: the detected-vs-true table lists every shifted clip with its true offset, each one scored.
  shifted = {row["path"]: row["offset_frames"] for row in _manifest(w / "data" / "shifted")}
  listed = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.startswith("mvlrs_v1/")}
  assert listed == shifted and all(shifted.values())
  with open(w / "sync_summary.csv") as f:
    assert sum(line.split(",")[1] == "ok" for line in f) == len(shifted)
  # Export: the weights in the folder are the run's, and the PyTorch and ONNX models passed the parity check.
  from modeformer_jax.weights import load_exported, restore_weights
  _, params, _ = load_exported(str(w / "export"))
  _, _, run_params, _ = restore_weights(str(w / "run"))
  import jax
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(run_params)):
    np.testing.assert_array_equal(a, b)
  parity = json.loads((w / "export" / "config.json").read_text())["parity"]
  assert {"torch_video", "torch_audio"} <= set(parity) and max(parity.values()) < 1e-4
  assert os.path.isdir(w / "run" / "tensorboard") and os.listdir(w / "run" / "tensorboard")
  # A rerun reuses the finished steps (synth, prep, train) and still succeeds.
  assert cli.main(["demo", "--workdir", str(w), *DEMO]) == 0
  again = capsys.readouterr().out
  assert "is up to date: nothing to do" in again and "step 8, already trained, nothing to do" in again


def test_minutes_plan_the_steps_from_the_measured_step_and_reruns_reuse_the_plan(tmp_path, monkeypatch):
  from modeformer_jax.config_loading import load_config
  from modeformer_jax.train import budget
  config = load_config("tiny", ["--config.stages.0.batch_size=8", "--config.stages.0.num_negatives=1"])
  settings = {"minutes": 10.0, "batch_size": 8, "negatives": 1}
  plan_path = tmp_path / "plan.json"
  plan = budget.plan_steps(config, 8, minutes=10.0, elapsed_s=30.0, plan_path=str(plan_path), settings=settings)
  written = json.loads(plan_path.read_text())
  assert written["steps"] == plan.steps and written["minutes"] == 10.0 and written["step_s"] > 0
  # The steps are what the budget leaves for training at the step measured here (slowed by the input pipeline):
  # the 10 minutes less the 30 s spent, both compiles of the step, the set-up and eval + sync + export.
  assert plan.step_s == pytest.approx(budget.PIPELINE_SLOWDOWN * written["step_s"])
  assert plan.fitting == int(plan.budget_s / plan.step_s) and plan.steps == max(plan.fitting, budget.MIN_STEPS)
  assert 0 < plan.budget_s < 600 - 30 - 2 * written["compile_s"] - budget.SETUP_S
  # A rerun with the same settings reuses the plan instead of timing again; other settings time again.
  monkeypatch.setattr(budget, "time_step", lambda *a, **k: pytest.fail("timed again"))
  again = budget.plan_steps(config, 8, minutes=10.0, elapsed_s=0.0, plan_path=str(plan_path), settings=settings)
  assert again.reused and again.steps == plan.steps
  with pytest.raises(pytest.fail.Exception, match="timed again"):
    budget.plan_steps(config, 8, minutes=5.0, elapsed_s=0.0, plan_path=str(plan_path),
                      settings={**settings, "minutes": 5.0})
