"""Convert syncnet_python's published SyncNet weights (syncnet_v2.model) into a model folder of ours.

The folder (config.json + model.safetensors) works as --checkpoint for `modeformer sync` and `modeformer
eval`. Its preprocessing is syncnet_python's: 224x224 face crops made as its crop_video makes them, MFCCs as
python_speech_features computes them, the audio window of frame f = MFCC columns 4f..4f+19; `sync` scores it
by default with --syncnet-compat (zero-padded audio, Euclidean distances), so AV offset, Min dist and
Confidence are that tool's, and their means over files are LSE-D / LSE-C.

The file is read with torch.load(weights_only=True): only tensors and plain containers are accepted, nothing
in it is executed. Get it from the syncnet_python repository (download_model.sh).

Example:
  modeformer import-syncnet data/syncnet_v2.model --out models/syncnet
  modeformer sync talk.mp4 --checkpoint models/syncnet
"""

from __future__ import annotations

import os

from modeformer_jax.errors import UserError

HELP = "convert syncnet_python's published weights for `sync` / `eval` (LSE-D, LSE-C)"


def add_arguments(parser) -> None:
  parser.add_argument("path", metavar="PATH", help="syncnet_v2.model (a PyTorch state dict)")
  parser.add_argument("--out", required=True, metavar="DIR", help="model folder to write")
  parser.add_argument("--overwrite", action="store_true", help="replace files in an existing DIR")


def run(args) -> int:
  from modeformer_jax import config_defaults as cd
  from modeformer_jax.export import syncnet_weights
  from modeformer_jax.media.preprocess_config import syncnet_preprocess_config

  if os.path.exists(args.out) and os.listdir(args.out) and not args.overwrite:
    raise UserError(f"{args.out}: exists and is not empty (pass --overwrite to replace its files)")
  state = syncnet_weights.read_torch_state_dict(args.path)
  config = cd.base_config()
  config.model = cd.syncnet_model_config()
  config.preprocess = syncnet_preprocess_config()
  try:
    params, batch_stats = syncnet_weights.from_state_dict(state, config.model)
  except ValueError as e:
    raise UserError(f"{args.path}: not syncnet_python's SyncNet weights: {e}") from e
  files = syncnet_weights.write_folder(args.out, config, params, batch_stats, args.path)
  print(f"wrote {args.out}: {', '.join(files)} ({sum(v.size for v in state.values() if v.ndim):,} values)")
  return 0
