"""The sweep scripts in experiments/ end to end at tiny size on generated data, and their cluster commands."""

import importlib
import json
import os
import shlex

import numpy as np
import pytest

from modeformer_jax.evaluation import protocol

pytestmark = pytest.mark.e2e

# A model narrower than configs/tiny.py and few clips: each run trains and evaluates in seconds.
TINY = ["--config", "tiny:synthetic", "--steps", "2", "--limit", "2", "--clip-lengths", "5,15",
        "--no-progress", "--config.model.width=32", "--config.model.video_widths=(4,8,8,16,32)",
        "--config.model.audio_widths=(4,8,8,16,32)", "--config.model.depth=1", "--config.model.mlp_dim=64",
        "--config.data.synthetic_clips=8"]


@pytest.fixture
def script(monkeypatch):
  monkeypatch.syspath_prepend(os.path.abspath("experiments"))
  return lambda name: importlib.import_module(name)


def _rows(path):
  with open(path) as f:
    return json.load(f)


def check_collected(rows, out, runs, steps):
  """Each table row holds its run's evaluation (results.json, %), and each run trained `steps` steps with the
  settings its name promises (`runs`: run folder -> config fields, as "group.field": value)."""
  for row, (name, fields) in zip(rows, runs.items()):
    run = out / "runs" / name
    results = _rows(run / "eval" / "test" / "results.json")
    assert row["accuracy"] == {k: pytest.approx(100 * v["accuracy"]) for k, v in results["clip_lengths"].items()}
    assert results["model"]["step"] == steps and all(v["videos"] == 2 for v in results["clip_lengths"].values())
    config = _rows(run / "config.json")
    for field, value in fields.items():
      group, key = field.split(".", 1)
      node = config[group][0] if group == "stages" else config[group]
      assert node[key] == value, (name, field)
    assert os.path.isdir(run / "checkpoints" / str(steps))


def test_negatives_sweep_trains_evaluates_and_collects(script, tmp_path, capsys):
  # N = 3 with the video -> audio loss and with the audio -> video rows added (stages.N.symmetric).
  argv = ["--out", str(tmp_path), "--num-negatives", "3", "--audio-budget", "32", "--symmetric", "both", *TINY]
  assert script("negatives_sweep").main(argv) == 0
  rows = _rows(tmp_path / "negatives_sweep.json")
  assert [(r["N"], r["loss"], r["batch"], r["audio/step"]) for r in rows] == [(3, "v->a", 8, 32),
                                                                              (3, "v->a + a->v", 8, 32)]
  check_collected(rows, tmp_path, {"N3": {"stages.num_negatives": 3, "stages.symmetric": False},
                                   "N3-symmetric": {"stages.num_negatives": 3, "stages.symmetric": True}}, steps=2)
  table = (tmp_path / "negatives_sweep.md").read_text()
  assert "| dataset | N | loss | batch | audio/step | 5 | 7 | 9 | 11 | 13 | 15 | params |" in table
  assert "Adding the audio -> video rows changes 5-frame accuracy by " in table and " points at N = 3." in table
  assert (tmp_path / "negatives_sweep.png").stat().st_size > 0
  assert (tmp_path / "runs" / "N3" / "eval" / "test" / "table.md").is_file()
  # A second invocation finds every run's results.json and only collects the table.
  capsys.readouterr()
  assert script("negatives_sweep").main(argv) == 0
  assert capsys.readouterr().err.count("using ") == 2
  assert _rows(tmp_path / "negatives_sweep.json") == rows


def test_print_commands_one_train_and_eval_pair_per_run(script, capsys):
  assert script("negatives_sweep").main(["--out", "sweeps/neg", "--print-commands",
                                         "--config.data.data_dir=/data/prep"]) == 0
  lines = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
  assert len(lines) == 14 and [line[1] for line in lines] == ["train", "eval"] * 7
  train, evaluate = lines[10], lines[11]  # N = 11: the lrs2 config's batch of 256 at the default budget
  assert train[:6] == ["modeformer", "train", "--config", "modeformer_lrs2", "--workdir",
                       "sweeps/neg/runs/N11"]
  assert {"--config.data.data_dir=/data/prep", "--config.stages.0.num_negatives=11",
          "--config.stages.1.num_negatives=11", "--config.stages.0.batch_size=256",
          "--config.stages.1.batch_size=256"} <= set(train)
  assert evaluate[:4] == ["modeformer", "eval", "--checkpoint", "sweeps/neg/runs/N11"]
  assert evaluate[evaluate.index("--out") + 1] == "sweeps/neg/runs/N11/eval/test"
  assert "--config.stages.0.batch_size=1536" in lines[0]  # N = 1

  assert script("transformer_ablation").main(["--out", "sweeps/abl", "--print-commands", "--steps", "100"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 4 and "--config.model.temporal=pool" in lines[2]
  assert "--config.stages.0.steps=100" in lines[2] and "--config.stages.1.steps=100" in lines[2]


def _check_ablation_outputs(out):
  rows = _rows(out / "transformer_ablation.json")
  assert [r["model"].split(" ")[0] for r in rows] == ["ModEFormer", "3D-SyncNet"]
  assert "Removing the transformers costs" in (out / "transformer_ablation.md").read_text()
  assert (out / "transformer_ablation.png").stat().st_size > 0
  return rows


@pytest.mark.slow  # two more trainings (~2 min of CPU); the negatives sweep covers the same path by default
def test_transformer_ablation_end_to_end(script, tmp_path):
  # Batch 8 makes the ModEFormer run the negatives sweep's N = 3 run: its compiled step comes from the
  # session's persistent XLA cache (tests/conftest.py).
  assert script("transformer_ablation").main(["--out", str(tmp_path), *TINY, "--config.stages.0.batch_size=8"]) == 0
  _check_ablation_outputs(tmp_path)


def test_transformer_ablation_collects_finished_runs(script, tmp_path):
  # As after the printed commands ran on a cluster: each run's results.json exists, nothing is trained.
  rng = np.random.default_rng(0)
  for name, temporal, shift in (("modeformer", "transformer", 0), ("3d-syncnet", "pool", 4)):
    scores = rng.normal(size=(6, 40, 31))
    scores[:, :, 15 + shift] += 10.0  # ModEFormer's windows peak in sync, 3D-SyncNet's 4 frames off ...
    scores[:, :, 15 - shift] += 5.0   # ... and 4 frames the other way where +4 lies outside the video
    results = protocol.protocol_results(list(scores), (5, 15))
    results.update(model={"temporal": temporal, "step": 2, "params": 1000}, data={"dataset": "synthetic"})
    (tmp_path / "runs" / name / "eval" / "test").mkdir(parents=True)
    (tmp_path / "runs" / name / "eval" / "test" / "results.json").write_text(json.dumps(results))
  assert script("transformer_ablation").main(["--out", str(tmp_path), *TINY]) == 0
  rows = _check_ablation_outputs(tmp_path)
  assert rows[0]["accuracy"]["5"] == 100.0 and rows[1]["accuracy"]["5"] == 0.0
  assert "costs 100.0 points at 5 frames" in (tmp_path / "transformer_ablation.md").read_text()


def test_clip_length_sweep_over_run_folders(script, trained_run, tmp_path):
  argv = [trained_run, "--out", str(tmp_path), "--limit", "2", "--no-progress"]
  assert script("clip_length_sweep").main(argv) == 0
  rows = _rows(tmp_path / "clip_length_sweep.json")
  assert rows[0]["run"] == trained_run and rows[0]["dataset"] == "synthetic"
  assert sorted(rows[0]["accuracy"]) == ["11", "13", "15", "5", "7", "9"]
  assert any(r["model"] == "ModEFormer (paper)" for r in rows[1:])
  assert (tmp_path / f"0-{os.path.basename(trained_run)}" / "results.json").is_file()


def test_data_ceiling_reads_sync_from_the_generated_audio(script, capsys):
  """A linear read-out of the mouth from the audio, fitted on 12 clips, finds the offset far above chance."""
  assert script("data_ceiling").main(["--train-clips", "12", "--test-clips", "3", "--json"]) == 0
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  accuracy = result["accuracy"]
  assert result["r2"] > 0.5
  assert accuracy["5"] > 30, accuracy  # chance is about 3/31 = 9.7%
  assert accuracy["15"] > accuracy["5"] + 10, accuracy
  # Windows where the mouth moves are read better than windows where it barely moves.
  by_motion = result["by_motion"]
  assert len(by_motion) == 5 and by_motion[0]["motion"][1] <= by_motion[-1]["motion"][0]
  assert by_motion[-1]["accuracy"] > by_motion[0]["accuracy"], by_motion
