"""The `modeformer` command: one entry point, one module per subcommand in modeformer_jax/commands/.

Each command module defines HELP (one line), add_arguments(parser) and run(args) -> exit status. Modules are
imported lazily so `modeformer --help` stays fast and a command's heavy imports (jax, torch, av) load only
when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from modeformer_jax.errors import UserError

# name -> module under modeformer_jax.commands. Order is the order shown by --help.
COMMANDS: dict[str, str] = {
    "synth": "synth",
    "prep": "prep",
    "params": "params",
    "train": "train",
    "launch": "launch",
    "eval": "eval",
    "sync": "sync",
    "export": "export",
    "import-syncnet": "import_syncnet",
    "demo": "demo",
}

_HELP_LINES: dict[str, str] = {}


def _command_module(name: str):
  return importlib.import_module(f"modeformer_jax.commands.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="modeformer",
      description="ModEFormer audio-video synchronisation: data preparation, training, evaluation, "
      "offset detection and export.",
  )
  sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
  for name in COMMANDS:
    module = _command_module(name)
    p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(p)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  args, extra = parser.parse_known_args(argv)
  # grain worker processes read absl flags (SPEC section 8); nothing here defines any, so mark them parsed.
  from absl import flags
  flags.FLAGS.mark_as_parsed()
  module = _command_module(args.command)
  if extra and not getattr(module, "ACCEPTS_CONFIG_OVERRIDES", False):
    parser.error(f"unrecognized arguments: {' '.join(extra)}")
  args.overrides = extra
  try:
    return int(module.run(args) or 0)
  except UserError as e:
    print(f"modeformer {args.command}: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f"modeformer {args.command}: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
