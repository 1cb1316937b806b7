"""Data-parallel training with 2 gloo processes on CPU (ganzoo/train/distributed.py).

One spawn of 2 ranks runs every distributed scenario of this file (a process start costs seconds here); the tests
then compare what the ranks wrote against single-process runs and against each other.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from ganzoo_vanilla.variant import VanillaGAN
from safetensors.torch import load_file, save_file
from torch import Tensor

from ganzoo.testing import tiny_variant
from ganzoo.train import TrainConfig, Trainer
from ganzoo.train import checkpoint as ckpt
from ganzoo.train.distributed import RankBatchSampler, strip_nproc
from ganzoo.variant import StepState

B = 4  # per-rank batch; the single-process reference uses 2 * B
K = 3  # steps of the gradient comparison


class DataNoiseVanilla(VanillaGAN):
    """Tiny vanilla GAN whose latent code is a fixed projection of each real image instead of fresh noise.

    Training is then a function of the data alone, so 2 ranks x batch B and 1 process x batch 2B see the same
    samples *and* the same fakes, and the only difference between them is how the batch gradient is formed
    (mean over 2B in one process vs. the average of two per-rank means after the all-reduce). Comparing their
    weights after K steps therefore tests the gradient averaging of both phases (D and G), the data sharding and
    the identical optimizer steps; it does not test the per-rank noise streams (test_resume_under_two_processes
    covers those: they must survive a resume exactly)."""

    def __init__(self) -> None:
        super().__init__(VanillaGAN.make_config({"nz": 16, "batch_size": B}))
        g = torch.Generator().manual_seed(1)
        self._proj = torch.randn(28 * 28, 16, generator=g) / 28.0  # not a buffer: stays out of the state dict

    def _z(self, real: Tensor) -> Tensor:
        return real.flatten(1) @ self._proj.to(real.device)

    def loss(self, phase: str, batch: dict[str, Any], state: StepState) -> dict[str, Tensor]:
        real = batch["image"]
        fake = self.G(self._z(real))
        if phase == "d":
            loss = self.adv.d(real=self.D(real), fake=self.D(fake.detach()))
        else:
            loss = self.adv.g(real=self.adv.real_logits_for_g(lambda: self.D(real)), fake=self.D(fake))
        return {"loss": loss}


class NaNLossOnRank1(VanillaGAN):
    """Tiny vanilla GAN whose D loss is NaN at step 1 on rank 1 only, with finite gradients (a constant NaN is
    added): only the all-reduced loss flag can make rank 0 skip that step too."""

    def __init__(self) -> None:
        super().__init__(VanillaGAN.make_config({"nz": 16, "batch_size": B}))

    def loss(self, phase: str, batch: dict[str, Any], state: StepState) -> dict[str, Tensor]:
        out = super().loss(phase, batch, state)
        if phase == "d" and state.step == 1 and os.environ.get("RANK") == "1":
            out["loss"] = out["loss"] + float("nan")
        return out


def _save_rank_state(t: Trainer, path: Path) -> None:
    save_file({k: v.contiguous() for k, v in t.variant.state_dict().items()}, str(path))


def _cfg(steps: int, batch: int, ckpt_every: int = 0) -> TrainConfig:
    return TrainConfig(
        steps=steps,
        batch_size=batch,
        device="cpu",
        precision="fp32",
        log_every=1,
        sample_every=0,
        ckpt_every=ckpt_every,
        keep=100,
        n_samples=4,
        progress=False,
        tensorboard=False,
        num_workers=0,
    )


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    out = Path(root)
    # (a) gradient averaging: the data-determined variant, K steps of batch B per rank.
    torch.manual_seed(0)
    t = Trainer(DataNoiseVanilla(), _cfg(K, B), out=out / "dp", variant_name="vanilla")
    t.fit()
    _save_rank_state(t, out / f"dp-rank{rank}.safetensors")
    # A non-finite loss on one rank: both ranks skip the step.
    t = Trainer(NaNLossOnRank1(), _cfg(2, B), out=out / "nan", variant_name="vanilla")
    t.config.log_every = 2
    t.fit()
    _save_rank_state(t, out / f"nan-rank{rank}.safetensors")
    # (b) resume: dcgan (BatchNorm, per-rank noise) 4 steps straight vs. 2 steps + resume to 4.
    for name, steps, resume in (("straight", 4, False), ("resumed", 2, False), ("resumed", 4, True)):
        torch.manual_seed(0)
        t = Trainer(tiny_variant("dcgan"), _cfg(steps, B, 2), out=out / name, resume=resume, variant_name="dcgan")
        t.fit()
    import torch.distributed as dist

    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(2, _free_port(), str(root)), nprocs=2, join=True)
    return root


def _model(path: Path) -> dict[str, Tensor]:
    tensors, _ = ckpt.load_tensors(path, ckpt.FORMAT_CHECKPOINT)
    return {k: v for k, v in tensors.items() if k.startswith("model/")}


def test_two_ranks_match_one_process_with_the_global_batch(two_rank_runs: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    init = {k: v.clone() for k, v in DataNoiseVanilla().state_dict().items()}  # where both runs started
    torch.manual_seed(0)
    Trainer(DataNoiseVanilla(), _cfg(K, 2 * B), out=tmp_path / "ref", variant_name="vanilla").fit()
    got = _model(ckpt.checkpoint_path(two_rank_runs / "dp" / "checkpoints", K))
    want = _model(ckpt.checkpoint_path(tmp_path / "ref" / "checkpoints", K))
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5, msg=f"{k} differs")
    moved = [k for k in want if not torch.equal(want[k], init[k[len("model/") :]])]
    assert moved, "training did not change the weights: the comparison would be vacuous"
    # The ranks stayed bit-identical (the all-reduce hands every rank the same averaged gradients).
    r0, r1 = (load_file(str(two_rank_runs / f"dp-rank{r}.safetensors")) for r in (0, 1))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)


def test_resume_under_two_processes_is_exact(two_rank_runs: Path) -> None:
    a, meta = ckpt.load_tensors(ckpt.checkpoint_path(two_rank_runs / "straight" / "checkpoints", 4))
    b, _ = ckpt.load_tensors(ckpt.checkpoint_path(two_rank_runs / "resumed" / "checkpoints", 4))
    assert meta["ganzoo.state"]["world_size"] == 2
    assert meta["ganzoo.state"]["data_position"] == 4 * 2 * B
    assert {"rng/cpu/0", "rng/cpu/1"} <= a.keys()
    assert not torch.equal(a["rng/cpu/0"], a["rng/cpu/1"]), "both ranks drew the same noise"
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"


def test_nonfinite_loss_on_one_rank_is_skipped_on_all(two_rank_runs: Path) -> None:
    import json

    rec = json.loads((two_rank_runs / "nan" / "log.jsonl").read_text().splitlines()[-1])
    assert rec["step"] == 2 and rec["skipped_steps"] == 1
    r0, r1 = (load_file(str(two_rank_runs / f"nan-rank{r}.safetensors")) for r in (0, 1))
    assert all(torch.equal(r0[k], r1[k]) for k in r0), "the ranks diverged: one skipped, the other stepped"
    assert all(torch.isfinite(v).all() for v in r0.values())


def test_rank0_alone_writes(two_rank_runs: Path) -> None:
    run = two_rank_runs / "straight"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-00000002.safetensors",
        "step-00000004.safetensors",
    ]
    lines = (run / "log.jsonl").read_text().splitlines()
    assert len(lines) == 4  # one record per step, not one per rank
    assert (run / "model.safetensors").is_file() and len(list((run / "samples").iterdir())) == 1


def test_rank_batches_slice_the_global_stream() -> None:
    from torch.utils.data import BatchSampler

    from ganzoo.train.data import InfiniteSampler

    glob = iter(BatchSampler(InfiniteSampler(10, seed=3, start=6), 6, drop_last=True))
    ranks = [iter(RankBatchSampler(InfiniteSampler(10, seed=3, start=6), 2, r, 3)) for r in range(3)]
    for _ in range(4):
        assert next(glob) == [i for it in ranks for i in next(it)]


def test_strip_nproc() -> None:
    assert strip_nproc(["train", "x", "--nproc", "2", "--steps", "3", "--nproc=4"]) == ["train", "x", "--steps", "3"]


@pytest.mark.slow
def test_cli_nproc_relaunches_through_torchrun(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganzoo", "train", "vanilla", "--nproc", "2", "--set", "nz=16", "--batch-size", "2"]
    cmd += ["--steps", "2", "--device", "cpu", "--precision", "fp32", "--out", str(out), "--no-progress"]
    cmd += ["--sample-every", "0", "--ckpt-every", "1", "--log-every", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("done: 2 steps") == 1  # the other rank's stdout is silenced
    _, meta = ckpt.load_tensors(out / "checkpoints" / "step-00000002.safetensors")
    assert meta["ganzoo.state"]["world_size"] == 2


_EXIT_PROBE = """
import atexit, sys
import torch
import torch.distributed as dist
from ganzoo.train.distributed import init_from_env

# Registered before the group exists, so it runs after ganzoo's own exit handler (atexit runs last-in first-out).
atexit.register(lambda: print(f"rank {dist.get_rank() if dist.is_initialized() else '-'} "
                              f"group alive at exit: {dist.is_initialized()}", file=sys.stderr))
d, _ = init_from_env(torch.device("cpu"))
t = torch.ones(3)
dist.all_reduce(t)
assert t.tolist() == [2.0, 2.0, 2.0]
"""


@pytest.mark.slow
def test_a_group_ganzoo_created_is_destroyed_before_the_interpreter_exits(tmp_path: Path) -> None:
    # A gloo group still alive in interpreter finalization can abort the process (SIGABRT) after a finished run.
    script = tmp_path / "probe.py"
    script.write_text(_EXIT_PROBE)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.count("group alive at exit: False") == 2, r.stderr[-2000:]


def test_exit_worker_runs_the_exit_handlers_flushes_and_keeps_the_code(tmp_path: Path) -> None:
    # A torchrun worker ends through exit_worker: what the run registered for exit still runs, nothing printed is
    # lost, and the exit code is the command's, while the interpreter's own teardown is skipped.
    script = tmp_path / "w.py"
    script.write_text(
        "import atexit, sys\n"
        "from ganzoo.train.distributed import exit_worker\n"
        "atexit.register(lambda: print('handler ran', file=sys.stderr))\n"
        "class Finalized:\n"
        "    def __del__(self):\n"
        "        print('finalizer ran', file=sys.stderr)\n"
        "keep = Finalized()\n"
        "sys.stdout.write('unflushed tail')\n"
        "exit_worker(3)\n"
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3
    assert r.stdout == "unflushed tail"
    assert "handler ran" in r.stderr and "finalizer ran" not in r.stderr  # no teardown of module globals
