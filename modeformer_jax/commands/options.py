"""Options shared by several subcommands, so they read and behave the same everywhere."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, TypeVar

from modeformer_jax.errors import UserError

T = TypeVar("T")


def add_config(parser: argparse.ArgumentParser, required: bool = True) -> None:
  from modeformer_jax.config_loading import shipped_configs

  parser.add_argument(
      "--config", required=required, metavar="NAME[:ARG]",
      help=f"a shipped config ({', '.join(shipped_configs())}), e.g. modeformer_lrs2 or tiny:synthetic, or an "
      "ml_collections config file PATH.py[:ARG] with get_config(ARG). Any field can then be overridden with "
      "--config.FIELD=VALUE (e.g. --config.stages.0.steps=100 --config.model.dtype=bfloat16).")


def parsed(flag: str, text: str, parse: Callable[[str], T]) -> T:
  """parse(text), its ValueError turned into the one-line UserError that names the flag."""
  try:
    return parse(text)
  except ValueError as e:
    raise UserError(f"{flag} {text}: {e}") from None


class _Deprecated(argparse.Action):
  """An old spelling of a flag: sets the new flag's value and says so on stderr, in one line."""

  def __init__(self, option_strings, dest, new: str, **kwargs):
    super().__init__(option_strings, dest, **kwargs)
    self.new = new

  def __call__(self, parser, namespace, values, option_string=None):
    print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.new}", file=sys.stderr)
    setattr(namespace, self.dest, values)


def add_deprecated(parser: argparse.ArgumentParser, old: str, new: str, dest: str | None = None, **kwargs) -> None:
  """`old` as a deprecated spelling of the flag `new`, kept for a release (hidden from --help). It sets `new`'s
  value unless `dest` says otherwise; kwargs (type, ...) as add_argument's."""
  parser.add_argument(old, dest=dest or new.lstrip("-").replace("-", "_"), action=_Deprecated, new=new,
                      default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def add_json(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout (for scripts)")
