"""The package as a user installs it: a wheel built from this checkout, installed (not editable) into a fresh
virtualenv, runs `modeformer` from a folder outside the checkout and finds its shipped configs there."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

pytestmark = pytest.mark.e2e

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the wheel is built from (the rest of the checkout is not part of the package).
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "modeformer_jax", "configs")
# The tiny config narrowed further, on 8 one-second clips: the run is about its start-up, not its steps.
NARROW = ["--config.model.width=32", "--config.model.video_widths=(4,8,8,16,32)",
          "--config.model.audio_widths=(4,8,8,16,32)", "--config.model.depth=1", "--config.model.mlp_dim=64",
          "--config.stages.0.batch_size=8", "--config.data.synthetic_clips=8", "--config.data.synthetic_seconds=1.0"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[str, dict]:
  """(bin folder of a fresh virtualenv holding the built wheel, the environment to run its commands in)."""
  root = tmp_path_factory.mktemp("install")
  src = root / "src"
  src.mkdir()
  for name in SOURCES:  # built from a copy, so the build leaves nothing (build/, *.egg-info) in the checkout
    path = os.path.join(REPO, name)
    if os.path.isdir(path):
      shutil.copytree(path, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    else:
      shutil.copy(path, src / name)
  pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
  subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)],
                 check=True)
  wheel, = (root / "dist").glob("*.whl")
  venv = root / "venv"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
  python = str(venv / "bin" / "python")
  subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index", str(wheel)], check=True)
  # The dependencies come from this test environment, as a plain path: the .pth files of that folder (an
  # editable install of the checkout) are not run, so modeformer_jax can only come from the wheel.
  site = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 text=True).strip()
  with open(os.path.join(site, "test_dependencies.pth"), "w") as f:
    f.write(sysconfig.get_paths()["purelib"] + "\n")
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  return str(venv / "bin"), env


def _run(installed, tmp_path, *argv) -> str:
  bin_dir, env = installed
  done = subprocess.run([os.path.join(bin_dir, argv[0]), *argv[1:]], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stdout


def test_the_wheel_is_what_runs(installed, tmp_path):
  where = _run(installed, tmp_path, "python", "-c", "import modeformer_jax.configs as c; print(c.__file__)")
  assert where.startswith(os.path.dirname(installed[0])) and "site-packages" in where


def test_installed_params_finds_a_shipped_config(installed, tmp_path):
  out = json.loads(_run(installed, tmp_path, "modeformer", "params", "--config", "modeformer_lrs2", "--json"))
  assert out["total"] == 58_837_057


def test_installed_train_runs_two_steps_of_a_shipped_config(installed, tmp_path):
  out = json.loads(_run(installed, tmp_path, "modeformer", "train", "--config", "tiny:synthetic", "--workdir", "run",
                        "--json", "--no-progress", "--config.stages.0.steps=2", *NARROW))
  assert out["step"] == 2 and out["loss"] > 0
  assert os.path.isdir(tmp_path / "run" / "checkpoints" / "2")
