"""Training metrics: TensorBoard event files in the workdir and a console progress bar (loss, accuracy,
clips/s, ETA). Only process 0 writes."""

from __future__ import annotations

import os
import sys
import time

import tqdm
from tensorboardX import SummaryWriter


class MetricsLogger:

  def __init__(self, workdir: str, *, enabled: bool = True, progress: bool = True):
    self.enabled = enabled
    self.progress = progress and enabled
    self.writer = SummaryWriter(os.path.join(workdir, "tensorboard")) if enabled else None
    self.bar = None
    self.history: list[dict] = []

  def message(self, text: str) -> None:
    if self.enabled:
      (self.bar.write if self.bar else print)(text, file=sys.stderr)

  def start_stage(self, name: str, *, total: int, done: int, batch_size: int) -> None:
    self.stage, self.batch_size = name, batch_size
    self._t, self._n = time.perf_counter(), done
    if self.progress:
      self.bar = tqdm.tqdm(total=total, initial=done, desc=f"train[{name}]", unit="step", file=sys.stderr,
                           dynamic_ncols=True)

  def step(self, global_step: int, metrics: dict[str, float]) -> None:
    """Called once per finished step with host floats (loss, accuracy, lr, ...)."""
    now = time.perf_counter()
    metrics = dict(metrics, clips_per_s=self.batch_size / max(now - self._t, 1e-9))
    self._t = now
    if not self.enabled:
      return
    self.history.append(dict(metrics, step=global_step, stage=self.stage))
    for k, v in metrics.items():
      self.writer.add_scalar(f"train/{k}", v, global_step)
    if self.bar is not None:
      self.bar.update(1)
      self.bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['accuracy']:.3f}",
                           clips_s=f"{metrics['clips_per_s']:.0f}", refresh=False)

  def scalars(self, global_step: int, metrics: dict[str, float], prefix: str) -> None:
    if self.enabled:
      for k, v in metrics.items():
        self.writer.add_scalar(f"{prefix}/{k}", v, global_step)

  def end_stage(self) -> None:
    if self.bar is not None:
      self.bar.close()
      self.bar = None
    if self.writer is not None:
      self.writer.flush()

  def close(self) -> None:
    self.end_stage()
    if self.writer is not None:
      self.writer.close()
