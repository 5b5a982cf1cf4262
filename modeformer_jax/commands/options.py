"""Options shared by several subcommands, so they read and behave the same everywhere."""

from __future__ import annotations

import argparse


def add_config(parser: argparse.ArgumentParser, required: bool = True) -> None:
  parser.add_argument(
      "--config", required=required, metavar="PATH[:ARG]",
      help="ml_collections config file with get_config(ARG), e.g. configs/modeformer_lrs2.py or "
      "configs/tiny.py:synthetic. Any field can then be overridden with --config.FIELD=VALUE "
      "(e.g. --config.stages.0.steps=100 --config.model.dtype=bfloat16).")


def add_json(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout (for scripts)")
