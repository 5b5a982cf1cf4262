"""SyncNet (syncnet_python's network, 13.63M parameters) trained from scratch; also what `modeformer
import-syncnet` writes beside the published weights (objective "contrastive", 224x224 crops).

The argument (`--config syncnet:ARG`, comma-separated flags) picks the objective (SPEC section 7):
  contrastive  the original margin loss on Euclidean distances of raw embeddings (the default)
  infonce      our InfoNCE on unit embeddings (hard + in-batch negatives, as ModEFormer)
  pm           Perfect Match: cross-entropy over the positive and the clip's candidate offsets (cosine)
The contrastive and PM objectives use each clip's own candidates (its positive and stages.N.num_negatives hard
negatives) whatever stages.N.negatives says; infonce follows it as ModEFormer does. PM's original candidate
set, every offset in +-15 frames, is --config.stages.N.num_negatives=30 --config.stages.N.min_offset=1. Other
flags: `tiny` (narrow widths, for CI) and `base=CONFIG[:ARG]` (a shipped name or a file), the config whose
data, stages and schedule the run keeps (default modeformer_lrs2), so the baselines table compares every
model on one recipe.

Inputs: the shards of `modeformer prep` hold 96x96 RGB face crops, raw audio and log-mel. SyncNet reads the
whole crop (resized to 224x224 on the device, flipped to BGR inside the model) and MFCCs computed from the raw
audio as each record is read (data/features.py), so one prepared dataset serves every model. The crop framing
matches syncnet_python's crop_video (a box 1.4 times the face, centre 0.2 lower); the resolution is the
shards' (96 px, upsampled).

  modeformer train --config syncnet:pm --workdir runs/pm --config.data.data_dir=/data/lrs2_prep
  modeformer train --config syncnet:pm,tiny,base=tiny:synthetic --workdir /tmp/pm
"""

from modeformer_jax import config_defaults as cd
from modeformer_jax.config_loading import split_base
from modeformer_jax.media.preprocess_config import syncnet_preprocess_config

BASE = "modeformer_lrs2"
# objective flag -> (model.objective, model.embedding)
OBJECTIVE_FLAGS = {"contrastive": ("contrastive", "raw"), "infonce": ("infonce", "unit"), "pm": ("multiway", "unit")}
TINY = dict(lip_widths=(8, 16, 16, 16, 16, 32), audio_widths=(8, 16, 16, 16, 16, 32), fc_width=32, width=32)


def get_config(arg=None):
  config, flags = split_base(arg, BASE)
  objective = [f for f in flags if f in OBJECTIVE_FLAGS] or ["contrastive"]
  if flags - OBJECTIVE_FLAGS.keys() - {"tiny"} or len(objective) > 1:
    raise ValueError(f"arguments: one of {', '.join(OBJECTIVE_FLAGS)}, tiny, base=CONFIG; got {arg!r}")
  name, embedding = OBJECTIVE_FLAGS[objective[0]]
  config.model = cd.syncnet_model_config(objective=name, embedding=embedding, **(TINY if "tiny" in flags else {}))
  crop_size = config.preprocess.crop_size  # what the shards / the synthetic source hold
  config.preprocess = syncnet_preprocess_config()
  config.preprocess.crop_size = crop_size
  return config
