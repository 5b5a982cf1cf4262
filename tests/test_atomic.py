"""Outputs are whole or absent: a write that fails midway leaves the previous file and no stray temporary."""

import os

import pytest

from modeformer_jax import atomic

pytestmark = pytest.mark.unit


def test_write_replaces_whole_files(tmp_path):
  path = tmp_path / "new" / "results.json"
  atomic.write(path, '{"a": 1}')
  atomic.write(path, b'{"a": 2}', durable=True)
  assert path.read_text() == '{"a": 2}' and os.listdir(path.parent) == ["results.json"]


def test_a_failed_write_keeps_the_previous_file(tmp_path):
  path = tmp_path / "plot.png"
  path.write_bytes(b"old")
  with pytest.raises(RuntimeError):
    with atomic.replacing(path) as tmp:
      assert tmp.endswith(".png") and os.path.dirname(tmp) == str(tmp_path)  # writers infer the format
      with open(tmp, "wb") as f:
        f.write(b"half of a new")
      raise RuntimeError("killed")
  assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["plot.png"]
