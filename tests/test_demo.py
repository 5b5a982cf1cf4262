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
  from modeformer_jax.export.load import load_exported
  from modeformer_jax.train.checkpoints import restore_weights
  _, params, _ = load_exported(str(w / "export"))
  _, _, run_params, _ = restore_weights(str(w / "run"))
  import jax
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(run_params)):
    np.testing.assert_array_equal(a, b)
  assert os.path.isdir(w / "run" / "tensorboard") and os.listdir(w / "run" / "tensorboard")
  # A rerun reuses the finished steps (synth, prep, train) and still succeeds.
  assert cli.main(["demo", "--workdir", str(w), "--speakers", "6", "--clips-per-speaker", "2", "--seconds", "3",
                   "--steps", "8", "--batch-size", "8"]) == 0
