"""Where generated clips go: the LRS2 and LRS3 folder layouts, whole speakers assigned to splits, speaker ids
that look like the datasets', and the side .txt files (transcript, word table, LRS3's face boxes)."""

from __future__ import annotations

import numpy as np

from modeformer_jax.data.synth import streams
from modeformer_jax.data.synth.clip import RenderedClip

LAYOUTS = ("lrs2", "lrs3")
# Fractions of speakers per split, in the order speakers are assigned; ours, sized so that small stand-ins
# still hold out whole speakers for val/test.
SPLIT_FRACTIONS = {
    "lrs2": {"test": 0.1, "val": 0.1, "pretrain": 0.3, "train": 0.5},
    "lrs3": {"test": 0.15, "pretrain": 0.5, "trainval": 0.35},
}
FRAME_SIZE = {"lrs2": 160, "lrs3": 224}
# LRS3 crops show more context around the face than LRS2's face-centred crops.
FACE_SCALE = {"lrs2": 1.0, "lrs3": 0.8}


def speaker_splits(layout: str, speakers: int) -> list[str]:
  """Split of each speaker index. Whole speakers go to a split; test (and val for lrs2) get at least one
  speaker once there are enough speakers, and the main training split always keeps one."""
  fractions = SPLIT_FRACTIONS[layout]
  *held_out, main = fractions
  counts, left = {}, speakers
  for i, split in enumerate(held_out):
    wanted = round(fractions[split] * speakers)
    if split != "pretrain" and speakers >= i + 2:  # test from 2 speakers on, val from 3
      wanted = max(wanted, 1)
    counts[split] = min(wanted, left - 1)
    left -= counts[split]
  counts[main] = left
  order = ("pretrain", "train", "val", "test") if layout == "lrs2" else ("pretrain", "trainval", "test")
  return [split for split in order for _ in range(counts[split])]


def speaker_id(layout: str, seed: int, speaker_index: int) -> str:
  """LRS2-like show id (19 digits) or LRS3-like YouTube id (11 characters)."""
  rng = streams.generator(seed, speaker_index, 0x1d)
  if layout == "lrs2":
    return str(rng.integers(10 ** 18, 10 ** 19, dtype=np.uint64))
  alphabet = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
  return "".join(rng.choice(alphabet, 11))


def clip_path(layout: str, split: str, speaker: str, clip: str) -> str:
  """Relative path of a clip's mp4 (its transcript is the same path with .txt)."""
  if layout == "lrs2":
    return f"mvlrs_v1/{'pretrain' if split == 'pretrain' else 'main'}/{speaker}/{clip}.mp4"
  return f"{split}/{speaker}/{clip}.mp4"


def transcript_file(layout: str, clip: RenderedClip, rng: np.random.Generator, size: int) -> str:
  """LRS2: Text, Conf, word table. LRS3 adds the per-frame face box table (relative coordinates, columns
  separated by ' \\t' and lines ending in a space, as in the released files) before the word table."""
  lines = [f"Text:  {clip.transcript}", f"Conf:  {rng.integers(1, 10)}", ""]
  if layout == "lrs3":
    lines.append("FRAME \tX \tY \tW \tH ")
    for i, box in enumerate(np.clip(clip.face_boxes / size, 0, 1)):
      lines.append(f"{i:06d} \t" + " \t".join(f"{v:.3f}" for v in box) + " ")
    lines.append("")
  lines.append("WORD START END ASDSCORE")
  for word, start, end in clip.words:
    lines.append(f"{word} {start:.2f} {end:.2f} {rng.uniform(2, 10):.1f}")
  return "\n".join(lines) + "\n"
