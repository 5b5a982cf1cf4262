"""Run a modeformer command as N local processes joined by jax.distributed, each with its own simulated CPU
devices: a multi-host launch rehearsed on one machine before spending pod time.

Examples:
  modeformer launch --processes 2 --devices-per-process 2 -- train --config configs/tiny.py:synthetic \\
      --workdir runs/tiny_mp --config.mesh.fsdp=4
  modeformer launch -n 4 -- train --config configs/modeformer_lrs2.py --workdir runs/rehearsal \\
      --config.data.data_dir=/data/prepared --config.stages.0.steps=2 ...

Every process runs the same command; process 0 prints as usual, the others' lines come prefixed [p1], [p2],
... SIGTERM or Ctrl-C reaches every process (a preemption of the whole job). When one process dies, the others
stop through JAX's coordination service within --heartbeat-timeout seconds, as on a pod; any still running
--grace seconds later are killed. Exit status: 0 when every process succeeded, else the first failure's (143:
preempted by SIGTERM, checkpoint saved; rerun the same command to resume, also with another -n).
On a real cluster, start one process per host with srun, mpirun or your TPU launcher instead (README).
"""

from __future__ import annotations

import argparse

HELP = "run a command (train) as N local processes joined by jax.distributed: rehearse a multi-host run"


def add_arguments(parser) -> None:
  parser.add_argument("-n", "--processes", type=int, default=2, help="processes to start (default 2)")
  parser.add_argument("-d", "--devices-per-process", type=int, default=1,
                      help="simulated CPU devices in each process (default 1); the mesh spans all of them")
  parser.add_argument("--port", type=int, default=0, help="coordinator port on 127.0.0.1 (default: a free one)")
  parser.add_argument("--heartbeat-timeout", type=int, default=20,
                      help="seconds after which the other processes give up on one that died (default 20; "
                      "JAX's default on real clusters is 100)")
  parser.add_argument("--grace", type=float, default=60.0,
                      help="seconds the others get to stop by themselves after one failed, then they are killed "
                      "(default 60)")
  parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                      help="the modeformer subcommand and its arguments, after --")


def run(args) -> int:
  from modeformer_jax.errors import UserError
  from modeformer_jax.train.local_launch import run_local_processes

  command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
  if not command:
    raise UserError("no command to run: give it after --, e.g. `modeformer launch -n 2 -- train --config ...`")
  if args.processes < 1 or args.devices_per_process < 1:
    raise UserError("--processes and --devices-per-process must be at least 1")
  return run_local_processes(command, processes=args.processes, devices_per_process=args.devices_per_process,
                             port=args.port, heartbeat_timeout_s=args.heartbeat_timeout, grace_s=args.grace)
