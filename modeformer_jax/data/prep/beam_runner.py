"""The per-clip stage of `modeformer prep` as an Apache Beam pipeline (optional extra: pip install .[beam]).

Each element runs work_files.work_one, the function the local process pool runs, and writes the
same work files; the shards are then written by the same code as a local run, on the launching machine.
Workers therefore need --src and --out at the same paths (a shared filesystem: NFS, Filestore, a gcsfuse
mount) and this package installed (see data_prep/README.md). Without a --runner among the options, Beam's
DirectRunner runs the pipeline on this machine.
"""

from __future__ import annotations

from modeformer_jax.data.lrs_layout import Clip
from modeformer_jax.data.prep.work_files import work_one
from modeformer_jax.errors import UserError


def run(jobs: list[tuple[Clip, dict]], options, work_dir: str, settings: str, beam_options: list[str]) -> None:
  """Runs work_one on every (clip, key) in `jobs`; results land in `work_dir` (read them with read_marker).

  Args:
    jobs: clips still to compute, each with its clip_key.
    options: the run's PrepOptions.
    work_dir: OUT/_work/<dataset>, visible to every worker.
    settings: options.fingerprint(), stored in each marker.
    beam_options: command-line style PipelineOptions flags, e.g. ["--runner=DataflowRunner",
      "--project=p", "--region=r", "--temp_location=gs://b/tmp", "--setup_file=./setup.py"].
  """
  try:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
  except ImportError:
    raise UserError("runner 'beam': Apache Beam is not installed (pip install 'apache-beam==2.77.*')") from None
  pipeline_options = PipelineOptions(beam_options)
  with beam.Pipeline(options=pipeline_options) as pipeline:
    _ = (pipeline
         | "Clips" >> beam.Create(jobs)
         # Spread the clips over workers: Create's elements would otherwise stay in a few large bundles.
         | "Spread" >> beam.Reshuffle()
         | "Prepare" >> beam.Map(_work, options, work_dir, settings))


def _work(job: tuple[Clip, dict], options, work_dir: str, settings: str) -> dict:
  clip, key = job
  return work_one(clip, key, options, work_dir, settings)
