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

import pytest  # noqa: E402

TIERS = ("unit", "integration", "e2e")  # setup.cfg's markers


def pytest_collection_modifyitems(config, items):
  """Every test belongs to exactly one tier, so that -m unit / integration / e2e split the suite."""
  wrong = [item.nodeid for item in items if sum(item.get_closest_marker(t) is not None for t in TIERS) != 1]
  if wrong:
    raise pytest.UsageError(f"tests without exactly one of the markers {', '.join(TIERS)}: {', '.join(wrong[:5])}")

# The model every inference test (eval, sync, export) shares: configs/tiny.py trained briefly on in-memory
# synthetic clips, once per test session. TRAINED_RUN_OVERRIDES is the recipe, documented in one place.
TRAINED_RUN_OVERRIDES = ["--config.stages.0.steps=100", "--config.checkpoint_every=100"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> str:
  """Workdir of a briefly trained tiny model (config.json + checkpoints/), for load_sync_model(workdir)."""
  from modeformer_jax.config_loading import load_config
  from modeformer_jax.train import trainer

  workdir = str(tmp_path_factory.mktemp("trained_run"))
  trainer.train(load_config("tiny:synthetic", TRAINED_RUN_OVERRIDES), workdir, progress=False)
  return workdir


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
