"""The input pipeline over real prepared shards: synth -> prep -> grain batches -> trainer; exact resume."""

import numpy as np
import pytest

from modeformer_jax.config_loading import load_config
from modeformer_jax.data import prep, synth
from modeformer_jax.data.pipeline import train_batches
from modeformer_jax.data.records import open_split
from modeformer_jax.errors import UserError
from modeformer_jax.train import trainer

pytestmark = pytest.mark.integration

TINY_MODEL = ["--config.model.width=32", "--config.model.video_widths=(4,8,8,16,32)",
              "--config.model.audio_widths=(4,8,8,16,32)", "--config.model.depth=1", "--config.model.mlp_dim=64"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """A real LRS2-layout dataset (mp4 files) prepared into ArrayRecord shards."""
  root = tmp_path_factory.mktemp("pipeline")
  synth.write_dataset(root / "lrs2", "lrs2", speakers=5, clips_per_speaker=2, seconds=2.0, seed=3, workers=1,
                      progress=False)
  summary = prep.prepare("lrs2", str(root / "lrs2"), str(root / "prepared"), ["train"], workers=1, progress=False)
  assert summary["status"] == "written"
  return str(root / "prepared")


def _config(data_dir, *extra):
  return load_config("tiny", [*TINY_MODEL, f"--config.data.data_dir={data_dir}",
                                         "--config.stages.0.batch_size=4", *extra])


def _take(it, n):
  return [next(it) for _ in range(n)]


def _assert_batches_equal(a, b):
  for x, y in zip(a, b):
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])


def test_batches_are_deterministic_and_resume_exactly(prepared):
  config = _config(prepared)
  stage = config.stages[0]
  expected = _take(train_batches(config, stage, seed=7), 7)
  _assert_batches_equal(_take(train_batches(config, stage, seed=7), 7), expected)
  # A resumed stage starts its input at the number of batches already consumed.
  _assert_batches_equal(_take(train_batches(config, stage, seed=7, start=3), 4), expected[3:])
  other = next(train_batches(config, stage, seed=8))
  assert not np.array_equal(other["video"], expected[0]["video"])


def test_batch_shapes_and_window_reads(prepared):
  config = _config(prepared, "--config.data.windows_per_record=2")
  batch = next(train_batches(config, config.stages[0], seed=0))
  n = config.stages[0].num_negatives
  assert batch["video"].shape == (4, 5, 48, 96, 3) and batch["video"].dtype == np.uint8
  assert batch["audio"].shape == (4, 1 + n, 80, 16) and batch["audio_mask"].shape == (4, 1 + n)
  # Lazily decoded JPEG windows equal the same frames of a fully decoded record.
  lazy = open_split(prepared, "lrs2", "train", lazy_frames=True)[0]
  full = open_split(prepared, "lrs2", "train")[0]
  np.testing.assert_array_equal(lazy["crops"][3:8], full["crops"][3:8])


@pytest.mark.parametrize("windows", [1, 2])
def test_processes_take_disjoint_slices_of_the_same_global_batch(prepared, windows):
  """Whatever the number of processes, global batch g is the same: process p of P holds its rows p*B/P ..,
  read from its own records, and the slices of all processes make the one-process batch."""
  batch_size = 2 * windows  # one record per process: the fixture's train split has 2
  config = _config(prepared, f"--config.stages.0.batch_size={batch_size}",
                   f"--config.data.windows_per_record={windows}")
  source = open_split(prepared, "lrs2", "train", lazy_frames=True)
  whole = _take(train_batches(config, config.stages[0], seed=0, source=source, process_index=0, process_count=1), 4)
  parts = [_take(train_batches(config, config.stages[0], seed=0, source=source, process_index=p, process_count=2),
                 4) for p in range(2)]
  checked = False
  for g, batch in enumerate(whole):
    joined = {k: np.concatenate([part[g][k] for part in parts]) for k in batch}
    _assert_batches_equal([joined], [batch])
    if (g + 1) * batch_size // windows <= len(source):  # within the first epoch no record comes twice
      records = [set(part[g]["audio_ids"][:, 0, 0].tolist()) for part in parts]
      assert all(not a & b for i, a in enumerate(records) for b in records[i + 1:])
      checked = True
  assert checked
  with pytest.raises(UserError, match="multiple of"):
    train_batches(config, config.stages[0], seed=0, source=source, process_index=0, process_count=4)


def test_trainer_trains_from_prepared_shards(prepared, tmp_path):
  config = _config(prepared, "--config.stages.0.steps=3", "--config.checkpoint_every=100",
                   "--config.stages.0.batch_size=8")
  result = trainer.train(config, str(tmp_path), progress=False)
  assert result.step == 3 and all(np.isfinite(h["loss"]) for h in result.history)


def test_missing_shards_are_a_clear_error(tmp_path):
  config = _config(str(tmp_path / "nothing"))
  with pytest.raises(UserError, match="no prepared dataset"):
    train_batches(config, config.stages[0], seed=0)


def test_syncnet_batches_hold_whole_crops_and_mfccs_of_the_stored_audio(prepared):
  """SyncNet trains on the same shards: whole 96x96 crops and MFCC windows (columns 4f..4f+19) computed from
  each record's stored int16 audio, as python_speech_features computes them."""
  import python_speech_features

  config = load_config("syncnet:pm,tiny,base=tiny", [
      f"--config.data.data_dir={prepared}", "--config.stages.0.batch_size=4", "--config.data.augment.audio_gain=0.0",
      "--config.data.augment.audio_noise=0.0"])
  batch = next(train_batches(config, config.stages[0], seed=0))
  assert batch["video"].shape == (4, 5, 96, 96, 3)
  assert batch["audio"].shape == (4, 1 + config.stages[0].num_negatives, 13, 20)
  source = open_split(prepared, "lrs2", "train")
  mfccs = [python_speech_features.mfcc(source[i]["audio"], 16000) for i in range(len(source))]
  windows = [m[4 * f:4 * f + 20].T for m in mfccs for f in range((len(m) - 20) // 4 + 1)]
  for window in batch["audio"][:, 0]:
    assert min(np.abs(window - w).max() for w in windows) < 1e-4


def test_joined_splits(prepared):
  """stage.split "a+b" trains on both splits: records of a, then of b, through the same grain graph."""
  from modeformer_jax.data.pipeline import open_source
  config = load_config("tiny:synthetic", [*TINY_MODEL, "--config.data.synthetic_clips=2",
                                                      "--config.data.synthetic_seconds=1.0",
                                                      "--config.stages.0.split=train+val",
                                                      "--config.stages.0.batch_size=4"])
  joined = open_source(config, "train+val")
  parts = [open_source(config, s) for s in ("train", "val")]
  assert [r["id"] for r in (joined[i] for i in range(len(joined)))] == [r["id"] for p in parts for r in p]
  with pytest.raises(IndexError):
    joined[len(joined)]
  assert next(train_batches(config, config.stages[0], seed=0))["video"].shape == (4, 5, 48, 96, 3)
  shards = open_source(_config(prepared), "train+train")
  assert len(shards) == 2 * len(open_split(prepared, "lrs2", "train"))
