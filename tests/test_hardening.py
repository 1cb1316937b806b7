"""Regression tests of the hardening issue: archives cannot write outside the data folder, every file ganzoo loads
is verified (header and tensors), resume checks every tensor against the model, writes never replace special files,
one run per folder, commands never overwrite their inputs, FIFOs named like images never block a reader."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.cli import main
from ganzoo.data import download as dl
from ganzoo.data.base import DataError
from ganzoo.errors import CheckpointError, ConfigError
from ganzoo.testing import tiny_variant
from ganzoo.train import TrainConfig, Trainer
from ganzoo.train import checkpoint as ckpt
from ganzoo.train.lock import LOCK_NAME, RunFolderBusy, RunLock
from ganzoo.utils.files import atomic_write_bytes
from tests.conftest import edit_safetensors_header

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def deadline():
    """Fail instead of hanging: SIGALRM interrupts a blocking open() of a FIFO."""

    def boom(*_):
        raise TimeoutError("blocked: something opened a FIFO")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _png(path: Path, w: int = 20, h: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# ---- 1. archives -----------------------------------------------------------------------------------------------------


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w") as t:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.type, i.linkname = kind, link
    return i


def _evil_tars(d: Path) -> dict[str, Path]:
    # The long-path trick of CVE-2025-4517: a chain of deep folders and links whose resolved length passes PATH_MAX,
    # so realpath stops resolving and a later link escapes.
    deep = "d" * 247
    steps = "abcdefghijklmnop"
    chain, path = [], ""
    for s in steps:
        chain.append((_info(os.path.join(path, deep), tarfile.DIRTYPE), None))
        chain.append((_info(os.path.join(path, s), tarfile.SYMTYPE, deep), None))
        path = os.path.join(path, deep)
    long_link = os.path.join(*steps, "l" * 254)
    chain.append((_info(long_link, tarfile.SYMTYPE, "../" * len(steps)), None))
    chain.append((_info("escape", tarfile.SYMTYPE, long_link + "/../../../outside"), None))
    chain.append((_info("escape/pwned", tarfile.REGTYPE), b"x"))
    return {
        "absolute": _tar(d / "absolute.tar", [(_info(str(d.parent / "outside" / "abs")), b"x")]),
        "dotdot": _tar(d / "dotdot.tar", [(_info("ds/../../outside/dd"), b"x")]),
        "symlink-out": _tar(d / "symlink.tar", [(_info("ds/link", tarfile.SYMTYPE, "../../outside"), None)]),
        "hardlink-out": _tar(d / "hardlink.tar", [(_info("ds/h", tarfile.LNKTYPE, "../../outside/target"), None)]),
        "link-then-file": _tar(
            d / "through.tar",
            [(_info("ds/l", tarfile.SYMTYPE, str(d.parent / "outside")), None), (_info("ds/l/written"), b"x")],
        ),
        "fifo": _tar(d / "fifo.tar", [(_info("ds/x.png", tarfile.FIFOTYPE), None)]),
        "device": _tar(d / "dev.tar", [(_info("ds/null", tarfile.CHRTYPE), None)]),
        "long-path": _tar(d / "long.tar", chain),
    }


def _evil_zips(d: Path) -> dict[str, Path]:
    out = {}

    def z(name: str, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> None:
        with zipfile.ZipFile(d / f"{name}.zip", "w") as f:
            for info, data in entries:
                f.writestr(info, data)
        out[name] = d / f"{name}.zip"

    link = zipfile.ZipInfo("ds/link")
    link.external_attr = (0o120777 << 16) | 0x20
    fifo = zipfile.ZipInfo("ds/x.png")
    fifo.external_attr = 0o010644 << 16
    z("zip-absolute", [(str(d.parent / "outside" / "abs"), b"x")])
    z("zip-dotdot", [("ds/../../outside/dd", b"x")])
    z("zip-symlink", [(link, b"../../outside"), ("ds/link/written", b"x")])
    z("zip-fifo", [(fifo, b"")])
    return out


def test_crafted_archives_are_refused_with_nothing_written_outside(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "target").write_bytes(b"keep")
    archives = {**_evil_tars(tmp_path), **_evil_zips(tmp_path)}
    root = tmp_path / "root"
    root.mkdir()
    for name, archive in archives.items():
        with pytest.raises(DataError) as e:
            dl._extract(archive, root / ".extract-ds")
        msg = str(e.value)
        assert "\n" not in msg and archive.name in msg, name
        assert not (root / ".extract-ds").exists(), name  # the half-extracted folder is gone
        assert _tree(tmp_path / "outside") == ["target"], name
        assert (tmp_path / "outside" / "target").read_bytes() == b"keep"
        assert _tree(root) == [], name


def test_a_good_archive_extracts_plain_files_only(tmp_path):
    good = _tar(tmp_path / "good.tar", [(_info("ds", tarfile.DIRTYPE), None), (_info("ds/a/0.png"), b"png")])
    dl._extract(good, tmp_path / "out")
    assert _tree(tmp_path / "out") == ["ds", "ds/a", "ds/a/0.png"]
    assert (tmp_path / "out" / "ds" / "a" / "0.png").read_bytes() == b"png"


def test_download_refusal_records_no_digest_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    archive = _evil_tars(tmp_path)["symlink-out"]
    root = tmp_path / "data"
    (root / "archives").mkdir(parents=True)
    # The download itself is not under test here: the archive is already in the cache.
    import ganzoo.utils.download as udl

    monkeypatch.setattr(udl, "download_file", lambda url, dest, known: Path(dest).write_bytes(archive.read_bytes()))
    from ganzoo import registry

    entry = registry.get("download", "facades")
    monkeypatch.setitem(entry.extra, "sha256", None)
    assert main(["data", "download", "facades", "--root", str(root), "--base-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "link" in err and len(err.splitlines()) == 1
    assert not (root / "SHA256SUMS").exists()
    assert sorted(p.name for p in root.iterdir()) == ["archives"]


# ---- 2. integrity ----------------------------------------------------------------------------------------------------


def _set_lr_g(header: dict) -> None:
    config = json.loads(header["__metadata__"]["ganzoo.config"])
    assert config["lr_g"] != 0.5
    config["lr_g"] = 0.5
    header["__metadata__"]["ganzoo.config"] = json.dumps(config)


@pytest.fixture
def model_file(tmp_path) -> Path:
    torch.manual_seed(0)
    return ganzoo.save_model(tiny_variant("vanilla"), tmp_path / "m.safetensors", name="vanilla")


def test_digest_covers_header_and_tensors(model_file, tmp_path, capsys):
    assert ganzoo.load(model_file) is not None
    cases = {
        "no-digest": lambda h: h["__metadata__"].pop(ckpt.DIGEST_KEY),
        "edited-lr": _set_lr_g,
        "dropped-entry": lambda h: h["__metadata__"].pop("ganzoo.info"),
    }
    for name, edit in cases.items():
        f = tmp_path / f"{name}.safetensors"
        f.write_bytes(model_file.read_bytes())
        edit_safetensors_header(f, edit)
        assert f.read_bytes() != model_file.read_bytes(), name
        with pytest.raises(CheckpointError, match="digest" if name == "no-digest" else "integrity"):
            ganzoo.load(f)
        assert main(["sample", str(f), "-n", "2", "-o", str(tmp_path / "s.png")]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    flipped = tmp_path / "flipped.safetensors"
    data = bytearray(model_file.read_bytes())
    data[-3] ^= 0x01
    flipped.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="integrity"):
        ganzoo.load(flipped)
    # Trusted explicitly: a file without a digest loads, with a warning; a wrong digest never does.
    with pytest.warns(UserWarning, match="without verification"):
        assert ganzoo.load(tmp_path / "no-digest.safetensors", trust_unverified=True) is not None
    with pytest.raises(CheckpointError):
        ganzoo.load(tmp_path / "edited-lr.safetensors", trust_unverified=True)
    out = tmp_path / "s.png"
    assert (
        main(["sample", str(tmp_path / "no-digest.safetensors"), "-n", "2", "-o", str(out), "--trust-unverified"]) == 0
    )
    assert "without verification" in capsys.readouterr().err and out.is_file()


def test_foreign_weights_go_through_import(tmp_path, capsys):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    v = tiny_variant("vanilla")
    foreign = tmp_path / "foreign.safetensors"
    save_file({k: t.contiguous() for k, t in v.state_dict().items()}, foreign)
    with pytest.raises(CheckpointError, match="import-weights"):
        ganzoo.load(foreign)
    over = {k: str(val) for k, val in type(v).tiny.items()}
    out = ganzoo.import_weights("vanilla", foreign, tmp_path / "imported.safetensors", **over)
    loaded = ganzoo.load(out)
    for k, t in v.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], t)
    sets = [a for k, val in over.items() for a in ("--set", f"{k}={val}")]
    assert main(["import-weights", "vanilla", str(foreign), "-o", str(tmp_path / "cli.safetensors"), *sets]) == 0
    assert ganzoo.load(tmp_path / "cli.safetensors") is not None
    # Names and shapes are checked against the variant.
    bad = tmp_path / "bad.safetensors"
    state = {k: t.contiguous() for k, t in v.state_dict().items()}
    key = next(iter(state))
    state[key] = torch.zeros(3, 3)
    save_file(state, bad)
    with pytest.raises(CheckpointError, match="wrong shape"):
        ganzoo.import_weights("vanilla", bad, tmp_path / "x.safetensors", **over)
    assert main(["import-weights", "vanilla", str(bad), "-o", str(tmp_path / "x.safetensors"), *sets]) == 2
    assert key in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


# ---- 3. resume validates every tensor --------------------------------------------------------------------------------


def _cfg(**kw) -> TrainConfig:
    base = dict(device="cpu", precision="fp32", progress=False, tensorboard=False, log_every=1, n_samples=4)
    return TrainConfig(**{**base, **kw})


def _tiny_sets(name: str) -> list[str]:
    tiny = type(tiny_variant(name)).tiny
    sets = [a for k, v in tiny.items() if k != "batch_size" for a in ("--set", f"{k}={v}")]
    return sets + ["--batch-size", str(tiny.get("batch_size", 4))]


def test_resume_skips_a_verified_checkpoint_whose_optimizer_state_does_not_fit(tmp_path, capsys):
    out = tmp_path / "run"
    Trainer(tiny_variant("vanilla"), _cfg(steps=2, ckpt_every=1, sample_every=0), out=out).fit()
    tensors, meta = ckpt.load_tensors(ckpt.checkpoint_path(out / "checkpoints", 2))
    key = next(k for k in tensors if k.startswith("optim/") and k.endswith(".exp_avg"))
    tensors[key] = torch.zeros(tensors[key].numel() + 7)
    meta["ganzoo.state"]["step"] = 3
    # Written with ganzoo's own writer: the digest is valid, only the shape is wrong.
    ckpt.save_tensors(ckpt.checkpoint_path(out / "checkpoints", 3), tensors, meta, ckpt.FORMAT_CHECKPOINT)
    t = Trainer(tiny_variant("vanilla"), _cfg(steps=4, ckpt_every=1, sample_every=0), out=out, resume=True)
    t._setup()
    assert t._latest_valid_checkpoint()[0].name == "step-00000002.safetensors"
    assert key in capsys.readouterr().err
    # With no good checkpoint left, resume is a one-line error (exit 2), never a crash.
    for _, p in ckpt.list_checkpoints(out / "checkpoints"):
        if p.name != "step-00000003.safetensors":
            p.unlink()
    code = subprocess.run(
        [sys.executable, "-m", "ganzoo", "train", "vanilla", *_tiny_sets("vanilla"), "--steps", "4", "--device",
         "cpu", "--precision", "fp32", "--out", str(out), "--no-progress", "--resume"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert code.returncode == 2, code.stderr
    assert "does not fit" in code.stderr and "Traceback" not in code.stderr


def test_check_tensors_names_what_differs():
    with pytest.raises(CheckpointError, match="missing"):
        ckpt.check_tensors("f", {}, {"model/w": torch.zeros(2)})
    with pytest.raises(CheckpointError, match=r"model/w is \(3,\) float32"):
        ckpt.check_tensors("f", {"model/w": torch.zeros(3)}, {"model/w": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="int64"):
        ckpt.check_tensors("f", {"model/w": torch.zeros(2, dtype=torch.int64)}, {"model/w": torch.zeros(2)})
    ckpt.check_tensors("f", {"model/pool.x": torch.zeros(5)}, {"model/pool.x": torch.zeros(0)}, ("model/pool.",))


# ---- 4. atomic writes never replace special files --------------------------------------------------------------------


def test_atomic_write_refuses_special_files(tmp_path, capsys):
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    null_link = tmp_path / "null.png"
    null_link.symlink_to("/dev/null")
    (tmp_path / "folder.png").mkdir()
    for dest in (fifo, null_link, tmp_path / "folder.png"):
        with pytest.raises(ConfigError, match="not a regular file"):
            atomic_write_bytes(dest, b"data")
    assert fifo.is_fifo() and null_link.is_symlink() and os.readlink(null_link) == "/dev/null"
    assert (tmp_path / "folder.png").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.png", "folder.png", "null.png"]  # no temp left
    # Regular files and new paths are written; a link to a regular file writes that file.
    (tmp_path / "real.bin").write_bytes(b"old")
    (tmp_path / "link.bin").symlink_to(tmp_path / "real.bin")
    atomic_write_bytes(tmp_path / "link.bin", b"new")
    assert (tmp_path / "link.bin").is_symlink() and (tmp_path / "real.bin").read_bytes() == b"new"
    model = ganzoo.save_model(tiny_variant("vanilla"), tmp_path / "m.safetensors", name="vanilla")
    assert main(["sample", str(model), "-n", "2", "-o", str(null_link)]) == 2
    assert "not a regular file" in capsys.readouterr().err and null_link.is_symlink()


# ---- 5. one run per folder -------------------------------------------------------------------------------------------


def test_run_lock_in_process(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()
    assert not (tmp_path / "run").exists()  # a folder the lock made and nothing else used is removed again
    (tmp_path / "kept").mkdir()
    with RunLock(tmp_path / "kept"):
        pass
    with RunLock(tmp_path / "kept"):  # released: taken again
        pass


_HOLD = """
import sys, time
from ganzoo.train.lock import RunLock
RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_second_train_into_a_locked_folder_fails_at_once_and_sigkill_leaves_nothing_stale(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        argv = [sys.executable, "-m", "ganzoo", "train", "vanilla", "--set", "nz=16", "--batch-size", "4",
                "--steps", "2", "--device", "cpu", "--precision", "fp32", "--out", str(out), "--no-progress",
                "--sample-every", "0"]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        second = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
        assert second.returncode == 2, second.stderr
        assert f"pid {holder.pid}" in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert not (out / "log.jsonl").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_NAME).exists()  # the file stays; the kernel dropped the lock with the process
    third = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert third.returncode == 0, third.stderr
    assert (out / "model.safetensors").is_file()


# ---- 6. commands never overwrite their inputs ------------------------------------------------------------------------


def test_translate_and_upscale_refuse_to_overwrite_inputs(tmp_path, capsys):
    torch.manual_seed(0)
    p2p = ganzoo.save_model(tiny_variant("pix2pix"), tmp_path / "p2p.safetensors", name="pix2pix")
    sr = ganzoo.save_model(tiny_variant("srgan"), tmp_path / "sr.safetensors", name="srgan")
    src = tmp_path / "in"
    img = _png(src / "x.png")
    before = img.read_bytes()
    (tmp_path / "alias").symlink_to(src)
    for cmd, model in (("translate", p2p), ("upscale", sr)):
        for out in (src, tmp_path / "alias"):
            assert main([cmd, str(model), str(src), "-o", str(out)]) == 2, (cmd, out)
            err = capsys.readouterr().err.strip()
            assert "would overwrite the input" in err and len(err.splitlines()) == 1
            assert img.read_bytes() == before
    assert main(["upscale", str(sr), str(img), "-o", str(tmp_path / "o"), "--tile", "8"]) == 0
    assert (tmp_path / "o" / "x.png").is_file()


# ---- 9. FIFOs named like images --------------------------------------------------------------------------------------


def test_fifo_named_like_an_image_never_blocks(tmp_path, deadline, capsys):
    folder = tmp_path / "imgs"
    for i in range(4):
        _png(folder / f"{i}.png", 32, 32)
    os.mkfifo(folder / "x.png")
    from ganzoo.data.files import image_inputs, list_images

    with pytest.warns(UserWarning, match="x.png"):
        assert [p.name for p in list_images(folder)] == ["0.png", "1.png", "2.png", "3.png"]
    with pytest.raises(DataError, match="not a regular file"):
        image_inputs([folder / "x.png"])
    torch.manual_seed(0)
    v = tiny_variant("dcgan")
    Trainer(v, _cfg(steps=1, ckpt_every=0, sample_every=0), data=f"folder:{folder}", out=tmp_path / "run").fit()
    p2p = ganzoo.save_model(tiny_variant("pix2pix"), tmp_path / "p2p.safetensors", name="pix2pix")
    sr = ganzoo.save_model(tiny_variant("srgan"), tmp_path / "sr.safetensors", name="srgan")
    assert main(["translate", str(p2p), str(folder), "-o", str(tmp_path / "t")]) == 0
    assert main(["upscale", str(sr), str(folder), "-o", str(tmp_path / "u"), "--tile", "8"]) == 0
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
    assert "x.png" in capsys.readouterr().err
    assert main(["upscale", str(sr), str(folder / "x.png"), "-o", str(tmp_path / "u2")]) == 2


def test_resume_reads_a_checkpoint_without_digest_only_when_trusted(tmp_path, capsys):
    out = tmp_path / "run"
    sets = _tiny_sets("vanilla")
    common = ["train", "vanilla", *sets, "--device", "cpu", "--precision", "fp32", "--out", str(out), "--no-progress"]
    assert main([*common, "--steps", "2", "--ckpt-every", "1"]) == 0
    for _, p in ckpt.list_checkpoints(out / "checkpoints"):
        edit_safetensors_header(p, lambda h: h["__metadata__"].pop(ckpt.DIGEST_KEY))  # as an older ganzoo wrote them
    capsys.readouterr()
    assert main([*common, "--steps", "3", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "carries no ganzoo digest" in err and "--trust-unverified" in err and len(err.strip().splitlines()) == 1
    assert main([*common, "--steps", "3", "--resume", "--trust-unverified"]) == 0
    assert json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"] == 3
