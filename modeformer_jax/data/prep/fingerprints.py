"""What a prepared clip or split depends on, as hashes: a rerun recomputes a clip only when its files (size and
modification time) or the settings changed, and rewrites the dataset only when a split's clips did."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from modeformer_jax.data.lrs_layout import Clip


def sha(text: str) -> str:
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clip_key(clip: Clip) -> dict[str, Any]:
  """What a clip's result depends on besides the settings: its files' size and modification time."""
  key = {"source": clip.source}
  for name, path in (("video", clip.video), ("txt", clip.txt)):
    try:
      st = os.stat(path) if path else None
    except OSError:
      st = None
    key[name] = [st.st_size, st.st_mtime_ns] if st else None
  return key


def split_fingerprint(clips: list[Clip], keys: list[dict], settings: str) -> str:
  return sha(json.dumps([settings, [[c.id, k] for c, k in zip(clips, keys)]]))
