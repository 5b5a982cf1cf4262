"""An export folder from JAX weights: model.safetensors (PyTorch names and layouts), config.json (architecture,
input format, every preprocessing constant), modeformer_torch.py (the network in plain PyTorch), README.md and,
with onnx, the encoders as ONNX graphs. The folder is checked against JAX (parity.py) before it is moved into
place, whole; weights/export_folder.py reads it back.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import ml_collections

from modeformer_jax.errors import UserError
from modeformer_jax.export.onnx_export import write_onnx
from modeformer_jax.export.parity import check_parity, parity_inputs
from modeformer_jax.weights import export_folder, state_dict

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


def export(config: ml_collections.ConfigDict, params: dict, batch_stats: dict, out: str, *, onnx: bool = False,
           step: int | None = None, source: str = "", verify: bool = True, overwrite: bool = False) -> dict:
  """Writes the export folder `out` from JAX trees (pure dicts, as restore_weights returns them).

  Returns {"files": [...], "parity": {check: max abs difference}}. Raises ParityError (nothing written) when
  an exported model's embeddings differ from JAX's by more than PARITY_TOLERANCE, FileExistsError when `out`
  exists (and not overwrite, or is a file), UserError for a model other than ModEFormer (the PyTorch module
  written beside the weights is ModEFormer's), ValueError when a parameter has no PyTorch counterpart.
  """
  import torch  # torch only where an export is written: reading one back needs none
  from safetensors.torch import load_file

  from modeformer_jax.export import torch_model

  if config.model.name != "modeformer":
    raise UserError(f"{source or 'the model'}: a {config.model.name} model; export writes ModEFormer models only")
  out = os.path.abspath(out)
  if os.path.exists(out) and not (os.path.isdir(out) and (overwrite or not os.listdir(out))):
    raise FileExistsError(out)
  model_cfg = json.loads(config.model.to_json_best_effort())
  tensors = state_dict.to_torch(params, batch_stats, step or 0)
  module = torch_model.ModEFormer(model_cfg).eval()

  os.makedirs(os.path.dirname(out), exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", dir=os.path.dirname(out))
  try:
    weights = os.path.join(tmp, export_folder.WEIGHTS)
    export_folder.write_weights(weights, tensors, model_cfg)
    # The module runs on the file just written, so the parity check covers the file, not just the arrays; the
    # strict load fails on any state_dict entry left unfilled, unexpected or misshapen.
    try:
      module.load_state_dict(load_file(weights))
    except RuntimeError as e:
      raise ValueError(f"JAX parameters do not map onto the PyTorch module: {e}") from e
    shutil.copyfile(torch_model.__file__, os.path.join(tmp, "modeformer_torch.py"))
    inputs = parity_inputs(config.preprocess)
    if onnx:
      write_onnx(module, tmp, inputs)
    with torch.no_grad():
      meta = _export_config(config, model_cfg, step, source, module.logit_scale().item())
    meta["parity"] = (check_parity(config, params, batch_stats, module, tmp if onnx else None, inputs) if verify
                      else {})
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
