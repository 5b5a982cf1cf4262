"""Process-level JAX setup that every command shares: joining a multi-process run, and the persistent
compilation cache that lets a restarted process load its programs instead of compiling them again."""

from __future__ import annotations

import os

import jax

from modeformer_jax.errors import UserError

# Seconds without a heartbeat after which the other processes of a run are told that one died and exit.
HEARTBEAT_ENV = "MODEFORMER_HEARTBEAT_TIMEOUT_S"


def initialize_distributed() -> None:
  """jax.distributed.initialize() when a launcher says this is one process of several; one process needs none.

  SLURM, Open MPI and TPU pod slices are detected by JAX itself; by hand (or `modeformer launch`), set
  JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID on every host.
  When a process dies, the others stop with "the JAX distributed service detected fatal errors" after
  $MODEFORMER_HEARTBEAT_TIMEOUT_S seconds (JAX's default, 100, when unset).
  """
  env = os.environ
  if jax.distributed.is_initialized() or launched_processes() == 1:
    return
  by_hand = "JAX_COORDINATOR_ADDRESS" in env
  # CPU devices of different processes talk through gloo (GPUs and TPUs have their own collectives).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  kwargs = {"heartbeat_timeout_seconds": int(env[HEARTBEAT_ENV])} if HEARTBEAT_ENV in env else {}
  if by_hand:
    jax.distributed.initialize(env["JAX_COORDINATOR_ADDRESS"], int(env["JAX_NUM_PROCESSES"]),
                               int(env["JAX_PROCESS_ID"]), **kwargs)
  else:
    jax.distributed.initialize(**kwargs)


def launched_processes() -> int:
  """How many processes of this command a launcher started (by hand / `modeformer launch`, SLURM, Open MPI, a TPU
  pod slice's workers), as the environment says; 1 when none did."""
  env = os.environ
  if "JAX_COORDINATOR_ADDRESS" in env:
    return int(env["JAX_NUM_PROCESSES"])
  hosts = env.get("TPU_WORKER_HOSTNAMES", "")
  return max(int(env.get("SLURM_NTASKS", "1")), int(env.get("OMPI_COMM_WORLD_SIZE", "1")),
             len(hosts.split(",")) if hosts else 1)


def require_one_process(command: str) -> None:
  """Commands that use the devices of one host only say so instead of running N times over the same files."""
  if (n := launched_processes()) > 1:
    raise UserError(f"{command} runs as one process (on all of this host's devices), not as {n}: start it once, "
                    "outside `modeformer launch`, srun or mpirun")


def default_compilation_cache_dir() -> str:
  """$XDG_CACHE_HOME/modeformer/xla (~/.cache/modeformer/xla): per machine, since XLA's CPU programs are built for
  the host's instruction set and a cache shared by different machines would miss or be rejected."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "modeformer", "xla")


def enable_compilation_cache(setting: str = "auto") -> str | None:
  """Turns on JAX's persistent compilation cache before the first compile; returns its folder (None: off).

  setting: "auto" (JAX_COMPILATION_CACHE_DIR when set, else default_compilation_cache_dir()), "none", or a
  folder (a shared one on a pod whose hosts are identical, so that a replacement VM finds the programs too).
  """
  if setting == "none":
    return None
  path = setting
  if setting == "auto":
    path = jax.config.jax_compilation_cache_dir or default_compilation_cache_dir()
  os.makedirs(path, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", path)
  return path
