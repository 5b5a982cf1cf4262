"""VocaLiST (80.1M parameters): ModEFormer's front-ends and three cross-modal transformers, trained with
binary cross-entropy on in-sync / off-sync pairs (each clip's positive and its hard negatives).

Arguments (`--config vocalist:ARG`, comma-separated): `tiny` (narrow widths, for CI) and `base=CONFIG[:ARG]`
(a shipped name or a file), the config whose data, stages and schedule the run keeps (default
modeformer_lrs2): the same inputs as ModEFormer (mouth halves, log-mel) on the same recipe.

  modeformer train --config vocalist --workdir runs/vocalist --config.data.data_dir=/data/lrs2_prep
"""

from modeformer_jax import config_defaults as cd
from modeformer_jax.config_loading import split_base

BASE = "modeformer_lrs2"
TINY = dict(width=32, video_widths=(4, 8, 8, 16, 32), audio_widths=(4, 8, 8, 16, 32), depth=1, num_heads=4,
            mlp_dim=64)


def get_config(arg=None):
  config, flags = split_base(arg, BASE)
  if flags - {"tiny"}:
    raise ValueError(f"arguments: tiny, base=PATH; got {arg!r}")
  config.model = cd.vocalist_model_config(**(TINY if "tiny" in flags else {}))
  return config
