"""SyncNet (syncnet_python's network, 13.63M parameters) on LRS2, trained from scratch; also the config that
`modeformer import-syncnet` writes beside the published weights.

Arguments (`--config configs/syncnet.py:ARG`) pick the objective (SPEC section 7):
  contrastive  the original margin loss on Euclidean distances of raw embeddings (default)
  infonce      our InfoNCE on unit embeddings (hard + in-batch negatives, as ModEFormer)
  pm           Perfect Match: cross-entropy over the positive and the clip's candidate offsets (cosine)

Inputs: the shards of `modeformer prep` hold 96x96 RGB face crops, raw audio and log-mel. SyncNet reads the
crops (resized to 224x224 on the device, BGR inside the model) and MFCCs computed from the raw audio when a
record is read (data/features.py), so one prepared dataset serves every model of the table.

  modeformer train --config configs/syncnet.py:pm --workdir runs/pm --config.data.data_dir=/data/lrs2_prep
"""

from modeformer_jax import config_defaults as cd
from modeformer_jax.media.preprocess_config import syncnet_preprocess_config

OBJECTIVES = {"contrastive": ("contrastive", "raw"), "infonce": ("infonce", "unit"), "pm": ("multiway", "unit")}


def get_config(arg=None):
  objective, embedding = OBJECTIVES[arg or "contrastive"]
  config = cd.base_config()
  config.model = cd.syncnet_model_config(objective=objective, embedding=embedding)
  config.preprocess = syncnet_preprocess_config()
  config.preprocess.crop_size = 96  # what prepared shards store; the model resizes to model.image_size
  config.data.dataset = "lrs2"
  config.stages = [
      cd.stage_config(name="pretrain", split="pretrain", steps=60_000, batch_size=256, lr=5e-4),
      cd.stage_config(name="finetune", split="train", steps=20_000, batch_size=256, lr=1e-4, warmup_steps=500),
  ]
  return config
