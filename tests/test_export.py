"""Export to PyTorch and ONNX: parity with JAX (trained model and every config option), the offsets evaluation
would pick, bitwise round trip, corrupt or mismatched files, and the PyTorch module without JAX."""

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import save_file

from modeformer_jax import cli, config_defaults as cd
from modeformer_jax.export import parity
from modeformer_jax.export.write import export
from modeformer_jax.data import synth
from modeformer_jax.errors import UserError
from modeformer_jax.inference import SyncModel, audio_windows, load_sync_model, offset_similarities, video_windows
from modeformer_jax.media.logmel import log_mel
from modeformer_jax.models import build_model
from modeformer_jax.weights import restore_weights, state_dict
from modeformer_jax.weights.export_folder import load_exported, read_weights

torch = pytest.importorskip("torch")
from modeformer_jax.export.torch_model import ModEFormer  # noqa: E402  (imports torch)

pytestmark = pytest.mark.integration

HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None
TOL = 1e-5  # max abs embedding difference, float32
MAX_OFFSET = 15
TINY = dict(width=32, video_widths=(4, 8, 8, 16, 32), audio_widths=(4, 8, 8, 16, 32), depth=2, num_heads=4,
            mlp_dim=64)
# With the trained model's default (pre-LN, ReLU, sinusoidal, no projection, transformer), every option.
VARIANTS = {"post_ln_gelu_learned_projection": dict(norm_first=False, activation="gelu", pos_encoding="learned",
                                                   projection_dim=16),
            "pool_projection": dict(temporal="pool", projection_dim=16),
            "centered_inputs": dict(center_inputs=True)}


def _export_cli(*argv) -> int:
  with pytest.MonkeyPatch.context() as mp:
    mp.setitem(cli.COMMANDS, "export", "export")  # until cli.py registers the command
    return cli.main(["export", *argv])


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory) -> str:
  out = str(tmp_path_factory.mktemp("export") / "tiny")
  assert _export_cli("--checkpoint", trained_run, "--out", out, "--format", "torch,onnx" if HAVE_ORT else "torch") == 0
  return out


@pytest.fixture(scope="module")
def windows(trained_run) -> dict:
  """Every window of one synthetic utterance, then random clips and mels; JAX embeddings of the trained run."""
  model = load_sync_model(trained_run, batch_size=16)
  pp = model.config.preprocess
  clip = synth.render_clip(7, synth.speaker_style(3, 0), 2.0, size=pp.crop_size, fps=pp.fps,
                           sample_rate=pp.sample_rate)
  mel = log_mel(clip.audio, pp)
  count = model.spec.num_windows(len(clip.frames), len(mel), len(clip.audio))
  rng = np.random.default_rng(0)
  video = np.concatenate([video_windows(clip.frames, count, model.spec),
                          rng.integers(0, 256, (3, 5, 48, 96, 3), dtype=np.uint8)])
  audio = np.concatenate([audio_windows(mel, count, model.spec),
                          rng.uniform(-4, 4, (3, 80, 16)).astype(np.float32)])
  return {"video": video, "audio": audio, "count": count, "logit_scale": model.logit_scale(), "step": model.step,
          "jax": (model.embed_video(video), model.embed_audio(audio))}


def _check_parity(got: tuple[np.ndarray, np.ndarray], windows: dict) -> None:
  """Embeddings within TOL, sync scores within TOL, and the same best offset for every utterance window."""
  (v, a), (jv, ja) = got, windows["jax"]
  assert np.abs(v - jv).max() < TOL and np.abs(a - ja).max() < TOL
  assert np.abs(np.sum(v * a, -1) - np.sum(jv * ja, -1)).max() < TOL
  n = windows["count"]
  best = lambda v, a: np.nan_to_num(offset_similarities(v[:n], a[:n], MAX_OFFSET), nan=-np.inf).argmax(-1)
  np.testing.assert_array_equal(best(v, a), best(jv, ja))


def test_trained_model_torch_parity(exported, trained_run, windows):
  model = ModEFormer.from_pretrained(exported)
  with torch.no_grad():
    v = model.embed_video(torch.from_numpy(windows["video"])).numpy()
    a = model.embed_audio(torch.from_numpy(windows["audio"])).numpy()
    np.testing.assert_allclose(model.logit_scale().item(), windows["logit_scale"], rtol=1e-6)
    np.testing.assert_allclose(model.sync_score(torch.from_numpy(v), torch.from_numpy(a)).numpy(),
                               np.sum(v * a, -1), atol=1e-6)
  _check_parity((v, a), windows)
  with open(os.path.join(exported, "config.json")) as f:
    meta = json.load(f)
  assert meta["preprocess"]["mouth_row_start"] == 48
  assert meta["source"] == {"checkpoint": trained_run, "step": windows["step"]}
  assert max(meta["parity"].values()) < TOL


def test_trained_model_onnx_parity(exported, windows):
  ort = pytest.importorskip("onnxruntime")
  # The windows batch is not the export's example batch of 2: the batch dimension is dynamic.
  got = tuple(ort.InferenceSession(os.path.join(exported, f"{k}_encoder.onnx"), providers=["CPUExecutionProvider"])
              .run(None, {k: windows[k]})[0] for k in ("video", "audio"))
  _check_parity(got, windows)


def test_round_trip_is_bitwise_and_inference_loads_it(exported, trained_run, windows):
  config, _, params, batch_stats = restore_weights(trained_run)
  config2, params2, batch_stats2 = load_exported(exported)
  assert config2.model.to_dict() == config.model.to_dict()
  assert config2.preprocess.to_dict() == config.preprocess.to_dict()
  trees, trees2 = (params, batch_stats), (params2, batch_stats2)
  assert jax.tree.structure(trees) == jax.tree.structure(trees2)
  for x, y in zip(jax.tree.leaves(trees), jax.tree.leaves(trees2)):
    assert x.dtype == y.dtype and np.array_equal(x, y)
  model = load_sync_model(exported, batch_size=16)
  np.testing.assert_array_equal(model.embed_audio(windows["audio"]), windows["jax"][1])


def _random_weights(model_cfg, seed: int = 1) -> tuple[dict, dict]:
  """Weights drawn in numpy (JAX's init compiles for tens of seconds on loaded CPUs), with BatchNorm statistics
  and norm offsets far from their initial values, so that a swapped or dropped tensor shows in the outputs."""
  abstract = nnx.eval_shape(lambda: build_model(model_cfg))
  rng = np.random.default_rng(seed)

  def draw(path, x):
    if len(x.shape) >= 2:  # kernels and tables: unit-variance activations
      return rng.normal(0, np.prod(x.shape[:-1]) ** -0.5, x.shape).astype(x.dtype)
    positive = path[-1].key in ("scale", "var")
    return (positive + rng.uniform(-0.3, 0.3, x.shape)).astype(x.dtype)

  return tuple(jax.tree_util.tree_map_with_path(draw, nnx.to_pure_dict(nnx.state(abstract, kind)))
               for kind in (nnx.Param, nnx.BatchStat))


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_config_option_maps(variant, tmp_path):
  config = cd.base_config()
  config.model = cd.model_config(**TINY, **VARIANTS[variant])
  params, batch_stats = _random_weights(config.model)
  out = str(tmp_path / variant)
  export(config, params, batch_stats, out, onnx=HAVE_ORT, verify=False)

  jax_model = SyncModel(config, params, batch_stats, batch_size=8)
  rng = np.random.default_rng(2)
  video = rng.integers(0, 256, (5, 5, 48, 96, 3), dtype=np.uint8)
  audio = rng.uniform(-4, 4, (5, 80, 16)).astype(np.float32)
  reference = {"video": jax_model.embed_video(video), "audio": jax_model.embed_audio(audio)}
  torch_model = ModEFormer.from_pretrained(out)
  with torch.no_grad():
    got = {"video": torch_model.embed_video(torch.from_numpy(video)).numpy(),
           "audio": torch_model.embed_audio(torch.from_numpy(audio)).numpy()}
  if HAVE_ORT:
    import onnxruntime as ort
    for k, x in (("video", video), ("audio", audio)):
      session = ort.InferenceSession(os.path.join(out, f"{k}_encoder.onnx"), providers=["CPUExecutionProvider"])
      got[f"onnx_{k}"] = session.run(None, {k: x})[0]
  for k, x in got.items():
    assert np.abs(x - reference[k.removeprefix("onnx_")]).max() < TOL, k
  assert reference["video"].shape == (5, config.model.projection_dim or config.model.width)

  _, params2, batch_stats2 = load_exported(out)
  for x, y in zip(jax.tree.leaves((params, batch_stats)), jax.tree.leaves((params2, batch_stats2))):
    assert np.array_equal(x, y)


def _rewrite_weights(folder: str, edit, metadata: bool = True) -> None:
  path = os.path.join(folder, "model.safetensors")
  tensors, meta = read_weights(path)
  edit(tensors)
  save_file(tensors, path, metadata=meta if metadata else None)


def _edit_config(folder: str, **model_fields) -> None:
  path = os.path.join(folder, "config.json")
  with open(path) as f:
    meta = json.load(f)
  meta["model"].update(model_fields)
  with open(path, "w") as f:
    json.dump(meta, f)


def _truncate(folder: str) -> None:
  path = os.path.join(folder, "model.safetensors")
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])


CORRUPTIONS = {
    "truncated": (_truncate, r"model.safetensors: not a readable safetensors file"),
    "wrong_shape": (lambda d: _rewrite_weights(d, lambda t: t.update(
        {"video.cnn.blocks.0.conv.weight": np.zeros((8, 3, 7, 7), np.float32)})),
                    r"model.safetensors: does not match.*video.cnn.blocks.0.conv.weight: shape \(8, 3, 7, 7\)"),
    "missing_key": (lambda d: _rewrite_weights(d, lambda t: t.pop("audio.temporal.final_ln.bias")),
                    r"model.safetensors: does not match.*missing audio.temporal.final_ln.bias"),
    "extra_key": (lambda d: _rewrite_weights(d, lambda t: t.update(extra=np.zeros(2, np.float32))),
                  r"model.safetensors: does not match.*unexpected extra"),
    "wrong_dtype": (lambda d: _rewrite_weights(d, lambda t: t.update(
        log_temperature=t["log_temperature"].astype(np.float16))), r"log_temperature: shape \(\) float16"),
    "config_not_weights": (lambda d: _edit_config(d, norm_first=False),
                           r"model.safetensors: written for a different model than .*config.json.*norm_first"),
    "config_shapes_without_metadata": (
        lambda d: (_rewrite_weights(d, lambda t: None, metadata=False), _edit_config(d, mlp_dim=256)),
        r"does not match the model in .*config.json: .*linear1.weight: shape \(128, 64\)"),
    "config_not_a_model": (lambda d: _edit_config(d, width=48), r"config.json: model section does not describe"),
    "config_not_json": (lambda d: pathlib.Path(d, "config.json").write_text("{"), r"config.json: cannot read"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupt_or_mismatched_export_is_a_user_error(exported, tmp_path, corruption):
  folder = str(tmp_path / "copy")
  os.makedirs(folder)
  for name in ("config.json", "model.safetensors"):
    shutil.copy(os.path.join(exported, name), folder)
  corrupt, message = CORRUPTIONS[corruption]
  corrupt(folder)
  with pytest.raises(UserError, match=message):
    load_exported(folder)


def test_unmapped_parameters_are_errors():
  model = nnx.eval_shape(lambda: build_model(cd.model_config(**TINY)))
  zeros = lambda kind: jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), nnx.to_pure_dict(nnx.state(model, kind)))
  params, batch_stats = zeros(nnx.Param), zeros(nnx.BatchStat)
  with pytest.raises(ValueError, match="no PyTorch name for the JAX parameter video/mystery/kernel"):
    state_dict.to_torch({**params, "video": {**params["video"], "mystery": {"kernel": np.zeros(3)}}}, batch_stats)
  del params["audio"]["temporal"]["layers"][0]["attn"]["value"]
  with pytest.raises(ValueError, match=r"self_attn.in_proj_(weight|bias): attention has only 2 of query/key/value"):
    state_dict.to_torch(params, batch_stats)


def test_cli_bad_input(exported, trained_run, tmp_path, capsys):
  assert _export_cli("--checkpoint", trained_run, "--out", exported) == 2
  assert "exists (pass --overwrite" in capsys.readouterr().err
  assert _export_cli("--checkpoint", trained_run, "--out", str(tmp_path / "x"), "--format", "tf") == 2
  assert "--format tf: expected" in capsys.readouterr().err
  assert _export_cli("--checkpoint", trained_run, "--out", str(tmp_path / "x"), "--which", "first") == 2
  assert "--which first" in capsys.readouterr().err
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(parity, "PARITY_TOLERANCE", -1.0)  # every difference is now too large
    assert _export_cli("--checkpoint", exported, "--out", str(tmp_path / "x")) == 1
  assert "differs from JAX beyond" in capsys.readouterr().err
  assert os.listdir(tmp_path) == []  # nothing written, no temporary folder left


def test_torch_module_runs_without_jax(exported, windows, tmp_path):
  np.save(tmp_path / "video.npy", windows["video"])
  script = textwrap.dedent(f"""
      import sys
      for name in ("jax", "jaxlib", "flax", "ml_collections", "optax", "orbax"):
        sys.modules[name] = None  # any import of these now raises ImportError
      import numpy as np, torch
      import modeformer_jax.export.torch_model  # the package module imports without JAX too
      sys.path.insert(0, {exported!r})
      from modeformer_torch import ModEFormer  # the copy in the export folder
      model = ModEFormer.from_pretrained({exported!r})
      with torch.no_grad():
        video = model.embed_video(torch.from_numpy(np.load({str(tmp_path / "video.npy")!r})))
      np.save({str(tmp_path / "out.npy")!r}, video.numpy())
  """)
  subprocess.run([sys.executable, "-c", script], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
  assert np.abs(np.load(tmp_path / "out.npy") - windows["jax"][0]).max() < TOL


def test_eval_of_an_export_asks_for_data_and_finds_the_dataset(exported, tmp_path, capsys):
  assert cli.main(["eval", "--checkpoint", exported, "--limit", "1"]) == 2
  assert "an exported model carries no data source: pass --data" in capsys.readouterr().err
  assert cli.main(["eval", "--checkpoint", exported, "--data", str(tmp_path)]) == 2
  assert f"{tmp_path}: no lrs2 or lrs3 prepared here; pass --dataset" in capsys.readouterr().err
  (tmp_path / "lrs3").mkdir()
  assert cli.main(["eval", "--checkpoint", exported, "--data", str(tmp_path)]) == 2
  assert "lrs3" in capsys.readouterr().err  # picked the only dataset there, which has no split yet
