"""Evaluation (SPEC section 5) of the session's trained tiny model: batched vs naive scoring, the numbers a
trained model reaches, the `modeformer eval` outputs and its bad-input messages."""

import json
import os
import shutil

import numpy as np
import pytest

from modeformer_jax import cli
from modeformer_jax.data.pipeline import open_source
from modeformer_jax.errors import UserError
from modeformer_jax.evaluation import protocol
from modeformer_jax.evaluation.evaluate import (evaluate, utterance_scores, validation_metrics,
                                                validation_records)
from modeformer_jax.inference import load_sync_model

pytestmark = pytest.mark.integration

CHANCE = 3 / 31  # +-1 frame of 31 candidate offsets


@pytest.fixture(scope="module")
def model(trained_run):
  return load_sync_model(trained_run)


@pytest.fixture(scope="module")
def records(model):
  return open_source(model.config, "test")


@pytest.fixture(scope="module")
def results(model, records):
  # Half the synthetic test split (3 of its 6 speakers): 552 windows, enough to tell a trained model from chance.
  return evaluate(model, records, limit=12, data={"dataset": "synthetic", "split": "test"})


def _eval(*argv):
  return cli.main(["eval", "--no-progress", *argv])


def test_briefly_trained_model_is_well_above_chance_and_context_helps(results):
  """On speakers it never saw (the synthetic test split), after the conftest's short CPU training."""
  acc = {int(k): v["accuracy"] for k, v in results["clip_lengths"].items()}
  print("trained_run accuracy by clip length:", {k: round(v, 3) for k, v in acc.items()})
  assert results["clip_lengths"]["5"]["videos"] == 12 and not results["skipped"]
  assert acc[5] > 1.5 * CHANCE
  assert acc[15] > acc[5] + 0.1


def test_naive_scoring_gives_identical_results(model, records):
  # Naive scoring costs ~(2S+1) x the encoder passes, so a +-3 band on 22- and 9-frame cuts keeps this test
  # quick (bench/eval_cost.py runs the full +-15 band); the code paths are the same for any band and length.
  # The 9-frame cut has 4 < 2S windows: its windows are also scored against all-zero audio (protocol quirk 1).
  cuts = [dict(records[i], crops=records[i]["crops"][:length]) for i, length in ((0, 22), (1, 22), (2, 9))]
  batched, _ = utterance_scores(model, cuts, max_offset=3)
  naive, _ = utterance_scores(model, cuts, max_offset=3, naive=True)
  assert [v.scores.shape for v in batched] == [(17, 7), (17, 7), (4, 7)]
  assert [v.id for v in batched] == [v.id for v in naive]
  assert batched[0].padded is None and batched[2].padded.shape == (4,)
  for a, b in zip(batched, naive):
    np.testing.assert_array_equal(np.isnan(a.scores), np.isnan(b.scores))
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5, rtol=0)
    np.testing.assert_allclose(a.padded if a.padded is not None else [], b.padded if b.padded is not None else [],
                               atol=1e-5, rtol=0)
  lengths = (5, 7, 9, 11, 13, 15)
  assert (protocol.protocol_results([v.scores for v in batched], lengths, padded=[v.padded for v in batched])
          == protocol.protocol_results([v.scores for v in naive], lengths, padded=[v.padded for v in naive]))


def test_validation_metrics_match_evaluate(model, records, results):
  metrics = validation_metrics(model, [records[i] for i in range(4)])
  expected = {f"val_accuracy_{k}": np.mean([v["accuracy"][k] for v in results["videos"][:4]]) for k in ("5", "15")}
  assert metrics == pytest.approx({**expected, "val_videos": 4}, abs=1e-12)


def test_validation_records_spread_over_the_split(model):
  config = model.config.copy_and_resolve_references()
  config.eval_videos = 3
  chosen = [r["id"] for r in validation_records(config)]
  split = open_source(config, config.eval_split)
  assert chosen == [split[0]["id"], split[len(split) // 2]["id"], split[len(split) - 1]["id"]]


def test_every_video_with_a_window_counts(model, records):
  """L - 5 windows per video (VocaLiST's test script); short videos count, videos without a window are listed."""
  short = dict(records[0], id="short", crops=records[0]["crops"][:34])  # 29 windows < 2 x 15
  # Raw audio, when a record has it, bounds L: 36 frames of audio -> 31 windows.
  clipped = dict(records[1], id="clipped", audio=np.zeros(36 * 640 + 100, np.int16))
  none = dict(records[2], id="none", crops=records[2]["crops"][:5])
  out = evaluate(model, [short, clipped, none], clip_lengths=(5,))
  assert out["skipped"] == [{"id": "none", "reason": "too short: 5 frames, audio for 50 frames; "
                             "the protocol needs 6 for one window"}]
  assert [(v["id"], v["frames"], v["windows"]) for v in out["videos"]] == [("short", 34, 29), ("clipped", 36, 31)]
  # The short video's 29 windows were also scored against all-zero audio: one more audio window.
  assert out["encoder_windows"] == {"video": 60, "audio": 61}
  with pytest.raises(UserError, match="no usable video"):
    evaluate(model, [none], clip_lengths=(5,))
  with pytest.raises(UserError, match="no records"):
    evaluate(model, [], clip_lengths=(5,))


def test_cli_writes_results_table_and_plots(trained_run, model, tmp_path, capsys):
  from PIL import Image

  out = tmp_path / "eval"
  assert _eval("--checkpoint", trained_run, "--limit", "3", "--out", str(out), "--json") == 0
  printed = json.loads(capsys.readouterr().out)
  with open(out / "results.json") as f:
    written = json.load(f)
  assert printed["clip_lengths"] == written["clip_lengths"]
  assert sorted(written["clip_lengths"]) == ["11", "13", "15", "5", "7", "9"]
  assert len(written["videos"]) == 3 and written["model"]["step"] == model.step
  assert sum(written["window_offset_histogram"]) == written["clip_lengths"]["5"]["windows"]
  assert sum(written["video_offset_histogram"]) == 3 and len(written["offsets"]) == 31
  table = (out / "table.md").read_text()
  assert "| dataset | model | 5 | 7 | 9 | 11 | 13 | 15 | params |" in table
  assert "| LRS2 | ModEFormer (paper) | 94.5 |" in table and f"ModEFormer (ours, step {model.step})" in table
  assert Image.open(out / "accuracy_vs_clip_length.png").size == (600, 400)
  assert Image.open(out / "offset_histogram.png").size == (1000, 350)


def test_cli_default_output_folder_and_human_table(trained_run, model, capsys):
  assert _eval("--checkpoint", trained_run, "--limit", "1", "--clip-lengths", "5,15") == 0
  text = capsys.readouterr().out
  assert f"| synthetic | ModEFormer (ours, step {model.step}) |" in text and "1 videos" in text
  assert os.path.isfile(os.path.join(trained_run, "eval", f"test-{model.step}", "results.json"))


def test_cli_old_spellings_give_the_same_results_with_a_warning(trained_run, model, capsys):
  """--workdir PATH --checkpoint STEP --max-offset S (the spelling before sync's and export's was adopted)."""
  common = ["--limit", "1", "--clip-lengths", "5", "--json"]
  assert _eval("--checkpoint", trained_run, "--which", str(model.step), "--max-offset-frames", "9", *common) == 0
  new_out = json.loads(capsys.readouterr().out)
  assert _eval("--workdir", trained_run, "--checkpoint", str(model.step), "--max-offset", "9", *common) == 0
  captured = capsys.readouterr()
  old_out = json.loads(captured.out)
  assert old_out["clip_lengths"] == new_out["clip_lengths"] and old_out["model"] == new_out["model"]
  assert old_out["protocol"]["max_offset"] == 9
  warnings = [line for line in captured.err.splitlines() if "deprecated" in line]
  assert len(warnings) == 3 and all(w.startswith("modeformer eval: warning: ") for w in warnings), warnings


@pytest.mark.parametrize("argv,message", [
    (["--data", "/nonexistent/prep"], "/nonexistent/prep: no such data folder"),
    (["--which", "7"], "no checkpoint at step 7"),
    (["--which", "newest"], "--which newest: expected last, best or a step number"),
    (["--clip-lengths", "5,6"], "6 is not an odd number of frames"),
    (["--max-offset-frames", "0"], "must be >= 1"),
])
def test_cli_bad_input(trained_run, capsys, argv, message):
  assert _eval("--checkpoint", trained_run, *argv) == 2
  err = capsys.readouterr().err.strip()
  assert message in err and len(err.splitlines()) == 1, err


def test_cli_data_folder_without_dataset(trained_run, tmp_path, capsys):
  assert _eval("--checkpoint", trained_run, "--data", str(tmp_path), "--dataset", "lrs2") == 2
  assert "no prepared dataset here" in capsys.readouterr().err


def test_cli_checkpoint_that_does_not_match_its_config(trained_run, tmp_path, capsys):
  run = tmp_path / "run"
  shutil.copytree(os.path.join(trained_run, "checkpoints"), run / "checkpoints")
  with open(os.path.join(trained_run, "config.json")) as f:
    config = json.load(f)
  config["model"]["mlp_dim"] *= 2
  (run / "config.json").write_text(json.dumps(config))
  assert _eval("--checkpoint", str(run)) == 2
  assert "does not match the run's config.json" in capsys.readouterr().err
