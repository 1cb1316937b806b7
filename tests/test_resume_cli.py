"""Regression tests of the hardening issue, items 7, 9 (large images and model files) and 10: the commands
`ganzoo train` prints work as printed, resume restores the run's settings and says when a schedule changes, a failed
run leaves no half-made folder, non-finite weights never reach a resume or replace a good model, `upscale` tiles
within a memory budget and model files are memory-mapped."""

from __future__ import annotations

import gzip
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.cli import build_parser, main
from ganzoo.errors import ConfigError
from ganzoo.testing import tiny_variant
from ganzoo.train import Trainer
from ganzoo.train import checkpoint as ckpt
from ganzoo.train.lock import LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--device", "cpu", "--precision", "fp32", "--no-progress", "--sample-every", "0"]


def _tiny(name: str) -> list[str]:
    tiny = type(tiny_variant(name)).tiny
    sets = [a for k, v in tiny.items() if k != "batch_size" for a in ("--set", f"{k}={v}")]
    return sets + ["--batch-size", str(tiny.get("batch_size", 4))]


def _mnist(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def idx(path: Path, array: np.ndarray) -> None:
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        path.write_bytes(gzip.compress(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()))

    for prefix, n in (("train", 16), ("t10k", 8)):
        idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


def _printed(out: str, marker: str) -> list[str]:
    """The arguments of the command on the printed line that ends with ``# marker`` (``ganzoo`` dropped)."""
    line = next(ln for ln in out.splitlines() if ln.rstrip().endswith(f"# {marker}"))
    argv = shlex.split(line.split("#")[0])
    assert argv[0] == "ganzoo"
    return argv[1:]


def _last_step(out: Path) -> int:
    return json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"]


# ---- 10. the printed commands work as printed ------------------------------------------------------------------------


def test_printed_resume_restores_data_batch_and_model_settings_and_notes_the_schedule(tmp_path, capsys):
    data = _mnist(tmp_path / "mnist")
    out = tmp_path / "run"
    argv = ["train", "vanilla.mnist", "--data", f"mnist:{data}", "--set", "nz=16", "--set", "lr_decay=0.5",
            "--batch-size", "4", "--steps", "2", "--seed", "3", "--out", str(out), *FAST]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    again = _printed(printed, "keep training")
    assert "--data" not in again and "--batch-size" not in again and "--set" not in again
    # No --data, --batch-size, --set or --seed: all come back from the run (they used to fail or be lost).
    assert main([*again, "--no-progress"]) == 0, capsys.readouterr().err
    cap = capsys.readouterr()
    assert f"on mnist:{data}" in cap.out and "batch 4" in cap.out and "resuming the run" in cap.out
    # --steps 4 moves vanilla's final linear decay (lr_decay of the total): said in one line.
    notes = [ln for ln in cap.err.splitlines() if "learning-rate schedule" in ln]
    assert len(notes) == 1 and "--steps 4 restarts" in notes[0] and "it had 2 steps" in notes[0]
    assert _last_step(out) == 4
    meta = ckpt.read_metadata(ckpt.list_checkpoints(out / "checkpoints")[0][1])
    assert meta["ganzoo.train"]["seed"] == 3 and meta["ganzoo.config"]["nz"] == 16 and meta["ganzoo.data"]


def test_resume_mid_run_with_another_steps_says_the_schedule_moves(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "vanilla", *_tiny("vanilla"), "--out", str(out), *FAST]
    assert main([*common, "--set", "lr_decay=0.5", "--steps", "4", "--ckpt-every", "2"]) == 0
    ckpt.list_checkpoints(out / "checkpoints")[0][1].unlink()  # as if stopped at step 2 of 4
    capsys.readouterr()
    assert main([*common, "--resume", "--steps", "8"]) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "learning-rate schedule" in ln]
    assert len(notes) == 1 and "(the run had 4)" in notes[0] and "resume with --steps 4 to keep it" in notes[0]
    assert main([*common, "--resume", "--steps", "8"]) == 0  # nothing moves now: no note
    assert not [ln for ln in capsys.readouterr().err.splitlines() if "learning-rate schedule" in ln]


def test_cyclegan_resume_at_a_non_default_batch_size(tmp_path, capsys):
    out = tmp_path / "run"
    sets = [a for a in _tiny("cyclegan") if a != "--batch-size"][:-1]  # the tiny settings without their batch size
    assert main(["train", "cyclegan", *sets, "--batch-size", "4", "--steps", "1", "--out", str(out), *FAST]) == 0
    again = _printed(capsys.readouterr().out, "keep training")
    assert main(again[: again.index("--steps")] + ["--steps", "2", "--no-progress"]) == 0, capsys.readouterr().err
    assert _last_step(out) == 2


def test_interrupt_names_the_exact_resume_command(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run with space"
    original = Trainer.train_step

    def interrupted(self, batch):
        if self.step == 2:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    argv = ["train", "vanilla", *_tiny("vanilla"), "--steps", "4", "--ckpt-every", "100", "--out", str(out), *FAST]
    assert main(argv) == 130
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "interrupted at step 2" in ln)
    assert "checkpoint written to" in line
    command = line.split("continue with: ", 1)[1]
    monkeypatch.setattr(Trainer, "train_step", original)
    argv = shlex.split(command)
    assert argv[:2] == ["ganzoo", "train"] and "--resume" in argv
    assert main([*argv[1:], "--no-progress"]) == 0, capsys.readouterr().err
    assert _last_step(out) == 4  # the run's --steps 4 came back too


def test_failed_train_leaves_no_half_made_run_folder(tmp_path, capsys, monkeypatch):
    common = ["train", "vanilla", *_tiny("vanilla"), "--steps", "3", *FAST]
    new = tmp_path / "new"
    assert main([*common, "--data", f"mnist:{tmp_path / 'missing'}", "--out", str(new)]) == 2
    assert not new.exists()
    # A folder that was there keeps what it had, and gets nothing new.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert main([*common, "--data", f"mnist:{tmp_path / 'missing'}", "--out", str(kept)]) == 2
    assert sorted(p.name for p in kept.iterdir() if p.name != LOCK_NAME) == ["notes.txt"]
    # An error in a step before the first checkpoint: run.json, log.jsonl, samples ... are removed again.
    original = Trainer.train_step

    def broken(self, batch):
        if self.step == 2:
            raise ConfigError("a step failed")
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", broken)
    assert main([*common, "--out", str(new), "--log-every", "1"]) == 2
    assert "a step failed" in capsys.readouterr().err and not new.exists()
    # After a checkpoint the run is resumable: nothing is removed.
    assert main([*common, "--out", str(new), "--log-every", "1", "--ckpt-every", "1"]) == 2
    assert [s for s, _ in ckpt.list_checkpoints(new / "checkpoints")] == [2, 1] and (new / "run.json").is_file()


def test_train_help_gives_every_option_a_meaning_and_default():
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    for action in train._actions:
        if action.dest == "help":
            continue
        assert action.help and len(action.help) > 10, action.dest
        if action.option_strings:
            assert "(default:" in action.help, action.dest


# ---- 7. non-finite weights -------------------------------------------------------------------------------------------


def _poison(path: Path, key: str = "model/G.net.0.weight") -> str:
    """Rewrite a checkpoint with a NaN in one weight and a valid digest (as a diverged run could have written it)."""
    tensors, meta = ckpt.load_tensors(path)
    tensors = {k: v.clone() for k, v in tensors.items()}
    key = key if key in tensors else next(k for k in sorted(tensors) if k.startswith("model/G") and "weight" in k)
    tensors[key].view(-1)[0] = float("nan")
    fmt = meta.pop("ganzoo.format")
    ckpt.save_tensors(path, tensors, meta, fmt)
    return key


def test_resume_from_nonfinite_weights_is_refused_and_the_good_model_kept(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "vanilla", *_tiny("vanilla"), "--out", str(out), *FAST]
    assert main([*common, "--steps", "4", "--ckpt-every", "2"]) == 0
    model = (out / "model.safetensors").read_bytes()
    newest = ckpt.list_checkpoints(out / "checkpoints")[0][1]
    key = _poison(newest)
    capsys.readouterr()
    assert main([*common, "--resume", "--steps", "6"]) == 2
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert len(err.splitlines()) == 1 and "done" not in cap.out
    assert key in err and str(newest) in err and "step 2" in err and f"mv {newest} {newest}.nonfinite" in err
    assert (out / "model.safetensors").read_bytes() == model
    # Following the advice resumes from step 2.
    newest.rename(f"{newest}.nonfinite")
    assert main([*common, "--resume", "--steps", "6"]) == 0
    assert _last_step(out) == 6 and all(torch.isfinite(p).all() for p in ganzoo.load(out).parameters())


def test_nonfinite_weights_at_the_end_keep_the_good_model_and_name_only_files_that_exist(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    common = ["train", "vanilla", *_tiny("vanilla"), "--out", str(out), *FAST, "--ckpt-every", "2"]
    assert main([*common, "--steps", "2"]) == 0
    good = (out / "model.safetensors").read_bytes()
    original = Trainer.train_step

    def diverging(self, batch):
        losses = original(self, batch)
        if self.step == 3:  # the weights go bad; step 4 is skipped, but its EMA update takes the infinity in
            with torch.no_grad():
                next(self.variant.G.parameters()).fill_(float("inf"))
        return losses

    monkeypatch.setattr(Trainer, "train_step", diverging)
    capsys.readouterr()
    assert main([*common, "--resume", "--steps", "4"]) == 2
    cap = capsys.readouterr()
    assert (out / "model.safetensors").read_bytes() == good
    assert [s for s, _ in ckpt.list_checkpoints(out / "checkpoints")] == [2]  # step 4 was not written
    assert "no checkpoint written at step 4" in cap.err and "not finite" in cap.err.splitlines()[-1]
    named = [ln.split(":", 1)[1].split(" (")[0].strip() for ln in cap.out.splitlines() if ln.startswith("  ")]
    assert named and all(Path(p).exists() for p in named), named


# ---- 9. very large images and model files ----------------------------------------------------------------------------


def _sr_model(path: Path) -> Path:
    torch.manual_seed(0)
    return ganzoo.save_model(tiny_variant("srgan"), path, name="srgan")


def test_upscale_tiles_within_a_memory_budget_with_the_same_result(tmp_path, capsys):
    from ganzoo_srgan.upscale import plan_tile, upscale_image

    model = ganzoo.load(_sr_model(tmp_path / "sr.safetensors"))
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (150, 210, 3), dtype=np.uint8))
    whole = upscale_image(model, im, tile=0, max_memory=None)
    small = 12 * 2**20
    tile = plan_tile(model, im.size, small)
    assert 8 <= tile < 150  # the budget forces tiles
    tiled = upscale_image(model, im, max_memory=small)
    assert tiled.size == whole.size
    # The same image: tiles read the receptive radius as context, so only float round-off can flip a rounding.
    diff = np.abs(np.asarray(tiled).astype(int) - np.asarray(whole).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    gray = im.convert("L")
    assert upscale_image(model, gray, max_memory=small).mode == "L"
    # A budget the uint8 output alone does not fit in is one line, before any work.
    src = tmp_path / "in" / "x.png"
    src.parent.mkdir()
    im.save(src)
    argv = ["upscale", str(tmp_path / "sr.safetensors"), str(src), "-o", str(tmp_path / "o"), "--max-memory", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--max-memory" in err and len(err.splitlines()) == 1
    assert main([*argv[:-1], "16"]) == 0 and (tmp_path / "o" / "x.png").is_file()


_PEAK = """
import resource, sys
import numpy as np, torch
from PIL import Image
import ganzoo
from ganzoo_srgan.upscale import upscale_image
model = ganzoo.load(sys.argv[1])
im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1000, 1000, 3), dtype=np.uint8))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = upscale_image(model, im, max_memory=160 * 2**20)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(out.size[0], out.size[1], (after - before) * 1024)
"""


def test_upscale_of_a_large_image_never_holds_the_float32_output(tmp_path):
    """4000 x 4000 x 3 output: 192 MB as float32, 48 MB as uint8. Under a 160 MB budget (about 112 MB of it for the
    8-bit output and its PNG encoding) the peak grows by far less than the float32 output alone (measured in a fresh
    process, since ru_maxrss is a high-water mark)."""
    path = _sr_model(tmp_path / "sr.safetensors")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    w, h, grew = map(int, r.stdout.split())
    assert (w, h) == (4000, 4000)
    # Within the budget, and well below the float32 output alone (about 107 MiB measured on the 2-core CPU).
    assert grew <= 160 * 2**20 and grew < 4000 * 4000 * 3 * 4 * 0.75, f"peak grew by {grew / 2**20:.0f} MiB"


_LOAD_PEAK = """
import resource, sys
from ganzoo.train import checkpoint as ckpt
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tensors, meta = ckpt.load_tensors(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024, sum(t.numel() * t.element_size() for t in tensors.values()))
"""


def test_a_large_model_file_is_memory_mapped_not_read_twice(tmp_path):
    """A 256 MB file: reading it whole and parsing it held two copies (512 MB); mapped, the pages the digest reads
    are the only ones (at most one copy, and file-backed)."""
    path = tmp_path / "big.safetensors"
    ckpt.save_tensors(path, {f"w{i}": torch.ones(4096, 4096) for i in range(4)}, {}, ckpt.FORMAT_MODEL)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-c", _LOAD_PEAK, str(path)], capture_output=True, text=True, timeout=600, env=env
    )
    assert r.returncode == 0, r.stderr
    grew, size = map(int, r.stdout.split())
    assert size == 4 * 4096 * 4096 * 4
    assert grew < 1.25 * size, f"peak grew by {grew / 2**20:.0f} MiB for a {size / 2**20:.0f} MiB file"


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_mapped_loading_still_refuses_damaged_files(tmp_path, damage):
    path = ganzoo.save_model(tiny_variant("vanilla"), tmp_path / "m.safetensors", name="vanilla")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    else:
        data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ganzoo.errors.CheckpointError, match="truncated or corrupt|integrity"):
        ckpt.load_tensors(path)
