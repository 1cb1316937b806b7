"""Crash safety: training killed with SIGKILL at random moments (also in the middle of checkpoint writes) always
leaves loadable checkpoints, ``--resume`` continues from the newest one and the run ends exactly where an
uninterrupted run ends; a full disk during a checkpoint write leaves the older checkpoints intact.

Starting torch costs seconds per process on this machine, so most killed runs are ``ganzoo.cli.main(["train",
...])`` in a process forked from a server that imported ganzoo once (the same code path as ``python -m ganzoo
train`` minus the imports); the first killed run is a real ``python -m ganzoo train`` subprocess.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganzoo.cli import main
from ganzoo.train import checkpoint as ckpt

STEPS = 60  # > 2 steps per killed run x KILLS: every kill lands before the run ends
KILLS = 21

SERVER = r"""
import json, os, sys
import torch  # noqa: F401 - imported once here, inherited by every forked run
import timm.utils  # noqa: F401
import ganzoo.cli, ganzoo.registry, ganzoo.train.trainer  # noqa: F401
ganzoo.registry.variants()  # load the plugins before forking
for line in sys.stdin:
    argv, log = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 1
        try:
            code = ganzoo.cli.main(argv)
        finally:
            os._exit(code)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def _argv(out: Path, cfg: Path) -> list[str]:
    return [
        "train", "vanilla", "--set", "nz=16", "--batch-size", "4", "--steps", str(STEPS), "--device", "cpu",
        "--precision", "fp32", "--out", str(out), "--no-progress", "--sample-every", "0", "--ckpt-every", "1",
        "--log-every", "1", "--config", str(cfg), "--resume",
    ]  # fmt: skip


def _newest(out: Path) -> int:
    found = ckpt.list_checkpoints(out / "checkpoints")
    return found[0][0] if found else 0


def _tmp_files(out: Path) -> list[str]:
    d = out / "checkpoints"
    return [p.name for p in d.iterdir() if p.name.startswith(".tmp-")] if d.is_dir() else []


def _wait_for(cond, timeout: float = 20.0, poll: float = 0.0005) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll)
    return False


def _check_all_loadable(out: Path) -> None:
    for _, path in ckpt.list_checkpoints(out / "checkpoints"):
        ckpt.load_tensors(path, ckpt.FORMAT_CHECKPOINT)  # raises CheckpointError on a truncated/corrupt file


def _new_records(log: Path, offset: int) -> list[dict]:
    if not log.is_file():
        return []
    out = []
    for line in log.read_bytes()[offset:].decode(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def _heal_log(log: Path) -> int:
    """A kill can cut the last log line short; end it so the next run's first record stays parseable (bookkeeping
    of this test only: the trainer never reads its log)."""
    if log.is_file() and log.read_bytes()[-1:] not in (b"", b"\n"):
        with open(log, "ab") as f:
            f.write(b"\n")
    return log.stat().st_size if log.is_file() else 0


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    rng = random.Random(1234)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("train:\n  tensorboard: false\n  keep: 3\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    child_log = str(tmp_path / "children.log")

    def start(out: Path) -> int:
        server.stdin.write(json.dumps([_argv(out, cfg), child_log]) + "\n")
        server.stdin.flush()
        return int(server.stdout.readline())

    def status() -> int:
        return int(server.stdout.readline())

    try:
        # The reference: one uninterrupted run.
        straight = tmp_path / "straight"
        start(straight)
        assert status() == 0, Path(child_log).read_text()[-3000:]

        out, log = tmp_path / "crashy", tmp_path / "crashy" / "log.jsonl"
        kills, mid_write, modes = 0, 0, ["after-checkpoint", "mid-write", "random-delay"]
        rounds, proc = 0, None
        while kills < KILLS:
            rounds += 1
            assert rounds < 4 * KILLS, f"only {kills} kills landed"
            before, offset, stale = _newest(out), _heal_log(log), set(_tmp_files(out))
            assert before < STEPS, f"the run ended after {kills} kills"
            mode = modes[rounds % 3]
            real = kills >= 1 and before >= 1 and proc is None
            if real:
                # One resume (of a run with a checkpoint: the CLI builds the weights before seeding, and a fresh
                # interpreter's RNG differs from the forking server's) is a real `python -m ganzoo train` process,
                # killed right after its first new checkpoint.
                proc = subprocess.Popen([sys.executable, "-m", "ganzoo", *_argv(out, cfg)], env=env, **_quiet())
                pid, mode = proc.pid, "after-checkpoint"
            else:
                pid = start(out)
            if mode == "after-checkpoint":  # just after a rename: the old ones are being pruned, the next step runs
                _wait_for(lambda b=before: _newest(out) > b, timeout=120)
                t_kill = time.monotonic() + rng.uniform(0, 0.02)
                _wait_for(lambda b=before, t=t_kill: time.monotonic() > t or _newest(out) >= b + 2)
            elif mode == "mid-write":  # a temporary checkpoint file exists: the write is in progress
                _wait_for(lambda st=stale: bool(set(_tmp_files(out)) - st))
            else:  # anywhere: start-up, reading the checkpoint to resume from, training, writing (<= 2 steps on)
                t_kill = time.monotonic() + rng.uniform(0.0, 1.5)
                _wait_for(lambda b=before, t=t_kill: time.monotonic() > t or _newest(out) >= b + 2)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            st = _wait_status(proc) if real else status()
            if not os.WIFSIGNALED(st):
                assert os.WEXITSTATUS(st) == 0, Path(child_log).read_text()[-3000:]
                continue  # it finished first: not a kill
            kills += 1
            mid_write += bool(set(_tmp_files(out)) - stale)  # a new orphaned temporary file: killed inside a write
            _check_all_loadable(out)
            # The killed run resumed from the newest checkpoint of the run before it: no step was lost or redone.
            steps = [r["step"] for r in _new_records(log, offset)]
            if steps:
                assert steps[0] == before + 1, (mode, before, steps)
                assert steps == list(range(before + 1, before + 1 + len(steps)))
        # Finally an undisturbed resume to the end.
        offset = _heal_log(log)
        before = _newest(out)
        start(out)
        assert status() == 0, Path(child_log).read_text()[-3000:]
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    steps = [r["step"] for r in _new_records(log, offset)]
    assert steps == list(range(before + 1, STEPS + 1))
    assert _newest(out) == STEPS and (out / "model.safetensors").is_file()
    assert not _tmp_files(out), "a resumed run leaves no half-written checkpoint behind"
    assert mid_write >= 1, "no kill landed during a checkpoint write"
    print(f"{kills} kills in {rounds} killed runs, {mid_write} inside a checkpoint write")
    # Exact: the killed-and-resumed run ends bit for bit where the uninterrupted one does.
    a, _ = ckpt.load_tensors(ckpt.checkpoint_path(straight / "checkpoints", STEPS))
    b, _ = ckpt.load_tensors(ckpt.checkpoint_path(out / "checkpoints", STEPS))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def _wait_status(proc: subprocess.Popen) -> int:
    """``proc``'s exit in ``os.waitpid``'s encoding."""
    rc = proc.wait()
    return -rc if rc < 0 else rc << 8


def _quiet() -> dict:
    return {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def test_disk_full_during_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    argv = ["train", "vanilla", "--set", "nz=16", "--batch-size", "4", "--device", "cpu", "--precision", "fp32"]
    argv += ["--out", str(out), "--no-progress", "--sample-every", "0", "--ckpt-every", "1", "--resume"]
    assert main([*argv, "--steps", "1"]) == 0
    good = ckpt.checkpoint_path(out / "checkpoints", 1)
    real_fdopen = os.fdopen

    class Full:
        """A file that takes half of what is written, then reports a full disk."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(bytes(data[: len(data) // 2]))
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __getattr__(self, name):
            return getattr(self.f, name)

    def fdopen(fd, *a, **kw):
        f = real_fdopen(fd, *a, **kw)
        return Full(f) if ".tmp-step-" in os.readlink(f"/proc/self/fd/{fd}") else f

    monkeypatch.setattr(os, "fdopen", fdopen)
    capsys.readouterr()
    assert main([*argv, "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "disk full" in err and "step-00000002.safetensors" in err, err
    monkeypatch.undo()
    assert [p for _, p in ckpt.list_checkpoints(out / "checkpoints")] == [good]
    assert not _tmp_files(out), "the half-written temporary file is removed"
    ckpt.load_tensors(good, ckpt.FORMAT_CHECKPOINT)  # still valid
    assert main([*argv, "--steps", "2"]) == 0  # space is back: the run continues from step 1
    assert _newest(out) == 2
