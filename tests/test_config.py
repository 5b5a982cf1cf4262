"""Config files and --config.* overrides: bad values fail fast with a message naming the field."""

import pytest

from modeformer_jax.config_loading import load_config
from modeformer_jax.errors import UserError


@pytest.mark.parametrize("name", ["configs/modeformer_lrs2.py", "configs/modeformer_lrs3.py", "configs/tiny.py",
                                  "configs/tiny.py:synthetic"])
def test_shipped_configs_load(name):
  config = load_config(name)
  assert config.stages and config.model.name == "modeformer"


def test_lrs_configs_have_two_stages():
  for name in ["configs/modeformer_lrs2.py", "configs/modeformer_lrs3.py"]:
    stages = load_config(name).stages
    assert [s.split for s in stages] == ["pretrain", "train"]


def test_overrides_are_typed_and_reach_list_items():
  config = load_config("configs/tiny.py", ["--config.stages.0.steps=7", "--config.stages.0.lr", "1",
                                           "--config.model.dtype=bfloat16", "--config.data.source=synthetic"])
  assert config.stages[0].steps == 7
  assert config.stages[0].lr == 1.0 and isinstance(config.stages[0].lr, float)
  assert config.model.dtype == "bfloat16"


@pytest.mark.parametrize("override,field", [
    ("--config.model.not_a_field=1", "config.model.not_a_field"),
    ("--config.stages.0.batch_size=-8", "config.stages.0.batch_size"),
    ("--config.stages.0.num_negatives=40", "config.stages.0.num_negatives"),
    ("--config.stages.3.steps=1", "config.stages.3"),
    ("--config.stages.0.steps=many", "config.stages.0.steps"),
    ("--config.stages.0.negatives=all", "config.stages.0.negatives"),
    ("--config.model.num_heads=5", "config.model.num_heads"),
])
def test_bad_values_name_the_field(override, field):
  with pytest.raises(UserError, match=field.replace(".", r"\.")):
    load_config("configs/tiny.py", [override])


@pytest.mark.parametrize("config,override,message", [
    ("configs/tiny.py", "--config.data.clip_frames=(5,15)", "model modeformer takes 5-frame windows only"),
    ("configs/avst.py", "--config.data.clip_frames=(3,15)", "5 <= min <= max"),
    ("configs/avst.py", "--config.model.video_stem_frames=4", "must be odd"),
    ("configs/avst.py", "--config.model.fps=30", "must equal config.preprocess's"),
])
def test_variable_length_clips_are_checked(config, override, message):
  with pytest.raises(UserError, match=message):
    load_config(config, [override])


def test_missing_config_file_is_a_clear_error(tmp_path):
  with pytest.raises(UserError, match="config file not found"):
    load_config(str(tmp_path / "nope.py"))
