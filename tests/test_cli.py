"""The `modeformer` command line agrees with itself: one spelling per option across subcommands, and the old
spellings still work for a release, with a one-line warning."""

import argparse

import pytest

from modeformer_jax import cli

pytestmark = pytest.mark.unit

# Spellings replaced by the one the other subcommands use (old -> new, in the subcommands that had them).
OLD_SPELLINGS = {"--jobs": "--workers", "--max-offset": "--max-offset-frames", "--negatives": "--num-negatives",
                 "--workdir": "--checkpoint"}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
  parser = cli.build_parser()
  action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
  return dict(action.choices)


def _visible_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
  return {s: a for a in parser._actions if a.help != argparse.SUPPRESS for s in a.option_strings}


@pytest.mark.parametrize("argv,field,value", [
    (["sync", "a.mp4", "--checkpoint", "run", "--jobs", "3"], "workers", 3),
    (["eval", "--checkpoint", "run", "--max-offset", "7"], "max_offset_frames", 7),
    (["demo", "--negatives", "5"], "num_negatives", 5),
    (["eval", "--workdir", "run"], "workdir", "run"),
])
def test_old_spellings_set_the_new_option_and_warn(argv, field, value, capsys):
  args, _ = cli.build_parser().parse_known_args(argv)
  assert getattr(args, field) == value
  old = next(a for a in argv if a in OLD_SPELLINGS)
  err = capsys.readouterr().err.strip()
  assert err == f"modeformer {argv[0]}: warning: {old} is deprecated; use {OLD_SPELLINGS[old]}"


def test_new_spellings_do_not_warn(capsys):
  args, _ = cli.build_parser().parse_known_args(["sync", "a.mp4", "--checkpoint", "run", "--workers", "3",
                                                  "--max-offset-frames", "4"])
  assert (args.workers, args.max_offset_frames) == (3, 4) and capsys.readouterr().err == ""


def test_one_spelling_per_option():
  """--checkpoint is a model folder wherever it appears (--which picks a run's checkpoint), and no subcommand
  shows an old spelling in --help; every option there is explained."""
  for name, parser in _subparsers().items():
    options = _visible_options(parser)
    assert not set(options) & set(OLD_SPELLINGS) - ({"--workdir"} if name in ("train", "demo") else set()), name
    if "--checkpoint" in options:
      assert options["--checkpoint"].metavar == "PATH" and "--which" in options, name
    assert all(a.help for a in options.values()), name
