"""Test session setup: 8 simulated CPU devices (set before jax is imported anywhere), CPU only."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

# One persistent XLA cache per test session: the trainer tests compile the same tiny step in several
# processes (the CLI runs in subprocesses), and a cache hit turns a ~20 s compile into a load.
import tempfile

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="modeformer-xla-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import pathlib  # noqa: E402
import shutil  # noqa: E402

import filelock  # noqa: E402
import pytest  # noqa: E402

TIERS = ("unit", "integration", "e2e")  # setup.cfg's markers


def pytest_collection_modifyitems(config, items):
  """Every test belongs to exactly one tier, so that -m unit / integration / e2e split the suite."""
  wrong = [item.nodeid for item in items if sum(item.get_closest_marker(t) is not None for t in TIERS) != 1]
  if wrong:
    raise pytest.UsageError(f"tests without exactly one of the markers {', '.join(TIERS)}: {', '.join(wrong[:5])}")
  # Files with end-to-end tests first, unit-only files last: the xdist workers (setup.cfg: a file at a time, in
  # this order) start the long runs early and finish with short tests that fill in.
  rank = {}
  for item in items:
    tier = next(TIERS.index(t) for t in TIERS if item.get_closest_marker(t))
    rank[item.path] = max(rank.get(item.path, 0), tier)
  items.sort(key=lambda item: -rank[item.path])

# The model every inference test (eval, sync, export) shares: configs/tiny.py trained briefly on in-memory
# synthetic clips, once per test session. TRAINED_RUN_OVERRIDES is the recipe, documented in one place.
TRAINED_RUN_OVERRIDES = ["--config.stages.0.steps=100", "--config.checkpoint_every=100"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, worker_id) -> str:
  """Workdir of a briefly trained tiny model (config.json + checkpoints/), for load_sync_model(workdir).

  Under pytest-xdist the workers share one training, done by the first worker that asks, and each worker gets
  its own copy of the folder, because tests write evaluations into it."""
  workdir = tmp_path_factory.mktemp("trained_run")
  if worker_id == "master":
    _train_tiny(workdir)
    return str(workdir)
  shared = tmp_path_factory.getbasetemp().parent / "trained_run"
  with filelock.FileLock(f"{shared}.lock"):
    if not shared.is_dir():
      partial = shared.with_name("trained_run.partial")
      shutil.rmtree(partial, ignore_errors=True)
      _train_tiny(partial)
      partial.rename(shared)
  shutil.copytree(shared, workdir, dirs_exist_ok=True)
  return str(workdir)


def _train_tiny(workdir: pathlib.Path) -> None:
  from modeformer_jax.config_loading import load_config
  from modeformer_jax.train import trainer

  trainer.train(load_config("tiny:synthetic", TRAINED_RUN_OVERRIDES), str(workdir), progress=False)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> str:
  """Workdir of the demo-sized model, for the slow tests of the issues' targets with it: `modeformer demo
  --steps 600` (about 50 min on a shared 2-core CPU), or the run MODEFORMER_DEMO_RUN names (a demo's `run`
  folder trained with this recipe) to check it again without training."""
  from modeformer_jax import cli

  if os.environ.get("MODEFORMER_DEMO_RUN"):
    return os.environ["MODEFORMER_DEMO_RUN"]
  demo = tmp_path_factory.mktemp("demo")
  assert cli.main(["demo", "--workdir", str(demo), "--steps", "600"]) == 0
  return str(demo / "run")
