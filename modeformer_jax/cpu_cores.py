"""The cores this process may run on, which size the default number of worker processes.

os.cpu_count() counts the machine's cores; a process limited by taskset or a container's cpuset may run on
fewer, and one worker per machine core would then oversubscribe its share. No jax here: worker processes and
the command-line front end import this before deciding where jax may run.
"""

from __future__ import annotations

import os


def usable_cores() -> list[int]:
  """The cores this process may run on: its affinity where the OS has one, else 0..os.cpu_count()-1."""
  if hasattr(os, "sched_getaffinity"):
    return sorted(os.sched_getaffinity(0))
  return list(range(os.cpu_count() or 1))
