"""Data-parallel training over torch.distributed processes (launched by torchrun).

The trainer's phases reuse one forward across phases and toggle ``requires_grad`` between them, which
DistributedDataParallel's reducer does not follow. Instead each phase's gradients are averaged across ranks right
after its ``backward`` in a few flat buckets, so every rank takes the same optimizer step and the parameters stay
identical everywhere. See docs/distributed.md.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from ..errors import ConfigError

# Gradients are reduced in buckets of at most this many bytes: few collectives, bounded extra memory.
BUCKET_BYTES = 32 * 2**20


def env_world_size() -> int:
    """The WORLD_SIZE torchrun set for this process (1 when not launched by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


@dataclass
class Dist:
    """This process's place in the group: ``rank`` of ``world`` processes, ``local_rank`` on its node."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def broadcast_module(self, module: nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers (as DDP does at construction), in flat buckets."""
        tensors = [t for t in list(module.parameters()) + list(module.buffers()) if t.numel()]
        with torch.no_grad():
            for bucket in _buckets(tensors):
                flat = torch._utils._flatten_dense_tensors(bucket)
                dist.broadcast(flat, src=0)
                for t, v in zip(bucket, torch._utils._unflatten_dense_tensors(flat, bucket)):
                    t.copy_(v)

    def sync_grads(self, params: Sequence[nn.Parameter], loss: torch.Tensor) -> torch.Tensor:
        """Average the gradients of ``params`` over the ranks, in place; returns a device flag (1.0 / 0.0) that is
        set on every rank when the loss was not finite on any rank, so that all ranks skip the step together.

        A gradient that is not finite on one rank makes the averaged gradient non-finite on all ranks, so the
        trainer's gradient check agrees everywhere too. Parameters without a gradient (not reached by this phase's
        loss) are left alone; every rank runs the same code, so they are the same parameters on every rank."""
        bad = (~torch.isfinite(loss.detach().float())).float().reshape(1)
        grads = [p.grad for p in params if p.grad is not None]
        buckets = _buckets(grads)
        # The loss flag rides in the first float32 bucket (or a bucket of its own): no extra collective per phase.
        host = next((i for i, b in enumerate(buckets) if b[0].dtype == torch.float32), None)
        if host is None:
            buckets.append([])
            host = len(buckets) - 1
        for i, bucket in enumerate(buckets):
            parts = bucket + [bad] if i == host else bucket
            flat = torch._utils._flatten_dense_tensors(parts)
            dist.all_reduce(flat)
            if i == host:
                bad = (flat[-1:] > 0).float().reshape(())
                flat = flat[:-1]
            if bucket:
                flat.div_(self.world)
                for g, v in zip(bucket, torch._utils._unflatten_dense_tensors(flat, bucket)):
                    g.copy_(v)
        return bad

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Average scalar device tensors over the ranks in one collective (for logging)."""
        if not values:
            return values
        keys = sorted(values)
        flat = torch.stack([values[k].float().reshape(()) for k in keys])
        dist.all_reduce(flat)
        flat.div_(self.world)
        return dict(zip(keys, flat.unbind()))

    def gather_rng(self) -> dict[str, torch.Tensor]:
        """Every rank's RNG states, keyed ``rng/cpu/<rank>`` (and ``rng/cuda/<rank>``), on every rank."""
        out: dict[str, torch.Tensor] = {}
        states = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        for kind, state in states.items():
            # NCCL moves only device tensors; the state is a byte vector of the same length on every rank.
            local = state.to(self.device if self.device.type == "cuda" else "cpu")
            parts = [torch.empty_like(local) for _ in range(self.world)]
            dist.all_gather(parts, local)
            for r, p in enumerate(parts):
                out[f"rng/{kind}/{r}"] = p.cpu()
        return out


def _buckets(tensors: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Split into lists of one dtype and device, each at most BUCKET_BYTES (a larger tensor goes alone)."""
    out: list[list[torch.Tensor]] = []
    open_: dict[tuple[torch.dtype, torch.device], tuple[list[torch.Tensor], int]] = {}
    for t in tensors:
        key = (t.dtype, t.device)
        size = t.numel() * t.element_size()
        bucket, used = open_.get(key, (None, 0))
        if bucket is None or used + size > BUCKET_BYTES:
            bucket, used = [], 0
            out.append(bucket)
        bucket.append(t)
        open_[key] = (bucket, used + size)
    return out


def init_from_env(device: torch.device) -> tuple[Dist | None, torch.device]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT): NCCL on CUDA,
    gloo on CPU; each rank uses ``cuda:LOCAL_RANK``. Returns ``(None, device)`` when not launched with WORLD_SIZE > 1.
    An already initialized default group (a test, a launcher of its own) is reused."""
    world = env_world_size()
    if world <= 1:
        return None, device
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise ConfigError("WORLD_SIZE > 1 needs RANK and LOCAL_RANK (launch with torchrun)") from None
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {local_rank} needs cuda:{local_rank}, but only {torch.cuda.device_count()} GPUs are "
                "visible; use --nproc-per-node <= the GPU count"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kw = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(minutes=30), **kw)
        atexit.register(_destroy_group_at_exit)
    if dist.get_world_size() != world or dist.get_rank() != rank:
        raise ConfigError(
            f"the process group ({dist.get_rank()}/{dist.get_world_size()}) disagrees with RANK/WORLD_SIZE"
        )
    return Dist(rank=rank, world=world, local_rank=local_rank, device=device), device


def _destroy_group_at_exit() -> None:
    """Destroy the default group while the interpreter is still whole. A process that exits with a gloo group alive
    can die of SIGABRT during interpreter finalization (gloo's worker threads release tensors that need the GIL),
    turning a finished run into a failed one under torchrun. The group lives for the whole process (several
    Trainers may share it), so this runs at exit, not when a run ends; a group already destroyed is left alone."""
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_worker(code: int) -> NoReturn:
    """End a torchrun worker process with ``code`` without interpreter finalization.

    Even with the group destroyed at exit, finished ranks still died in finalization under load ("terminate called
    without an active exception", SIGABRT): 2 of 120 two-rank CLI runs on 2 busy CPU cores, against 2 of 40 without
    the destroy and 0 of 80 with this; torchrun then reports the whole run as failed. The exit handlers still run
    here (the group's destroy, multiprocessing's cleanup of loader workers ...) and the standard streams are
    flushed; only the interpreter's teardown and C++ static destructors, which hold nothing of the run, are
    skipped."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream has nothing left to lose
    os._exit(code)


def convert_batchnorm(module: nn.Module, d: Dist) -> nn.Module:
    """SyncBatchNorm on CUDA. On CPU this torch's SyncBatchNorm refuses to run (it raises for non-GPU input), so each
    rank keeps its own BatchNorm statistics, as DDP with ``broadcast_buffers=False`` does."""
    if d.device.type != "cuda":
        return module
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


class RankBatchSampler(Sampler[list[int]]):
    """Rank ``rank``'s slice of each global batch of ``batch_size * world`` indices drawn from ``sampler``: the ranks
    together see exactly the stream one process with the global batch would, so resume position = step * global
    batch whatever the number of processes that consumed it."""

    def __init__(self, sampler: Sampler[int], batch_size: int, rank: int, world: int):
        self.sampler, self.batch_size, self.rank, self.world = sampler, batch_size, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        it = iter(self.sampler)
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        while True:
            batch = [next(it) for _ in range(self.batch_size * self.world)]
            yield batch[lo:hi]

    def __len__(self) -> int:  # batches per epoch of the underlying sampler; the stream itself never ends
        return max(1, len(self.sampler) // (self.batch_size * self.world))  # type: ignore[arg-type]


def quiet_other_ranks() -> None:
    """Under torchrun only rank 0 prints to stdout (errors still reach stderr from every rank)."""
    if env_world_size() > 1 and os.environ.get("RANK", "0") != "0":
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def relaunch(argv: list[str], nproc: int) -> int:
    """Run ``ganzoo <argv>`` in ``nproc`` processes through torch.distributed.run (torchrun) on this machine."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return subprocess.call([*cmd, "-m", "ganzoo", *argv])


def strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without its ``--nproc N`` / ``--nproc=N`` options."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out
