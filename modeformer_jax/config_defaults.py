"""Defaults shared by the files in configs/: each config's get_config() starts from these and changes what
it needs. Values the paper does not state are ours and say so (SPEC sections 2 and 3)."""

from __future__ import annotations

import ml_collections


def model_config(**overrides) -> ml_collections.ConfigDict:
  """ModEFormer as SPEC section 2 (58.84M parameters at these values)."""
  cfg = ml_collections.ConfigDict(dict(
      name="modeformer",
      width=512,                             # d_model; the last CNN width of each modality must equal it
      video_widths=(32, 64, 128, 256, 512),  # visual CNN stage widths (SPEC table rows 1, 2, 5, 9, 12)
      audio_widths=(32, 64, 128, 256, 512),  # audio CNN stage widths (rows 1, 4, 7, 10, 13)
      temporal="transformer",                # "transformer" (ModEFormer) or "pool" (3D-SyncNet ablation)
      depth=4,
      num_heads=8,
      mlp_dim=1024,
      dropout=0.1,
      norm_first=True,                       # not stated by the paper: pre-LN
      activation="relu",                     # not stated: ReLU FFN
      pos_encoding="sinusoidal",             # not stated: "sinusoidal" or "learned"
      max_len=64,                            # longest token sequence (+1 for the learnable token)
      projection_dim=0,                      # not stated: 0 = no projection head
      init_temperature=0.07,                 # not stated; CLIP's value
      temperature_range=(0.01, 1.0),
      bn_momentum=0.9,                       # PyTorch's BatchNorm momentum 0.1
      conv3d_impl="taps2d",                  # "taps2d" or "xla": same parameters, see models/layers.Conv
      # Not in the paper (ours, off at its size): subtract each window's mean over time from its input (video
      # per pixel, log-mel per bin) so only what changes within the 0.2 s remains. Small models learn sync
      # from it in tens of steps instead of hundreds (README, Status).
      center_inputs=False,
      dtype="float32",                       # compute dtype ("bfloat16" for mixed precision); params stay f32
      # Recompute each CNN block's activations in the backward pass instead of keeping them: less memory per
      # clip for more compute (bench/train_memory.py measures both).
      remat=False,
  ))
  cfg.update(overrides)
  return cfg


def syncnet_model_config(**overrides) -> ml_collections.ConfigDict:
  """SyncNet as syncnet_python's network (SPEC section 7; 13.63M parameters at these values)."""
  cfg = ml_collections.ConfigDict(dict(
      name="syncnet",
      lip_widths=(96, 256, 256, 256, 256, 512),    # netcnnlip conv widths
      audio_widths=(64, 192, 384, 256, 256, 512),  # netcnnaud conv widths
      fc_width=512,                # hidden width of both heads
      width=1024,                  # embedding dimension (num_layers_in_fc_layers)
      image_size=224,              # the lip tower's input; smaller crops are resized on the device
      embedding="raw",             # "raw" (Euclidean distance, syncnet_python) or "unit" (cosine)
      objective="contrastive",     # "contrastive" (original), "infonce" or "multiway" (PM); see loss.py
      margin=10.0,                 # contrastive margin on Euclidean distances (ours; the paper gives none)
      init_temperature=0.07,       # InfoNCE / multiway temperature, as model_config
      temperature_range=(0.01, 1.0),
      bn_momentum=0.9,             # PyTorch's BatchNorm momentum 0.1
      conv3d_impl="taps2d",
      dtype="float32",
  ))
  cfg.update(overrides)
  return cfg


def vocalist_model_config(**overrides) -> ml_collections.ConfigDict:
  """VocaLiST: ModEFormer's front-ends + three cross-modal transformers (SPEC section 7; 80.1M parameters)."""
  cfg = ml_collections.ConfigDict(dict(
      name="vocalist",
      width=512,                             # d_model; the last CNN width of each modality must equal it
      video_widths=(32, 64, 128, 256, 512),  # as model_config: SPEC section 2 tables
      audio_widths=(32, 64, 128, 256, 512),
      depth=4,                               # layers of each of the three transformers
      num_heads=8,
      mlp_dim=2048,
      dropout=0.1,                           # residual and FFN dropout (MulT's res / relu dropout)
      attn_dropout=0.0,
      embed_dropout=0.25,
      attn_mask=True,                        # MulT's buffered_future_mask, as VocaLiST trains
      bn_momentum=0.9,
      conv3d_impl="taps2d",
      dtype="float32",
  ))
  cfg.update(overrides)
  return cfg


def avst_model_config(**overrides) -> ml_collections.ConfigDict:
  """AVST, reconstructed (SPEC section 5; 42.4M in the paper's Table 1, no public code; models/avst.py). The
  paper states neither its layers nor its objective here: every field is a guess unless its comment says
  otherwise, sized to the paper's parameter count (41.93M at these values, -1.1%)."""
  cfg = ml_collections.ConfigDict(dict(
      name="avst",
      width=512,                             # guess: d_model; the last CNN width of each modality must equal it
      video_widths=(32, 64, 128, 256, 512),  # guess: ModEFormer's visual table (SPEC section 2) ...
      video_stem_frames=7,                   # ... its first conv 3D over this many frames (odd), the rest 2D per
                                             # frame, as lip-reading front-ends (1: every frame on its own)
      audio_widths=(32, 64, 128, 256, 512),  # guess: ModEFormer's audio table, pooled to the video rate
      depth=8,                               # guess: one transformer over [CLS] + video + audio tokens
      num_heads=8,                           # guess
      mlp_dim=2048,                          # guess (VocaLiST's FFN width)
      dropout=0.1,                           # guess: embedded inputs, attention, residual and FFN paths
      norm_first=True,                       # guess: pre-LN
      activation="relu",                     # guess
      pos_encoding="sinusoidal",             # guess: frame positions, shared by both modalities; or "learned"
      max_frames=64,                         # longest clip with learned positions
      mel_frames_per_second=80,              # the log-mel rate against ...
      fps=25,                                # ... the video's (must equal config.preprocess's)
      center_inputs=False,                   # as model_config (ours, for tiny models)
      remat=False,                           # as model_config: CNN blocks recomputed in the backward pass
      bn_momentum=0.9,
      conv3d_impl="taps2d",
      dtype="float32",
  ))
  cfg.update(overrides)
  return cfg


def stage_config(**overrides) -> ml_collections.ConfigDict:
  """One training stage: its data split, negatives, length and schedule. Ours, not the paper's."""
  cfg = ml_collections.ConfigDict(dict(
      name="main",
      split="train",
      steps=100_000,
      batch_size=256,          # global batch of unique clips (video windows)
      num_negatives=11,        # N hard negatives per clip (paper: 11 best)
      max_offset=15,           # hard negatives drawn from -max_offset..+max_offset frames
      min_offset=2,            # ... with |offset| >= min_offset (+-1 counts as correct at evaluation)
      negatives="both",        # InfoNCE candidates: "hard", "in_batch" or "both"
      symmetric=False,         # InfoNCE also from audio to video (CLIP-style): each clip's positive audio against
                               # every video of the global batch, the two directions' losses averaged
      lr=5e-4,
      end_lr_factor=0.01,      # cosine decays to lr * end_lr_factor
      warmup_steps=2_000,
      weight_decay=0.05,
      # Adam's epsilon: a gradient much smaller than it moves its weight by less than the learning rate. With
      # optax's 1e-8 every weight whose gradient is near zero steps by about the learning rate in the sign of
      # its rounding noise, which differs between device layouts (tests compare layouts with a larger value).
      adam_eps=1e-8,
      grad_clip=1.0,
  ))
  cfg.update(overrides)
  return cfg


def data_config(**overrides) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict(dict(
      source="shards",         # "shards" (prepared TFDS/ArrayRecord dataset) or "synthetic" (in memory)
      data_dir="",             # `modeformer prep --out` folder
      dataset="lrs2",
      num_workers=8,           # grain worker processes per host (0 = in the main process)
      prefetch_buffer=4,
      windows_per_record=1,    # windows drawn from each record read (amortises decode)
      clip_frames=(),          # (min, max): training clips of T frames, T drawn per clip, padded to max with a
                               # mask (AVST only, models that take variable-length clips); (): 5-frame windows
      synthetic_clips=64,      # in-memory source: clips rendered per split
      synthetic_seconds=3.0,
      synthetic_face_scale=1.6,  # face size vs. the generator's LRS2 framing: 1.6 ~ a face detector's tight crop
      augment=ml_collections.ConfigDict(dict(
          crop_jitter=4,       # max pixels the 96x96 crop moves before the mouth half is taken
          brightness=0.1,      # max additive brightness change (fraction of 255)
          contrast=0.1,        # max relative contrast change
          audio_gain=0.25,     # max additive change of the normalised log-mel (about 1.6 dB)
          audio_noise=0.05,    # std of gaussian noise on the normalised log-mel
          low_res=0.0,         # share of examples seen through a smaller face (data/augment.py; wide shots)
      )),
  ))
  cfg.update(overrides)
  return cfg


def base_config() -> ml_collections.ConfigDict:
  from modeformer_jax.media.preprocess_config import preprocess_config
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0
  cfg.model = model_config()
  cfg.preprocess = preprocess_config()
  cfg.data = data_config()
  cfg.stages = [stage_config()]
  cfg.loss_chunk_size = 0       # >0: chunked InfoNCE columns (memory O(B_local x chunk))
  cfg.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1))  # -1: all remaining devices
  cfg.log_every = 50
  cfg.checkpoint_every = 1_000
  cfg.keep_checkpoints = 3
  cfg.eval_every = 5_000        # protocol accuracy on the validation subset; 0 = never
  cfg.eval_videos = 64
  cfg.eval_split = "val"
  # Persistent XLA compilation cache: "auto" ($JAX_COMPILATION_CACHE_DIR, else ~/.cache/modeformer/xla), "none",
  # or a folder. A restarted or resumed run loads its compiled programs from it instead of compiling again.
  cfg.compilation_cache_dir = "auto"
  return cfg
