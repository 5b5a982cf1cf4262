"""N local processes of one `modeformer` command joined by jax.distributed: a multi-host run rehearsed on one
machine, each process with its own simulated CPU devices (what torchrun is for PyTorch).

Each process gets JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID (runtime.initialize_distributed
reads them), JAX_PLATFORMS=cpu and --xla_force_host_platform_device_count. Process 0's output is passed
through as it is (its progress bar too); the others' lines are prefixed with [pN]. SIGTERM and SIGINT are
forwarded to every process, as a scheduler preempting a pod signals every host. When a process fails, the
others are left to notice it through JAX's coordination service, as they would on a pod (within the heartbeat
timeout); whoever is still running `grace_s` later is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Sequence

from modeformer_jax.runtime import HEARTBEAT_ENV


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def describe_status(code: int) -> str:
  """'status 1', or 'killed by SIGKILL' for a negative Popen return code."""
  if code >= 0:
    return f"status {code}"
  try:
    return f"killed by {signal.Signals(-code).name}"
  except ValueError:
    return f"killed by signal {-code}"


def exit_status(code: int) -> int:
  """A Popen return code as a shell reports it (128 + signal number for a signal)."""
  return 128 - code if code < 0 else code


def process_env(base: dict[str, str], index: int, processes: int, devices: int, port: int,
                heartbeat_timeout_s: int) -> dict[str, str]:
  env = dict(base, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
  env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
  if processes > 1:
    env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(processes),
               JAX_PROCESS_ID=str(index), **{HEARTBEAT_ENV: str(heartbeat_timeout_s)})
  return env


def _relay(stream: IO[bytes], out: IO[str], prefix: str) -> None:
  if not prefix:  # process 0: raw chunks, so its progress bar's carriage returns stay live
    while chunk := os.read(stream.fileno(), 65536):
      out.buffer.write(chunk)
      out.flush()
    return
  for line in iter(stream.readline, b""):
    out.write(prefix + line.decode("utf-8", "replace"))
    out.flush()


def run_local_processes(argv: Sequence[str], *, processes: int, devices_per_process: int, port: int = 0,
                        heartbeat_timeout_s: int = 20, grace_s: float = 60.0,
                        log: IO[str] = sys.stderr) -> int:
  """Runs `modeformer ARGV` as `processes` local processes; returns the exit status of the run: 0 when all
  succeeded, else that of the first process to fail (for a signal, 128 + its number, e.g. 143 for SIGTERM)."""
  port = port or free_port()
  procs, relays = [], []
  for i in range(processes):
    env = process_env(os.environ, i, processes, devices_per_process, port, heartbeat_timeout_s)
    # A session of its own: a terminal's Ctrl-C reaches the launcher only, which forwards it once.
    p = subprocess.Popen([sys.executable, "-m", "modeformer_jax.cli", *argv], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    procs.append(p)
    for stream, out in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
      relays.append(threading.Thread(target=_relay, args=(stream, out, f"[p{i}] " if i else ""), daemon=True))
      relays[-1].start()

  def forward(signum, frame):
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)

  print(f"modeformer launch: {processes} processes x {devices_per_process} CPU devices, coordinator 127.0.0.1:{port}, "
        f"pids {' '.join(str(p.pid) for p in procs)}", file=log, flush=True)
  previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
  first_failure, failed_at, killed = None, None, False
  try:
    while any(p.poll() is None for p in procs):
      for i, p in enumerate(procs):
        if p.returncode not in (None, 0) and first_failure is None:
          first_failure, failed_at = i, time.monotonic()
          print(f"modeformer launch: process {i} {describe_status(p.returncode)}; waiting up to {grace_s:.0f} s "
                "for the others to stop", file=log, flush=True)
      if failed_at is not None and time.monotonic() - failed_at > grace_s and not killed:
        print(f"modeformer launch: killing the processes still running {grace_s:.0f} s after process "
              f"{first_failure} failed", file=log, flush=True)
        for p in procs:
          if p.poll() is None:
            p.kill()
        killed = True
      time.sleep(0.1)
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
  for t in relays:
    t.join(timeout=5)
  codes = [p.returncode for p in procs]
  if first_failure is None:
    first_failure = next((i for i, c in enumerate(codes) if c), None)
  if first_failure is None:
    return 0
  ended = ", ".join(f"process {i} {describe_status(c)}" for i, c in enumerate(codes))
  print(f"modeformer launch: {ended}", file=log, flush=True)
  return exit_status(codes[first_failure])
