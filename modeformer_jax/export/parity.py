"""The check every export passes before it is kept: the exported PyTorch module (and ONNX graphs) run on a fixed
random batch in the exported input format, and their embeddings are compared with the JAX model's."""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from modeformer_jax.inference import SyncModel

# Max abs embedding difference the parity check accepts. Mapping bugs give O(0.1); float32 reordering in the
# 59M model stays near 1e-6 (bench/torch_vs_jax.py, tests/test_export.py).
PARITY_TOLERANCE = 1e-4
PARITY_BATCH = 2


class ParityError(Exception):
  """The exported model's outputs differ from the JAX model's by more than PARITY_TOLERANCE."""


def parity_inputs(pp: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
  """A fixed random batch in the exported input format: uint8 clips and log-mel windows."""
  rng = np.random.default_rng(0)
  video = rng.integers(0, 256, (PARITY_BATCH, pp.video_window_frames, pp.crop_size - pp.mouth_row_start,
                                pp.crop_size, 3), dtype=np.uint8)
  mel = rng.uniform(-pp.max_abs_value, pp.max_abs_value, (PARITY_BATCH, pp.n_mels, pp.mel_window_frames))
  return {"video": video, "audio": mel.astype(np.float32)}


def check_parity(config: ml_collections.ConfigDict, params: dict, batch_stats: dict, module,
                 onnx_folder: str | None, inputs: dict[str, np.ndarray]) -> dict[str, float]:
  """Max abs difference of the exported models' embeddings to JAX's on `inputs`; ParityError above tolerance."""
  import torch

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
