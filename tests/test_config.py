"""Config files and --config.* overrides: bad values fail fast with a message naming the field."""

import pytest

from modeformer_jax import cli
from modeformer_jax.config_loading import load_config, shipped_configs
from modeformer_jax.errors import UserError
from modeformer_jax.models import MODELS

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", shipped_configs())
def test_every_shipped_config_loads_by_name_and_by_path(name):
  config = load_config(name)
  assert config.stages and config.model.name in MODELS
  # The name is the file in configs/: both spellings give the same config.
  assert config.to_dict() == load_config(f"configs/{name}.py").to_dict()


@pytest.mark.parametrize("spec,model,fields", [
    ("tiny", "modeformer", {"data.source": "shards", "model.width": 64}),
    ("tiny:synthetic", "modeformer", {"data.source": "synthetic"}),
    ("modeformer_lrs2", "modeformer", {"data.dataset": "lrs2", "model.width": 512}),
    ("modeformer_lrs3", "modeformer", {"data.dataset": "lrs3"}),
    ("syncnet", "syncnet", {"model.objective": "contrastive", "model.embedding": "raw", "data.dataset": "lrs2"}),
    ("syncnet:infonce", "syncnet", {"model.objective": "infonce", "model.embedding": "unit"}),
    ("syncnet:pm", "syncnet", {"model.objective": "multiway", "model.embedding": "unit"}),
    ("syncnet:pm,tiny,base=tiny:synthetic", "syncnet", {"model.width": 32, "data.source": "synthetic"}),
    ("vocalist", "vocalist", {"model.width": 512, "data.dataset": "lrs2"}),
    ("vocalist:tiny,base=configs/tiny.py", "vocalist", {"model.width": 32, "data.source": "shards"}),
])
def test_config_arguments_pick_what_their_docstrings_say(spec, model, fields):
  config = load_config(spec)
  assert config.model.name == model
  for field, value in fields.items():
    group, name = field.split(".")
    assert config[group][name] == value, field


def test_lrs_configs_have_two_stages():
  for name in ["modeformer_lrs2", "modeformer_lrs3"]:
    stages = load_config(name).stages
    assert [s.split for s in stages] == ["pretrain", "train"]


def test_overrides_are_typed_and_reach_list_items():
  config = load_config("tiny", ["--config.stages.0.steps=7", "--config.stages.0.lr", "1",
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
    load_config("tiny", [override])


@pytest.mark.parametrize("config,override,message", [
    ("tiny", "--config.data.clip_frames=(5,15)", "model modeformer takes 5-frame windows only"),
    ("avst", "--config.data.clip_frames=(3,15)", "5 <= min <= max"),
    ("avst", "--config.model.video_stem_frames=4", "must be odd"),
    ("avst", "--config.model.fps=30", "must equal config.preprocess's"),
    ("vocalist", "--config.stages.0.symmetric=True", "bce objective has no audio -> video direction"),
])
def test_model_specific_fields_are_checked(config, override, message):
  with pytest.raises(UserError, match=message):
    load_config(config, [override])


def test_missing_config_file_is_a_clear_error(tmp_path):
  with pytest.raises(UserError, match="config file not found"):
    load_config(str(tmp_path / "nope.py"))


def test_unknown_config_name_lists_the_shipped_ones():
  with pytest.raises(UserError, match="no such config.*modeformer_lrs2.*tiny"):
    load_config("tinny:synthetic")


def test_bad_config_argument_is_a_user_error():
  with pytest.raises(UserError, match="syncnet:bogus"):
    load_config("syncnet:bogus")


def test_shipped_names_work_from_any_folder(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  assert cli.main(["params", "--config", "modeformer_lrs2", "--json"]) == 0
  assert '"total": 58837057' in capsys.readouterr().out
