"""Export a trained model to PyTorch (safetensors) and ONNX, checked against the JAX model before it is kept.

Examples:
  modeformer export --checkpoint runs/lrs2 --which best --out exports/lrs2
  modeformer export --checkpoint runs/tiny --out exports/tiny --format torch,onnx

The folder holds model.safetensors (PyTorch names and layouts, BatchNorm running statistics, temperature),
config.json (architecture, input format and every preprocessing constant), modeformer_torch.py (the network
in plain PyTorch, no JAX needed), README.md and, with --format onnx, video_encoder.onnx and
audio_encoder.onnx (dynamic batch). `modeformer eval` and `modeformer sync` take the folder as --checkpoint.
Before the folder is written (atomically), the exported files are run on random inputs and compared with
JAX. Exit status: 0 done, 1 parity check failed (nothing written), 2 bad input.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import warnings
from typing import TYPE_CHECKING

import numpy as np

from modeformer_jax.commands import options
from modeformer_jax.errors import UserError

if TYPE_CHECKING:
  import ml_collections

HELP = "export a checkpoint to PyTorch safetensors and ONNX, verified against JAX"
FORMATS = ("torch", "onnx")
# Max abs embedding difference the parity check accepts. Mapping bugs give O(0.1); float32 reordering in the
# 59M model stays near 1e-6 (bench/torch_vs_jax.py, tests/test_export.py).
PARITY_TOLERANCE = 1e-4
PARITY_BATCH = 2
ONNX_OPSET = 17

README = """\
# ModEFormer export

Audio-video synchronisation embeddings (ModEFormer, Gupta et al., ICASSP 2023), exported by `modeformer
export` from {source} (step {step}). Loading in PyTorch needs only `torch` and `safetensors`:

```python
import sys, torch; sys.path.insert(0, "{folder}")  # this folder, for modeformer_torch.py
from modeformer_torch import ModEFormer
model = ModEFormer.from_pretrained("{folder}")  # eval mode
with torch.no_grad():
  score = model.sync_score(model.embed_video(clips), model.embed_audio(mels))  # cosine per pair
```

Inputs (config.json `inputs` and `preprocess` give every constant):
- video: {video}
- audio: {audio}
- alignment: {alignment}
- offsets: {sign}

Files: model.safetensors (PyTorch state_dict: conv weight [out, in, *k], linear [out, in], BatchNorm
running_mean / running_var, log_temperature), config.json, modeformer_torch.py{onnx_files}.
`modeformer eval` and `modeformer sync` accept this folder as --checkpoint.
"""


class ParityError(Exception):
  """The exported model's outputs differ from the JAX model's by more than PARITY_TOLERANCE."""


def add_arguments(parser) -> None:
  parser.add_argument("--checkpoint", required=True, metavar="PATH",
                      help="training run folder (config.json + checkpoints/), or an export folder to re-export")
  parser.add_argument("--which", default="last", metavar="last|best|STEP",
                      help="checkpoint of a training run: the last, the best by validation accuracy, or a step")
  parser.add_argument("--out", required=True, metavar="DIR", help="export folder to create")
  parser.add_argument("--format", default="torch", metavar="torch[,onnx]",
                      help="torch: model.safetensors, config.json, modeformer_torch.py, README.md (always "
                      "written); onnx: also video_encoder.onnx and audio_encoder.onnx")
  parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
  parser.add_argument("--no-verify", action="store_true", help="skip the JAX / PyTorch / ONNX parity check")
  options.add_json(parser)


def run(args) -> int:
  formats = [f.strip() for f in args.format.split(",") if f.strip()]
  if not formats or set(formats) - set(FORMATS):
    raise UserError(f"--format {args.format}: expected a comma-separated subset of {', '.join(FORMATS)}")
  if args.which not in ("last", "best") and not args.which.isdigit():
    raise UserError(f"--which {args.which}: expected last, best or a step number")
  needed = ["torch"] + (["onnxruntime"] if "onnx" in formats and not args.no_verify else [])
  missing = [m for m in needed if importlib.util.find_spec(m) is None]
  if missing:
    raise UserError(f"--format {args.format}: needs {' and '.join(missing)} (pip install 'modeformer-jax[torch,onnx]')")
  from modeformer_jax.weights import load_weights

  config, step, params, batch_stats = load_weights(args.checkpoint, args.which)
  if config.model.name != "modeformer":  # the PyTorch module written beside the weights is ModEFormer's
    raise UserError(f"{args.checkpoint}: a {config.model.name} model; export writes ModEFormer models only")
  try:
    written = export(config, params, batch_stats, args.out, onnx="onnx" in formats, step=step,
                     source=args.checkpoint, verify=not args.no_verify, overwrite=args.overwrite)
  except ParityError as e:
    print(f"modeformer export: error: {e}", file=sys.stderr)
    return 1
  if args.json:
    print(json.dumps({"out": os.path.abspath(args.out), "step": step, **written}))
  else:
    parity = ", ".join(f"{k} {v:.1e}" for k, v in written["parity"].items()) or "not checked"
    print(f"exported step {step} of {args.checkpoint} to {args.out}: {', '.join(written['files'])}\n"
          f"max abs difference to JAX: {parity}")
  return 0


def export(config: ml_collections.ConfigDict, params: dict, batch_stats: dict, out: str, *, onnx: bool = False,
           step: int | None = None, source: str = "", verify: bool = True, overwrite: bool = False) -> dict:
  """Writes the export folder `out` from JAX trees (pure dicts, as restore_weights returns them).

  Returns {"files": [...], "parity": {check: max abs difference}}. Raises ParityError (nothing written) when
  an exported model's embeddings differ from JAX's by more than PARITY_TOLERANCE, UserError when `out`
  exists (and not overwrite), ValueError when a parameter has no PyTorch counterpart.
  """
  import torch
  from safetensors.numpy import save_file
  from safetensors.torch import load_file

  from modeformer_jax.export import torch_model
  from modeformer_jax.weights import export_folder, state_dict

  out = os.path.abspath(out)
  if os.path.exists(out) and not (os.path.isdir(out) and (overwrite or not os.listdir(out))):
    raise UserError(f"{out}: exists (pass --overwrite to replace a folder)")
  model_cfg = json.loads(config.model.to_json_best_effort())
  tensors = state_dict.to_torch(params, batch_stats, step or 0)
  module = torch_model.ModEFormer(model_cfg).eval()

  os.makedirs(os.path.dirname(out), exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", dir=os.path.dirname(out))
  try:
    weights = os.path.join(tmp, export_folder.WEIGHTS)
    save_file(tensors, weights,
              metadata={"format": "pt", export_folder.MODEL_METADATA: json.dumps(model_cfg, sort_keys=True)})
    # The module runs on the file just written, so the parity check covers the file, not just the arrays; the
    # strict load fails on any state_dict entry left unfilled, unexpected or misshapen.
    try:
      module.load_state_dict(load_file(weights))
    except RuntimeError as e:
      raise ValueError(f"JAX parameters do not map onto the PyTorch module: {e}") from e
    shutil.copyfile(torch_model.__file__, os.path.join(tmp, "modeformer_torch.py"))
    inputs = _parity_inputs(config.preprocess)
    if onnx:
      _write_onnx(module, tmp, inputs)
    with torch.no_grad():
      meta = _export_config(config, model_cfg, step, source, module.logit_scale().item())
    meta["parity"] = _parity(config, params, batch_stats, module, tmp if onnx else None, inputs) if verify else {}
    with open(os.path.join(tmp, export_folder.CONFIG), "w") as f:
      json.dump(meta, f, indent=2)
    with open(os.path.join(tmp, "README.md"), "w") as f:
      f.write(_readme(meta, out, onnx))
    files = sorted(os.listdir(tmp))
    _replace_folder(tmp, out)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return {"files": files, "parity": meta["parity"]}


def _export_config(config: ml_collections.ConfigDict, model_cfg: dict, step: int | None, source: str,
                   logit_scale: float) -> dict:
  """config.json: what from_pretrained and load_exported need, and what a consumer needs to feed the model."""
  pp = config.preprocess
  rows = pp.crop_size - pp.mouth_row_start
  width = model_cfg["projection_dim"] or model_cfg["width"]
  return {
      "model": model_cfg,
      "preprocess": json.loads(pp.to_json_best_effort()),
      "inputs": {
          "video": f"uint8 [B, {pp.video_window_frames}, {rows}, {pp.crop_size}, 3] RGB, 0..255 (or float in "
                   f"[0, 1]): rows {pp.mouth_row_start}..{pp.crop_size - 1} (the lower half) of a "
                   f"{pp.crop_size}x{pp.crop_size} face crop, {pp.video_window_frames} frames at {pp.fps:g} fps",
          "audio": f"float32 [B, {pp.n_mels}, {pp.mel_window_frames}] (mel bin, time): log-mel of "
                   f"{pp.sample_rate} Hz mono (pre-emphasis {pp.preemphasis}, n_fft {pp.n_fft}, Hann window "
                   f"{pp.win_length}, hop {pp.hop_length}, {pp.n_mels} mels {pp.fmin:g}..{pp.fmax:g} Hz, dB with "
                   f"ref_level_db {pp.ref_level_db:g}, min_level_db {pp.min_level_db:g}, scaled and clipped to "
                   f"[-{pp.max_abs_value:g}, {pp.max_abs_value:g}])",
          "alignment": f"the audio window of the video window starting at frame f starts at mel frame "
                       f"int({pp.mel_frames_per_second} * f / {pp.fps:g}) and is {pp.mel_window_frames} frames long",
          "offset_sign": "video window f scored against the audio window of frame f + d: a best d > 0 means "
                         "the sound of frame f comes d frames later (audio lags); the SyncNet-style AV offset "
                         "is -d (> 0: audio leads)",
      },
      "embedding": f"float32 [B, {width}], unit norm; sync score = dot product (cosine similarity)",
      "logit_scale": logit_scale,
      "source": {"checkpoint": source, "step": step},
  }


def _readme(meta: dict, out: str, onnx: bool) -> str:
  inputs = meta["inputs"]
  onnx_files = (", video_encoder.onnx (input `video` uint8, output `embedding`) and audio_encoder.onnx (input "
                "`audio` float32, output `embedding`), batch dimension dynamic") if onnx else ""
  return README.format(source=meta["source"]["checkpoint"] or "a JAX model", step=meta["source"]["step"],
                       folder=out, video=inputs["video"], audio=inputs["audio"], alignment=inputs["alignment"],
                       sign=inputs["offset_sign"], onnx_files=onnx_files)


def _parity_inputs(pp) -> dict[str, np.ndarray]:
  """A fixed random batch in the exported input format: uint8 clips and log-mel windows."""
  rng = np.random.default_rng(0)
  video = rng.integers(0, 256, (PARITY_BATCH, pp.video_window_frames, pp.crop_size - pp.mouth_row_start,
                                pp.crop_size, 3), dtype=np.uint8)
  mel = rng.uniform(-pp.max_abs_value, pp.max_abs_value, (PARITY_BATCH, pp.n_mels, pp.mel_window_frames))
  return {"video": video, "audio": mel.astype(np.float32)}


def _write_onnx(module, folder: str, inputs: dict[str, np.ndarray]) -> None:
  """video_encoder.onnx and audio_encoder.onnx: one embedding method each, batch dimension dynamic."""
  import torch

  class Method(torch.nn.Module):
    def __init__(self, method):
      super().__init__()
      self.model, self.method = module, method

    def forward(self, x):
      return getattr(self.model, self.method)(x)

  for name, method in (("video", "embed_video"), ("audio", "embed_audio")):
    # The TorchScript exporter: the torch.export one needs onnxscript, which the `onnx` extra does not pull.
    # Tracing warns about shapes it records as constants: the dynamic batch axis is the only one that varies.
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      warnings.simplefilter("ignore", torch.jit.TracerWarning)
      torch.onnx.export(Method(method).eval(), (torch.from_numpy(inputs[name]),),
                        os.path.join(folder, f"{name}_encoder.onnx"), dynamo=False, opset_version=ONNX_OPSET,
                        input_names=[name], output_names=["embedding"],
                        dynamic_axes={name: {0: "batch"}, "embedding": {0: "batch"}})


def _parity(config: ml_collections.ConfigDict, params: dict, batch_stats: dict, module, onnx_folder: str | None,
            inputs: dict[str, np.ndarray]) -> dict[str, float]:
  """Max abs difference of the exported models' embeddings to JAX's on `inputs`; ParityError above tolerance."""
  import torch

  from modeformer_jax.inference import SyncModel

  jax_model = SyncModel(config, params, batch_stats, batch_size=PARITY_BATCH)
  reference = {"video": jax_model.embed_video(inputs["video"]), "audio": jax_model.embed_audio(inputs["audio"])}
  with torch.no_grad():
    got = {f"torch_{k}": getattr(module, f"embed_{k}")(torch.from_numpy(x)).numpy() for k, x in inputs.items()}
  if onnx_folder:
    import onnxruntime

    for k, x in inputs.items():
      session = onnxruntime.InferenceSession(os.path.join(onnx_folder, f"{k}_encoder.onnx"),
                                             providers=["CPUExecutionProvider"])
      got[f"onnx_{k}"] = session.run(None, {k: x})[0]
  diffs = {k: float(np.abs(v - reference[k.split("_")[1]]).max()) for k, v in got.items()}
  bad = {k: v for k, v in diffs.items() if not v <= PARITY_TOLERANCE}
  if bad:
    raise ParityError(f"exported model differs from JAX beyond {PARITY_TOLERANCE:g}: "
                      + ", ".join(f"{k} {v:.2e}" for k, v in bad.items()))
  return diffs


def _replace_folder(tmp: str, out: str) -> None:
  """Moves the finished folder into place; an existing `out` is swapped out first and then removed."""
  # mkdtemp and safetensors create owner-only entries; the export gets the permissions of a plain mkdir.
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp, 0o777 & ~umask)
  for name in os.listdir(tmp):
    os.chmod(os.path.join(tmp, name), 0o666 & ~umask)
  if os.path.isdir(out) and os.listdir(out):
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old.", dir=os.path.dirname(out))
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old)
  else:
    os.replace(tmp, out)
