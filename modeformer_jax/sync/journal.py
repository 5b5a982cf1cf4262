"""Resumable batches for `modeformer sync --summary FILE`.

Each file's summary row is appended to FILE.partial (JSON lines, flushed) as soon as it is final, so a run
that is interrupted (killed, preempted, Ctrl-C) loses at most the files in flight: the rerun with the same
arguments reads the rows back and scores only the files not in them. The summary itself is written whole at
the end (a temporary file renamed over FILE) and the journal removed. The journal's first line holds the
settings that change the numbers; a rerun with other settings stops with an error rather than mix them.
"""

from __future__ import annotations

import json
import os
from typing import Any

from modeformer_jax.errors import UserError

SUFFIX = ".partial"


class Journal:
  """The rows finished so far (`rows`: path -> row, the last row of a path wins) and an append handle."""

  def __init__(self, summary_path: str, settings: dict[str, Any]):
    self.path = summary_path + SUFFIX
    self.rows: dict[str, dict] = {}
    if os.path.exists(self.path) and os.path.getsize(self.path):  # empty: killed before its first line
      self._read(settings)
      self._file = open(self.path, "a")
    else:
      os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
      self._file = open(self.path, "w")
      self._write({"settings": settings})

  def _read(self, settings: dict[str, Any]) -> None:
    with open(self.path) as f:
      lines = f.read().splitlines()
    try:
      written = json.loads(lines[0])["settings"]
    except (json.JSONDecodeError, KeyError, TypeError, IndexError):
      written = None
    if not isinstance(written, dict):
      raise UserError(f"{self.path}: not a sync journal (its first line holds no settings); move it away")
    if written != settings:
      changed = ", ".join(f"{k} {written.get(k)!r} -> {settings.get(k)!r}" for k in sorted({*written, *settings})
                          if written.get(k) != settings.get(k))
      raise UserError(f"{self.path}: an interrupted run with other settings ({changed}); rerun with its settings "
                      f"to resume it, or delete the file to start over")
    for number, line in enumerate(lines[1:], start=2):
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        if number == len(lines):  # the line being written when the run stopped
          break
        raise UserError(f"{self.path}: line {number} is not JSON; delete the file to start over") from None
      self.rows[row["path"]] = row
    # Rewritten without a torn last line, so appends start on a line of their own.
    with open(self.path, "w") as f:
      f.write(json.dumps({"settings": settings}) + "\n")
      f.writelines(json.dumps(row) + "\n" for row in self.rows.values())

  def _write(self, record: dict) -> None:
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()

  def add(self, row: dict) -> None:
    """Records a file's final row."""
    self.rows[row["path"]] = row
    self._write(row)

  def remove(self) -> None:
    """Ends the journal, once the summary that holds its rows is written."""
    self._file.close()
    os.remove(self.path)
