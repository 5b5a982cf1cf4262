"""The cores this process may run on, and how many threads its pools may start.

os.cpu_count() counts the machine's cores; a process limited by taskset or a container's cpuset may run on
fewer, and one worker per machine core would then oversubscribe its share. A pool of worker processes shares
the cores once more: each worker gets its share as a thread budget (share_threads), which its own pools
(FFmpeg's decoding threads, XLA's CPU thread pool) keep to, as PyTorch's DataLoader workers keep to one
thread. No jax here: worker processes and the command-line front end import this before jax starts.
"""

from __future__ import annotations

import os

# The thread budget's variable. XLA's CPU client sizes its thread pool by it too (DefaultThreadPoolSize), so
# one variable set before jax starts bounds both XLA's threads and ours.
THREADS_VAR = "NPROC"


def usable_cores() -> list[int]:
  """The cores this process may run on: its affinity where the OS has one, else 0..os.cpu_count()-1."""
  if hasattr(os, "sched_getaffinity"):
    return sorted(os.sched_getaffinity(0))
  return list(range(os.cpu_count() or 1))


def thread_budget() -> int:
  """Threads this process's pools may keep busy together: $NPROC where it is a positive integer (a worker's
  share, or what a user gives), else the cores it may run on."""
  given = os.environ.get(THREADS_VAR, "")
  if given.isdigit() and int(given) > 0:
    return int(given)
  return len(usable_cores())


def share_threads(workers: int) -> int:
  """One worker's thread budget when `workers` processes share this process's budget (at least 1)."""
  return max(1, thread_budget() // max(1, workers))


def keep_to_threads(threads: int) -> None:
  """In a fresh worker process (a pool's initializer), before jax starts: its budget becomes `threads`.

  Not pinned to cores (sched_setaffinity): measured slower on 2 cores (BENCHMARKS.md, `sync --workers`), since
  a pinned worker cannot use a core that the main process or another worker leaves idle.
  """
  os.environ[THREADS_VAR] = str(max(1, threads))
