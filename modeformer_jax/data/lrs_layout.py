"""Finding clips, their split and their side files in LRS2, LRS3 and plain folder layouts.

Layouts (SPEC section 4):
  lrs2:   SRC/mvlrs_v1/main/<show>/<clip>.mp4 (+ .txt) and SRC/mvlrs_v1/pretrain/...; the split lists
          SRC/{pretrain,train,val,test}.txt hold lines "<show>/<clip>" (test lines may carry a suffix such as
          " NF", ignored). pretrain lists point into pretrain/, the other three into main/. SRC may also be the
          mvlrs_v1 folder itself with the lists beside it or one level up.
  lrs3:   SRC/{pretrain,trainval,test}/<speaker>/<clip>.mp4 (+ .txt with a "Text:" line and, for pretrain, a
          "FRAME X Y W H" table of relative face boxes). The folder is the split. LRS3 has no official
          validation set: the splits "train" and "val" split trainval by speaker (no speaker in both). The
          speakers are ranked by SHA-1 of their id and the first max(1, round(val_fraction * speakers)) go to
          val, so the split is deterministic and needs no list file.
  folder: SRC/<split>/<speaker>/<clip>.<mp4|mkv|avi|mov|webm> (+ optional .txt with a "Text:" line), any
          split names; faces always come from the detector.

A clip named in a split list whose video is missing is still returned (the prep report marks it missing); a
missing split list or split folder is a UserError.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

from modeformer_jax.errors import UserError

DATASETS = ("lrs2", "lrs3", "folder")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm")
LRS2_SPLITS = {"pretrain": "pretrain", "train": "main", "val": "main", "test": "main"}
LRS3_FOLDERS = ("pretrain", "trainval", "test")
LRS3_DERIVED = ("train", "val")

# How each layout gets its face boxes: a fixed centred box (LRS2 videos are face-centred crops), the .txt
# box table with the detector as fallback (LRS3), or the detector.
BOXES_FIXED, BOXES_TXT, BOXES_DETECT = "fixed", "txt", "detector"


@dataclasses.dataclass(frozen=True)
class Clip:
  """One video to prepare. Paths are absolute; `source` is relative to SRC (what the report shows)."""
  split: str
  speaker: str
  clip: str
  video: str
  source: str
  txt: str | None  # The side .txt (transcript, maybe boxes); None when absent.
  boxes: str  # One of BOXES_FIXED, BOXES_TXT, BOXES_DETECT.

  @property
  def id(self) -> str:
    return f"{self.speaker}/{self.clip}"


def default_splits(dataset: str) -> tuple[str, ...]:
  """The splits `modeformer prep` makes when --splits is not given (folder: every split folder)."""
  return {"lrs2": tuple(LRS2_SPLITS), "lrs3": LRS3_FOLDERS, "folder": ()}[dataset]


def find_clips(dataset: str, src: str, splits: tuple[str, ...] | list[str] = (), *,
               val_fraction: float = 0.05) -> dict[str, list[Clip]]:
  """Lists the clips of each requested split (all default splits when empty), sorted by id."""
  if dataset not in DATASETS:
    raise UserError(f"dataset {dataset!r}: unknown, expected one of {', '.join(DATASETS)}")
  if not os.path.isdir(src):
    raise UserError(f"{src}: not a directory")
  splits = tuple(splits) or default_splits(dataset)
  finder = {"lrs2": _lrs2_clips, "lrs3": _lrs3_clips, "folder": _folder_clips}[dataset]
  if dataset == "folder" and not splits:
    splits = tuple(sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))
                          and not d.startswith((".", "_"))))
    if not splits:
      raise UserError(f"{src}: no split folders (expected SRC/<split>/<speaker>/<clip>.mp4)")
  out = {}
  for split in splits:
    if dataset == "lrs3":
      clips = finder(src, split, val_fraction)
    else:
      clips = finder(src, split)
    out[split] = sorted(clips, key=lambda c: c.id)
  return out


def read_transcript(txt_path: str | None) -> str:
  """The "Text:" line of an LRS .txt file ("" when there is none)."""
  if txt_path is None:
    return ""
  with open(txt_path, encoding="utf-8", errors="replace") as f:
    for line in f:
      if line.startswith("Text:"):
        return line[len("Text:"):].strip()
  return ""


def _side_txt(video: str) -> str | None:
  txt = os.path.splitext(video)[0] + ".txt"
  return txt if os.path.isfile(txt) else None


def _lrs2_root(src: str) -> tuple[str, str]:
  """(folder holding main/ and pretrain/, folder holding the split lists)."""
  for videos in (os.path.join(src, "mvlrs_v1"), src):
    if os.path.isdir(os.path.join(videos, "main")) or os.path.isdir(os.path.join(videos, "pretrain")):
      for lists in (src, os.path.dirname(os.path.abspath(src))):
        if any(os.path.isfile(os.path.join(lists, f"{s}.txt")) for s in LRS2_SPLITS):
          return videos, lists
      return videos, src
  raise UserError(f"{src}: not an LRS2 folder (no mvlrs_v1/main or mvlrs_v1/pretrain inside)")


def _lrs2_clips(src: str, split: str) -> list[Clip]:
  if split not in LRS2_SPLITS:
    raise UserError(f"split {split!r}: LRS2 has the splits {', '.join(LRS2_SPLITS)}")
  videos, lists = _lrs2_root(src)
  list_path = os.path.join(lists, f"{split}.txt")
  if not os.path.isfile(list_path):
    raise UserError(f"{list_path}: LRS2 split list for split '{split}' not found")
  folder = os.path.join(videos, LRS2_SPLITS[split])
  if not os.path.isdir(folder):
    raise UserError(f"{folder}: LRS2 folder for split '{split}' not found")
  clips = []
  with open(list_path, encoding="utf-8") as f:
    for line in f:
      fields = line.split()
      if not fields:
        continue
      speaker, _, name = fields[0].partition("/")
      if not name:
        raise UserError(f"{list_path}: line '{line.strip()}' is not '<show>/<clip>'")
      video = os.path.join(folder, speaker, name + ".mp4")
      clips.append(Clip(split=split, speaker=speaker, clip=name, video=video,
                        source=os.path.relpath(video, src), txt=_side_txt(video), boxes=BOXES_FIXED))
  return clips


def _speaker_folders(src: str, folder: str, split: str, boxes: str) -> list[Clip]:
  clips = []
  for speaker in sorted(os.listdir(folder)):
    speaker_dir = os.path.join(folder, speaker)
    if not os.path.isdir(speaker_dir):
      continue
    for name in sorted(os.listdir(speaker_dir)):
      stem, ext = os.path.splitext(name)
      if ext.lower() not in VIDEO_EXTENSIONS:
        continue
      video = os.path.join(speaker_dir, name)
      clips.append(Clip(split=split, speaker=speaker, clip=stem, video=video,
                        source=os.path.relpath(video, src), txt=_side_txt(video), boxes=boxes))
  return clips


def _val_speakers(speakers: list[str], val_fraction: float) -> set[str]:
  ranked = sorted(speakers, key=lambda s: hashlib.sha1(s.encode("utf-8")).hexdigest())
  return set(ranked[:max(1, round(val_fraction * len(ranked)))])


def _lrs3_clips(src: str, split: str, val_fraction: float) -> list[Clip]:
  if split not in LRS3_FOLDERS + LRS3_DERIVED:
    raise UserError(f"split {split!r}: LRS3 has the splits {', '.join(LRS3_FOLDERS + LRS3_DERIVED)}")
  folder = os.path.join(src, "trainval" if split in LRS3_DERIVED else split)
  if not os.path.isdir(folder):
    raise UserError(f"{folder}: LRS3 folder for split '{split}' not found")
  clips = _speaker_folders(src, folder, split, BOXES_TXT)
  if split in LRS3_DERIVED:
    if not 0.0 < val_fraction < 1.0:
      raise UserError(f"val_fraction {val_fraction}: must be in (0, 1)")
    val = _val_speakers(sorted({c.speaker for c in clips}), val_fraction)
    clips = [c for c in clips if (c.speaker in val) == (split == "val")]
  return clips


def _folder_clips(src: str, split: str) -> list[Clip]:
  folder = os.path.join(src, split)
  if not os.path.isdir(folder):
    raise UserError(f"{folder}: folder for split '{split}' not found")
  return _speaker_folders(src, folder, split, BOXES_DETECT)
