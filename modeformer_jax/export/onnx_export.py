"""The encoders as ONNX graphs: video_encoder.onnx and audio_encoder.onnx, batch dimension dynamic."""

from __future__ import annotations

import os
import warnings

import numpy as np

ONNX_OPSET = 17


def write_onnx(module, folder: str, inputs: dict[str, np.ndarray]) -> None:
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
