"""ModEFormer on LRS3 (paper Table 2: 88.3% after the first stage, 90.9% after the second).

  modeformer train --config modeformer_lrs3 --workdir runs/lrs3 --config.data.data_dir=/data/lrs3_prep
"""

from modeformer_jax import config_defaults as cd


def get_config(arg=None):
  del arg
  config = cd.base_config()
  config.data.dataset = "lrs3"
  config.stages = [
      cd.stage_config(name="pretrain", split="pretrain", steps=80_000, batch_size=256, lr=5e-4),
      cd.stage_config(name="finetune", split="train", steps=20_000, batch_size=256, lr=1e-4, warmup_steps=500),
  ]
  return config
