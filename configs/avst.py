"""AVST (Chen et al., BMVC 2021; 42.4M parameters in the paper's Table 1), reconstructed: per-frame visual
tokens and video-rate audio tokens in one transformer with a [CLS] token, trained with cross-entropy over each
clip's candidate offsets on clips of 5 to 15 frames (models/avst.py; every guess is a field of
config_defaults.avst_model_config). No public code exists, so this is a documented reconstruction, not AVST's
published model.

Arguments (`--config avst:ARG`, comma-separated): `tiny` (narrow widths, for CI) and `base=CONFIG[:ARG]` (a
shipped name or a file), the config whose data, stages and schedule the run keeps (default modeformer_lrs2):
the same inputs as ModEFormer (mouth halves, log-mel) on the same recipe. The objective uses each clip's own
candidates (its positive and stages.N.num_negatives hard negatives at other offsets) whatever
stages.N.negatives says.

  modeformer train --config avst --workdir runs/avst --config.data.data_dir=/data/lrs2_prep
  modeformer train --config avst:tiny,base=tiny:synthetic --workdir /tmp/avst
"""

from modeformer_jax import config_defaults as cd
from modeformer_jax.config_loading import split_base

BASE = "modeformer_lrs2"
CLIP_FRAMES = (5, 15)  # the paper's Table 1 clip lengths; AVST itself takes any length
TINY = dict(width=32, video_widths=(4, 8, 8, 16, 32), audio_widths=(4, 8, 8, 16, 32), video_stem_frames=3, depth=1,
            num_heads=4, mlp_dim=64, dropout=0.0, center_inputs=True)


def get_config(arg=None):
  config, flags = split_base(arg, BASE)
  if flags - {"tiny"}:
    raise ValueError(f"arguments: tiny, base=CONFIG; got {arg!r}")
  config.model = cd.avst_model_config(**(TINY if "tiny" in flags else {}))
  config.data.clip_frames = CLIP_FRAMES
  return config
