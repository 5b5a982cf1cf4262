"""VocaLiST (80.1M parameters): ModEFormer's front-ends and three cross-modal transformers, trained with
binary cross-entropy on in-sync / off-sync pairs (each clip's positive and its hard negatives).

Arguments (`--config configs/vocalist.py:ARG`, comma-separated): `tiny` (narrow widths, for CI) and
`base=PATH[:ARG]`, the config whose data, stages and schedule the run keeps (default
configs/modeformer_lrs2.py): the same inputs as ModEFormer (mouth halves, log-mel) on the same recipe.

  modeformer train --config configs/vocalist.py --workdir runs/vocalist --config.data.data_dir=/data/lrs2_prep
"""

import os

from modeformer_jax import config_defaults as cd
from modeformer_jax.config_loading import split_base

BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modeformer_lrs2.py")
TINY = dict(width=32, video_widths=(4, 8, 8, 16, 32), audio_widths=(4, 8, 8, 16, 32), depth=1, num_heads=4,
            mlp_dim=64)


def get_config(arg=None):
  config, flags = split_base(arg, BASE)
  if flags - {"tiny"}:
    raise ValueError(f"arguments: tiny, base=PATH; got {arg!r}")
  config.model = cd.vocalist_model_config(**(TINY if "tiny" in flags else {}))
  return config
