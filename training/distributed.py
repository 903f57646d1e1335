"""Data-parallel training over processes with ``torch.distributed`` (DDP).

Started by ``torchrun`` (``RANK``, ``WORLD_SIZE`` and the rendezvous in the environment; or
``earmark train asr --nproc N``, which runs torchrun itself), a training run joins the process
group (NCCL on GPUs, gloo on CPUs) and:

- every rank draws the same global batches (the epoch's shuffle is seeded), collates and
  augments the whole batch with the same random state, and computes the loss on its share of
  the rows (``share``: rows ``rank::size``), weighted so that DDP's averaged gradient is the
  whole batch's: one global batch split across ranks, the model as in one process;
- what depends on a clock (the budget's progress, which sets the learning rate and the end,
  and when dev is checked) is rank 0's, broadcast (``World.agreed``), so ranks never disagree
  on a step;
- rank 0 alone writes: checkpoints, ``last/``, logs and TensorBoard files; the others wait at a
  barrier while it checks dev or tunes decoding;
- a resumed run reads ``last/`` on every rank (rank 0 repairs a save a kill cut first).

A rank that dies (killed, out of memory) ends the run: torchrun stops the others and reports
the rank; ``--resume`` continues from the last state rank 0 saved.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

# rank 0 may tune decoding or check dev for a while: the others wait at a barrier that long
BARRIER_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes (rank 0)."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def agreed(self, value: float) -> float:
        """Rank 0's ``value`` on every rank (``value`` itself in one process)."""
        if not self.parallel:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64)
        dist.broadcast(t, src=0)
        return float(t.item())

    def barrier(self) -> None:
        if self.parallel:
            dist.barrier()

    def main_first(self, fn: Callable[[], T]) -> T:
        """``fn()`` on rank 0, then (once it is done) on the other ranks: for a step that may
        repair files that every rank then reads."""
        if self.main:
            out = fn()
            self.barrier()
            return out
        self.barrier()
        return fn()

    def total(self, value: float) -> float:
        """The sum of ``value`` over the ranks (of share-weighted losses: the whole batch's)."""
        if not self.parallel:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item())


def join(device: torch.device) -> World:
    """Join the process group torchrun describes in the environment (gloo on CPU, NCCL on
    CUDA); one process outside torchrun, or with ``WORLD_SIZE=1``."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=BARRIER_TIMEOUT)
    return World(dist.get_rank(), dist.get_world_size())


def leave(world: World) -> None:
    if world.parallel and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """``model`` under DDP when there are several ranks (gradients averaged in the backward
    pass; rank 0's weights and buffers broadcast to all), else ``model`` itself."""
    if not world.parallel:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def share(n: int, world: World) -> tuple[list[int], float]:
    """This rank's rows of a global batch of ``n`` and the weight of its mean loss, so that
    the average of the ranks' gradients (DDP) is the gradient of the whole batch's mean loss.

    A rank left without rows (a batch smaller than the world) computes row 0 with weight 0:
    every rank must take part in each step's gradient exchange."""
    rows = list(range(world.rank, n, world.size))
    if not rows:
        return [0], 0.0
    return rows, world.size * len(rows) / n


def rows_of(batch: dict[str, Any], rows: list[int]) -> dict[str, Any]:
    """The ``rows`` of a collated ASR batch (``training.asr.data.collate``: labels are
    concatenated, so they are cut by their lengths)."""
    if len(rows) == int(batch["lengths"].shape[0]):
        return batch
    index = torch.tensor(rows, dtype=torch.long)
    ends = torch.cumsum(batch["label_lengths"], 0)
    starts = ends - batch["label_lengths"]
    labels = torch.cat([batch["labels"][int(starts[r]) : int(ends[r])] for r in rows])
    return {
        "features": batch["features"][index],
        "attention_mask": batch["attention_mask"][index],
        "lengths": batch["lengths"][index],
        "labels": labels,
        "label_lengths": batch["label_lengths"][index],
    }
