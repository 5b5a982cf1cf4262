"""The per-clip stage in a local process pool (one process per core), or in this process with one worker."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from typing import Iterator

import cv2

from modeformer_jax.cpu_cores import keep_to_threads, share_threads
from modeformer_jax.data.lrs_layout import Clip
from modeformer_jax.data.prep.options import PrepOptions
from modeformer_jax.data.prep.work_files import work_one


def _init_worker(threads: int) -> None:
  # The workers together fill the machine; library thread pools sized to all of it would oversubscribe it.
  cv2.setNumThreads(1)
  keep_to_threads(threads)


def run_local(jobs: list[tuple[Clip, dict]], options: PrepOptions, work_dir: str, settings: str,
               workers: int) -> Iterator[dict]:
  if workers <= 1:
    for clip, key in jobs:
      yield work_one(clip, key, options, work_dir, settings)
    return
  # spawn, not fork: the parent may hold threads (TFDS, tqdm) whose locks a forked child would inherit.
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                              initializer=_init_worker,
                                              initargs=(share_threads(workers),)) as pool:
    futures = [pool.submit(work_one, clip, key, options, work_dir, settings) for clip, key in jobs]
    try:
      for future in concurrent.futures.as_completed(futures):
        yield future.result()
    finally:
      for future in futures:
        future.cancel()
