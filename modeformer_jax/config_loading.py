"""Configs (a shipped name such as `modeformer_lrs2` or `tiny:synthetic`, or a file `PATH.py[:ARG]`, each with
get_config(ARG)) plus `--config.a.b=value` overrides, validated.

Overrides follow ml_collections' config_flags: the value is parsed as a Python literal when it is one, and
must keep the type of the field it replaces (an int may become a float); list items are addressed by index
(`--config.stages.0.steps=10`). An unknown field or a bad value is a UserError naming the field.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from typing import Any, Sequence

import ml_collections

from modeformer_jax import configs
from modeformer_jax.errors import UserError

_SHIPPED = os.path.dirname(os.path.abspath(configs.__file__))


def shipped_configs() -> list[str]:
  """Names of the configs shipped in the package (modeformer_jax/configs, the repository's configs/)."""
  return sorted(name[:-3] for name in os.listdir(_SHIPPED) if name.endswith(".py") and not name.startswith("_"))


def config_file(name_or_path: str) -> str:
  """The file a spec's NAME-or-PATH part names: a path when it has a '/' or ends in '.py', else a shipped config."""
  if "/" in name_or_path or os.sep in name_or_path or name_or_path.endswith(".py"):
    if not os.path.isfile(name_or_path):
      raise UserError(f"{name_or_path}: config file not found")
    return name_or_path
  path = os.path.join(_SHIPPED, name_or_path + ".py")
  if not name_or_path.isidentifier() or not os.path.isfile(path):
    raise UserError(f"{name_or_path}: no such config; give a shipped one ({', '.join(shipped_configs())}) or "
                    "a file (PATH.py)")
  return path


def load_config(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """spec: NAME[:ARG] (a shipped config, e.g. 'tiny:synthetic') or PATH.py[:ARG]; overrides: ['--config.x=1',
  '--config.y', '2']."""
  name_or_path, _, arg = spec.partition(":")
  path = config_file(name_or_path)
  module_spec = importlib.util.spec_from_file_location(f"_modeformer_config_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # A config file is user code: report where it broke, not a traceback.
    raise UserError(f"{path}: cannot load config: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise UserError(f"{path}: config file has no get_config()")
  try:
    config = module.get_config(arg or None)
  except ValueError as e:  # get_config's own check of ARG
    raise UserError(f"{spec}: {e}") from e
  apply_overrides(config, overrides)
  validate(config)
  return config


def split_base(arg: str | None, default_base: str) -> tuple[ml_collections.ConfigDict, set[str]]:
  """For configs built on another one (the baselines in configs/): ARG = comma-separated flags, one of which
  may be base=CONFIG[:ARG] (a shipped name or a file; default `default_base`), the config whose data, stages
  and schedule they keep.
  Returns (the loaded base config, the other flags)."""
  flags = set((arg or "").split(",")) - {""}
  bases = [f for f in flags if f.startswith("base=")]
  if len(bases) > 1:
    raise ValueError(f"several base= in {arg!r}")
  return load_config(bases[0][len("base="):] if bases else default_base), flags - set(bases)


def _parse_overrides(overrides: Sequence[str]) -> list[tuple[str, str]]:
  pairs, items = [], list(overrides)
  while items:
    item = items.pop(0)
    if not item.startswith("--config."):
      raise UserError(f"unrecognized argument {item!r} (config overrides look like --config.field=value)")
    name, eq, value = item[len("--config."):].partition("=")
    if not eq:
      if not items:
        raise UserError(f"--config.{name}: missing value")
      value = items.pop(0)
    pairs.append((name, value))
  return pairs


def _literal(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _coerce(name: str, old: Any, value: Any) -> Any:
  if old is None or isinstance(value, type(old)):
    return value
  if isinstance(old, bool) or isinstance(value, bool):
    raise UserError(f"config.{name}: expected a bool, got {value!r}")
  if isinstance(old, float) and isinstance(value, int):
    return float(value)
  if isinstance(old, (tuple, list)) and isinstance(value, (tuple, list)):
    return type(old)(value)
  if isinstance(old, (tuple, list)) and isinstance(value, (int, float)):
    return type(old)([value])
  raise UserError(f"config.{name}: expected {type(old).__name__}, got {value!r}")


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> None:
  for name, text in _parse_overrides(overrides):
    *parents, leaf = name.split(".")
    node = config
    for i, part in enumerate(parents):
      node = _child(node, part, ".".join(parents[:i + 1]))
    old = _child(node, leaf, name)
    if isinstance(old, (ml_collections.ConfigDict, list)) and not isinstance(old, tuple):
      raise UserError(f"config.{name}: is a group of fields; set one of its fields instead")
    new = _coerce(name, old, _literal(text))
    if isinstance(node, list):
      node[int(leaf)] = new
    else:
      with node.ignore_type():
        node[leaf] = new


def _child(node: Any, part: str, name: str) -> Any:
  if isinstance(node, list):
    if not part.isdigit() or int(part) >= len(node):
      raise UserError(f"config.{name}: no such item (the list has {len(node)})")
    return node[int(part)]
  if not isinstance(node, ml_collections.ConfigDict) or part not in node:
    raise UserError(f"config.{name}: unknown config field")
  return node[part]


def _require(ok: bool, field: str, message: str) -> None:
  if not ok:
    raise UserError(f"config.{field}: {message}")


def hard_negative_candidates(stage: ml_collections.ConfigDict) -> int:
  """Offsets d with min_offset <= |d| <= max_offset: where a clip's N hard negatives are drawn from."""
  return 2 * max(0, stage.max_offset - stage.min_offset + 1)


def _validate_front_ends(m: ml_collections.ConfigDict) -> None:
  """ModEFormer's and VocaLiST's CNN tables and transformer width."""
  _require(len(m.video_widths) == 5, "model.video_widths", f"needs 5 stage widths, got {m.video_widths}")
  _require(len(m.audio_widths) == 5, "model.audio_widths", f"needs 5 stage widths, got {m.audio_widths}")
  _require(m.video_widths[-1] == m.width, "model.video_widths", "last width must equal model.width")
  _require(m.audio_widths[-1] == m.width, "model.audio_widths", "last width must equal model.width")
  _require(m.width % m.num_heads == 0, "model.num_heads", f"must divide model.width={m.width}")


def _validate_modeformer(m: ml_collections.ConfigDict) -> None:
  _require(m.temporal in ("transformer", "pool"), "model.temporal", "must be 'transformer' or 'pool'")
  _require(m.pos_encoding in ("sinusoidal", "learned"), "model.pos_encoding", "'sinusoidal' or 'learned'")
  _require_temperature(m)


def _validate_avst(config: ml_collections.ConfigDict) -> None:
  m, pp = config.model, config.preprocess
  _require(m.video_stem_frames >= 1 and m.video_stem_frames % 2, "model.video_stem_frames", "must be odd and >= 1")
  _require(m.pos_encoding in ("sinusoidal", "learned"), "model.pos_encoding", "'sinusoidal' or 'learned'")
  _require((m.mel_frames_per_second, m.fps) == (pp.mel_frames_per_second, int(pp.fps)), "model.fps",
           f"model.mel_frames_per_second / model.fps must equal config.preprocess's ({pp.mel_frames_per_second} / "
           f"{pp.fps})")
  longest = max(config.data.clip_frames or [pp.video_window_frames])
  _require(m.pos_encoding != "learned" or longest <= m.max_frames, "model.max_frames",
           f"learned positions for {m.max_frames} frames, but clips have up to {longest}")


def _objective(m: ml_collections.ConfigDict) -> str:
  """The training objective of config.model (loss.OBJECTIVES): the config's for SyncNet, else the model's."""
  from modeformer_jax.models import MODELS
  return m.get("objective") or MODELS[m.name].objective


def _validate_clip_frames(config: ml_collections.ConfigDict) -> None:
  frames = tuple(config.data.get("clip_frames", ()))
  if not frames:
    return
  from modeformer_jax.models import MODELS
  shortest = config.preprocess.video_window_frames
  _require(getattr(MODELS[config.model.name], "variable_length", False), "data.clip_frames",
           f"model {config.model.name} takes {shortest}-frame windows only: leave it ()")
  _require(len(frames) == 2 and shortest <= frames[0] <= frames[1], "data.clip_frames",
           f"expected (min, max) frames with {shortest} <= min <= max, got {frames}")


def _validate_syncnet(m: ml_collections.ConfigDict) -> None:
  from modeformer_jax.models.syncnet import SYNCNET_OBJECTIVES
  _require(len(m.lip_widths) == 6, "model.lip_widths", f"needs 6 conv widths, got {m.lip_widths}")
  _require(len(m.audio_widths) == 6, "model.audio_widths", f"needs 6 conv widths, got {m.audio_widths}")
  _require(m.embedding in ("raw", "unit"), "model.embedding", "must be 'raw' or 'unit'")
  _require(m.objective in SYNCNET_OBJECTIVES, "model.objective", f"must be one of {SYNCNET_OBJECTIVES}")
  _require(m.objective != "contrastive" or m.embedding == "raw", "model.embedding",
           "the contrastive objective compares raw embeddings by Euclidean distance: use 'raw'")
  _require(m.objective == "contrastive" or m.embedding == "unit", "model.embedding",
           f"the {m.objective} objective scores cosine similarity: use 'unit'")
  _require(m.margin > 0, "model.margin", "must be positive")
  _require_temperature(m)


def _require_temperature(m: ml_collections.ConfigDict) -> None:
  lo, hi = m.temperature_range
  _require(0 < lo <= m.init_temperature <= hi, "model.init_temperature", f"must lie in [{lo}, {hi}]")


def validate(config: ml_collections.ConfigDict) -> None:
  """Fail fast, naming the field, on values that would otherwise fail (or silently mislead) hours later."""
  from modeformer_jax.loss import NEGATIVES  # jax and flax load when a config is checked, not when this imports
  from modeformer_jax.models import MODELS

  m = config.model
  _require(m.name in MODELS, "model.name", f"must be one of {tuple(MODELS)}")
  if m.name == "syncnet":
    _validate_syncnet(m)
  else:
    _validate_front_ends(m)
  if m.name == "modeformer":
    _validate_modeformer(m)
  if m.name == "avst":
    _validate_avst(config)
  _validate_clip_frames(config)
  _require(m.dtype in ("float32", "bfloat16", "float16"), "model.dtype", f"unsupported dtype {m.dtype!r}")
  _require(m.conv3d_impl in ("taps2d", "xla"), "model.conv3d_impl", "must be 'taps2d' or 'xla'")
  _require(config.data.source in ("shards", "synthetic"), "data.source", "must be 'shards' or 'synthetic'")
  _require(config.data.num_workers >= 0, "data.num_workers", "must be >= 0")
  _require(config.data.windows_per_record >= 1, "data.windows_per_record", "must be >= 1")
  _require(len(config.stages) > 0, "stages", "needs at least one stage")
  for i, s in enumerate(config.stages):
    f = f"stages.{i}"
    _require(s.batch_size > 0, f + ".batch_size", f"must be positive, got {s.batch_size}")
    _require(s.batch_size % config.data.windows_per_record == 0, f + ".batch_size",
             "must be a multiple of data.windows_per_record")
    _require(s.steps > 0, f + ".steps", f"must be positive, got {s.steps}")
    _require(s.lr > 0, f + ".lr", f"must be positive, got {s.lr}")
    _require(0 <= s.warmup_steps, f + ".warmup_steps", "must be >= 0")
    _require(s.negatives in NEGATIVES, f + ".negatives", f"must be one of {NEGATIVES}")
    _require(s.num_negatives >= 0, f + ".num_negatives", "must be >= 0")
    _require(1 <= s.min_offset <= s.max_offset, f + ".min_offset", "needs 1 <= min_offset <= max_offset")
    available = hard_negative_candidates(s)
    _require(s.num_negatives <= available, f + ".num_negatives",
             f"{s.num_negatives} is more than the {available} candidate offsets "
             f"({s.min_offset} <= |offset| <= {s.max_offset})")
    _require(s.negatives == "in_batch" or s.num_negatives > 0 or s.negatives == "both",
             f + ".num_negatives", "negatives='hard' needs at least one hard negative")
    if s.get("symmetric", False):
      _require(_objective(m) == "infonce", f + ".symmetric",
               f"the {_objective(m)} objective has no audio -> video direction (InfoNCE only)")
  _require(config.loss_chunk_size >= 0, "loss_chunk_size", "must be >= 0")
