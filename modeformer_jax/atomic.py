"""Files that are whole or absent: every output is written beside its destination and renamed over it, so a
run killed mid-write leaves the previous file (or none), never a part that a rerun would trust."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
  """Yields a temporary path in path's folder (created if needed) with path's extension, for writers that infer
  the format from it (PyAV, matplotlib); renames it over `path` when the block ends, removes it on error."""
  path = os.fspath(path)
  folder, name = os.path.split(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  stem, ext = os.path.splitext(name)
  tmp = os.path.join(folder, f".{stem}.{uuid.uuid4().hex[:12]}.partial{ext}")
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write(path: str | os.PathLike, data: str | bytes, *, durable: bool = False) -> None:
  """Writes text (UTF-8) or bytes to `path` whole. durable: fsync before the rename, for commit markers
  that must survive a power loss, not only a killed process."""
  with replacing(path) as tmp, open(tmp, "wb") as f:
    f.write(data.encode("utf-8") if isinstance(data, str) else data)
    if durable:
      f.flush()
      os.fsync(f.fileno())
