"""ModEFormer on LRS2 at the paper's size (59.0M parameters).

Two stages (SPEC section 3: the paper trains in two stages but does not say what they are): first the
large `pretrain` split, then `train` with a lower learning rate, each starting from the previous stage's
final weights. Batch, learning rates and steps are ours, sized for a TPU v4-32 / 8xH100 host.

  modeformer train --config modeformer_lrs2 --workdir runs/lrs2 --config.data.data_dir=/data/lrs2_prep
"""

from modeformer_jax import config_defaults as cd


def get_config(arg=None):
  del arg
  config = cd.base_config()
  config.data.dataset = "lrs2"
  config.stages = [
      cd.stage_config(name="pretrain", split="pretrain", steps=60_000, batch_size=256, lr=5e-4),
      cd.stage_config(name="finetune", split="train", steps=20_000, batch_size=256, lr=1e-4, warmup_steps=500),
  ]
  return config
