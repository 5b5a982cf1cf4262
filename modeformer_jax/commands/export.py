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
import sys

from modeformer_jax.commands import options
from modeformer_jax.errors import UserError

HELP = "export a checkpoint to PyTorch safetensors and ONNX, verified against JAX"
FORMATS = ("torch", "onnx")


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
  from modeformer_jax.export.parity import ParityError
  from modeformer_jax.export.write import export
  from modeformer_jax.weights import load_weights, parse_which

  formats = [f.strip() for f in args.format.split(",") if f.strip()]
  if not formats or set(formats) - set(FORMATS):
    raise UserError(f"--format {args.format}: expected a comma-separated subset of {', '.join(FORMATS)}")
  which = options.parsed("--which", args.which, parse_which)
  needed = ["torch"] + (["onnxruntime"] if "onnx" in formats and not args.no_verify else [])
  missing = [m for m in needed if importlib.util.find_spec(m) is None]
  if missing:
    raise UserError(f"--format {args.format}: needs {' and '.join(missing)} (pip install 'modeformer-jax[torch,onnx]')")
  config, step, params, batch_stats = load_weights(args.checkpoint, which)
  try:
    written = export(config, params, batch_stats, args.out, onnx="onnx" in formats, step=step,
                     source=args.checkpoint, verify=not args.no_verify, overwrite=args.overwrite)
  except FileExistsError:
    raise UserError(f"{os.path.abspath(args.out)}: exists (pass --overwrite to replace a folder)") from None
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
