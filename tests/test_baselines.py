"""The baselines of Table 1: their objectives, VocaLiST's and AVST's size and pair scoring, AVST's
variable-length clips, and experiments/baselines.py end to end at tiny size on generated data (every system
trains a few steps and is evaluated by the protocol), with a row for imported SyncNet weights."""

import importlib
import json
import os
import shlex

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from modeformer_jax import config_defaults as cd, loss
from test_experiments import check_collected
from modeformer_jax.config_loading import load_config
from modeformer_jax.data.pipeline import open_source
from modeformer_jax.evaluation.evaluate import utterance_scores
from modeformer_jax.export import syncnet_weights
from modeformer_jax.inference import SyncModel
from modeformer_jax.models.summary import parameter_counts
from modeformer_jax.train.train_step import init_model

TINY_VOCALIST = "vocalist:tiny,base=tiny:synthetic"
TINY_AVST = "avst:tiny,base=tiny:synthetic"


@pytest.mark.unit
def test_vocalist_has_80_1m_parameters():
  total = sum(parameter_counts(cd.vocalist_model_config()).values())
  assert abs(total / 80.1e6 - 1) < 0.002, total


@pytest.mark.unit
def test_avst_has_42_4m_parameters():
  total = sum(parameter_counts(cd.avst_model_config()).values())
  assert abs(total / 42.4e6 - 1) < 0.02, total


@pytest.mark.unit
def test_avst_scores_a_padded_clip_as_the_clip_alone():
  """A 6-frame clip padded to 10 frames (its audio from 20 to 32 mel frames) with the mask: the same logits in
  eval mode, and in train mode the same logits and the same BatchNorm statistics as the unpadded batch."""
  config = load_config(TINY_AVST)
  rng = np.random.default_rng(0)
  video = rng.integers(0, 256, (2, 6, 48, 96, 3), dtype=np.uint8)
  audio = rng.normal(size=(2, 2, 80, 20)).astype(np.float32)  # ceil(3.2 x 6) mel frames
  padded_video = np.pad(video, ((0, 0), (0, 4), (0, 0), (0, 0), (0, 0)))
  padded_audio = np.pad(audio, ((0, 0), (0, 0), (0, 0), (0, 12)))
  mask = np.broadcast_to(np.arange(10) < 6, (2, 10))
  weights = init_model(config)
  run = nnx.jit(lambda m, v, a, mask, train: m(v, a, video_mask=mask, train=train, rngs=nnx.Rngs(dropout=0)),
                static_argnames="train")
  for train in (False, True):
    alone, padded = (weights.merge(weights.params, weights.batch_stats) for _ in range(2))
    want = run(alone, video, audio, None, train=train)
    got = run(padded, padded_video, padded_audio, mask, train=train)
    np.testing.assert_allclose(got, want, atol=2e-5)
    for a, b in zip(*(jax.tree.leaves(nnx.state(m, nnx.BatchStat)) for m in (alone, padded))):
      np.testing.assert_allclose(a, b, atol=1e-5)
  assert not np.allclose(want[:, 0], want[:, 1])


@pytest.mark.unit
def test_offset_cross_entropy_is_the_softmax_over_valid_candidates():
  logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
  mask = np.array([[True, True, False], [True, True, True]])
  value, metrics = loss.offset_cross_entropy(jnp.asarray(logits), jnp.asarray(mask))
  want = np.mean([np.log(np.exp(2.0) + np.exp(-1.0)) - 2.0, np.log(np.exp(logits[1]).sum()) - 0.0])
  np.testing.assert_allclose(float(value), want, rtol=1e-6)
  assert float(metrics["accuracy"]) == 0.5


@pytest.mark.unit
def test_contrastive_loss_is_the_margin_loss():
  rng = np.random.default_rng(0)
  video, audio = rng.normal(size=(4, 8)), rng.normal(size=(4, 3, 8))
  mask = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], bool)
  value, metrics = loss.contrastive_loss(jnp.asarray(video), jnp.asarray(audio), jnp.asarray(mask), 4.0)
  d = np.linalg.norm(video[:, None] - audio, axis=-1)
  neg = np.maximum(4.0 - d[:, 1:], 0) ** 2
  want = 0.5 * (np.mean(d[:, 0] ** 2) + neg[mask[:, 1:]].mean())
  np.testing.assert_allclose(float(value), want, rtol=1e-5)
  best = np.where(mask, -d, -np.inf).argmax(1) == 0
  assert float(metrics["accuracy"]) == pytest.approx(best.mean())


@pytest.mark.unit
def test_pair_bce_weighs_classes_equally():
  logits = jnp.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
  mask = jnp.array([[True, True, False], [True, True, True]])
  value, metrics = loss.pair_bce_loss(logits, mask)
  softplus = lambda x: np.log1p(np.exp(x))
  want = 0.5 * (np.mean([softplus(-2.0), softplus(0.0)]) + np.mean([softplus(-1.0), softplus(3.0), softplus(-2.0)]))
  np.testing.assert_allclose(float(value), want, rtol=1e-5)
  assert float(metrics["accuracy"]) == 0.5


@pytest.mark.integration
@pytest.mark.parametrize("spec", [TINY_VOCALIST, TINY_AVST])
def test_cross_modal_models_score_pairs_from_cached_front_ends_as_whole_passes(spec):
  """VocaLiST, AVST: default evaluation (front-end tokens once per window, transformers per pair) equals a whole
  forward pass per pair (naive mode)."""
  config = load_config(spec, ["--config.data.synthetic_clips=4", "--config.data.synthetic_seconds=1.0"])
  model = init_model(config)
  sync_model = SyncModel(config, model.params, model.batch_stats, batch_size=64)
  # A whole clip and an 8-frame cut: 3 < 2S windows, also scored against all-zero audio (protocol quirk 1).
  records = open_source(config, "test")
  records = [records[0], dict(records[1], crops=records[1]["crops"][:8])]
  fast = utterance_scores(sync_model, records, max_offset=3)[0]
  naive = utterance_scores(sync_model, records, max_offset=3, naive=True)[0]
  for a, b in zip(fast, naive):
    assert np.isnan(a.scores).sum() == np.isnan(b.scores).sum() > 0
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
  assert fast[0].padded is None and fast[1].padded.shape == (3,)
  np.testing.assert_allclose(fast[1].padded, naive[1].padded, atol=1e-5)


@pytest.fixture
def script(monkeypatch):
  monkeypatch.syspath_prepend(os.path.abspath("experiments"))
  return lambda name: importlib.import_module(name)


def _published_syncnet(folder) -> str:
  """syncnet_python's network at full size with random weights, written as `import-syncnet` writes it."""
  syncnet = load_config("syncnet:contrastive,base=tiny:synthetic")
  syncnet.preprocess.crop_size = 224
  weights = init_model(syncnet)
  syncnet_weights.write_folder(str(folder), syncnet, weights.params, weights.batch_stats, "random")
  return str(folder)


def _sweep(script, out, *extra):
  argv = ["--out", str(out), "--config", "tiny:synthetic", "--tiny", "--steps", "2", "--limit", "2",
          "--clip-lengths", "5,15", "--no-progress", "--config.data.synthetic_clips=8",
          "--config.data.synthetic_seconds=1.6", *extra]
  assert script("baselines").main(argv) == 0
  with open(out / "baselines.json") as f:
    rows = json.load(f)
  ours = [r for r in rows if "(paper)" not in r["model"]]
  table = (out / "baselines.md").read_text()
  assert "| dataset | model | objective | 5 | 7 | 9 | 11 | 13 | 15 | params |" in table
  assert "VocaLiST (paper)" in table and "| LRS2 | AVST (variable length) (paper) |  | 91.9 |" in table
  return [r["model"].split(" (ours")[0] for r in ours], ours


@pytest.mark.e2e
def test_baselines_train_evaluate_and_fill_table_1(script, tmp_path):
  """A baseline of each kind (a two-stream CNN, a cross-modal transformer) trains a few steps and is evaluated by
  the protocol; the published-weights row comes from an import-syncnet folder. Every system: the slow test below."""
  names, rows = _sweep(script, tmp_path, "--systems", "syncnet,avst", "--published-syncnet",
                       _published_syncnet(tmp_path / "published"))
  assert names == ["SyncNet", "AVST", "SyncNet (published weights)"]
  check_collected(rows, tmp_path, {
      "syncnet": {"model.name": "syncnet", "model.objective": "contrastive", "data.source": "synthetic"},
      "avst": {"model.name": "avst"}}, steps=2)
  published = json.loads((tmp_path / "runs" / "syncnet-published" / "eval" / "test" / "results.json").read_text())
  assert rows[-1]["accuracy"] == {k: pytest.approx(100 * v["accuracy"]) for k, v in published["clip_lengths"].items()}
  assert rows[-1]["params"] == "13.6M" and published["model"]["name"] == "syncnet"


@pytest.mark.slow  # six trainings (~5 min on 2 cores)
@pytest.mark.e2e
def test_every_system_of_the_table(script, tmp_path):
  names, rows = _sweep(script, tmp_path)
  assert names == ["ModEFormer", "SyncNet", "SyncNet (InfoNCE)", "PM", "AVST", "VocaLiST"]
  check_collected(rows[2:], tmp_path, {
      "syncnet-infonce": {"model.name": "syncnet", "model.objective": "infonce"},
      "pm": {"model.name": "syncnet", "model.objective": "multiway"},
      "avst": {"model.name": "avst"},
      "vocalist": {"model.name": "vocalist", "model.width": 32}}, steps=2)


@pytest.mark.e2e
def test_baselines_print_commands(script, capsys):
  assert script("baselines").main(["--out", "sweeps/bl", "--print-commands",
                                   "--config.data.data_dir=/data/prep"]) == 0
  lines = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
  configs = [line[line.index("--config") + 1] for line in lines if line[1] == "train"]
  assert configs == ["modeformer_lrs2",
                     "syncnet:contrastive,base=modeformer_lrs2",
                     "syncnet:infonce,base=modeformer_lrs2",
                     "syncnet:pm,base=modeformer_lrs2",
                     "avst:base=modeformer_lrs2",
                     "vocalist:base=modeformer_lrs2"]
  assert all("--config.data.data_dir=/data/prep" in line for line in lines if line[1] == "train")
