"""Shared pieces of the quality experiments: budgets, training through ganzoo's own Trainer, mean ± standard error,
and writing each experiment's table (markdown), raw numbers (JSON) and pictures (PNG) under ``docs/benchmarks/``."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

import ganzoo
from ganzoo.train import TrainConfig, Trainer

BUDGETS = ("small", "medium", "paper", "tiny")  # tiny: a smoke test of the code, not a result
DATA = Path(os.environ.get("GANZOO_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))


class Skip(Exception):
    """An experiment cannot run here (its data is absent); the message says what is missing."""


def shared(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        raise Skip(f"{path} is absent (set GANZOO_SHARED_DATA to the folder holding mnist/ and sr/)")
    return path


def train(
    name: str,
    data: str | None,
    steps: int,
    seed: int,
    *,
    options: dict[str, Any] | None = None,
    out: str | Path | None = None,
    losses_to: str | Path | None = None,
    **config: Any,
) -> ganzoo.GANVariant:
    """Build variant ``name`` with config ``options`` after seeding (so ``seed`` fixes the initial weights too),
    train it for ``steps`` on ``data`` (``None``: its default data) with ganzoo's Trainer, quietly, and return the
    exported model, EMA generator included (what ``ganzoo.load`` gives). ``config``: TrainConfig fields;
    ``losses_to``: where to copy the run's loss curves (``losses.png``)."""
    torch.manual_seed(seed)
    variant = ganzoo.create(name, **(options or {}))
    cfg = TrainConfig(
        steps=steps,
        seed=seed,
        progress=False,
        tensorboard=False,
        sample_every=0,
        ckpt_every=0,
        log_every=max(1, steps // 20),
        **config,
    )
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(out) if out is not None else Path(tmp)
        Trainer(variant, cfg, data=data, out=run_dir).fit()
        trained = ganzoo.load(run_dir / "model.safetensors")
        if losses_to is not None and (run_dir / "losses.png").exists():
            Path(losses_to).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / "losses.png", losses_to)
    return trained.eval()


def mean_se(xs: Sequence[float], digits: int = 2) -> str:
    xs = [float(x) for x in xs if not math.isnan(float(x))]
    if not xs:
        return "n/a"
    m = sum(xs) / len(xs)
    if len(xs) == 1:
        return f"{m:.{digits}f} (1 seed)"
    se = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 / len(xs) ** 0.5
    return f"{m:.{digits}f} ± {se:.{digits}f}"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool] | None = None) -> list[str]:
    right = right or [i > 0 for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---:" if r else "---" for r in right) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


class Report:
    """One experiment's output: markdown lines, raw numbers, and pictures, written as ``<out>/<name>.md/.json/.png``."""

    def __init__(self, name: str, out: str | Path, budget: str, seeds: int):
        self.name, self.out, self.budget, self.seeds = name, Path(out), budget, seeds
        self.lines: list[str] = []
        self.raw: dict[str, Any] = {"experiment": name, "budget": budget, "seeds": seeds, "torch": torch.__version__}
        self.started = time.time()

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def write(self, picture: torch.Tensor | None = None, nrow: int = 8) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        self.raw["seconds"] = round(time.time() - self.started, 1)
        md = self.out / f"{self.name}.md"
        md.write_text("\n".join(self.lines) + "\n")
        (self.out / f"{self.name}.json").write_text(json.dumps(self.raw, indent=1, default=float))
        if picture is not None:
            from ganzoo.utils.images import save_grid

            save_grid(picture, self.out / f"{self.name}.png", nrow=nrow)
        return md


Experiment = Callable[[str, int, Path], Path]


def beside(value: float, bound: float, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, or more where rounding would put it on the other side of ``bound`` (a mean
    of 24.9997 against a target of 25 reads 24.9997, not 25.00)."""
    for d in range(digits, 10):
        text = f"{value:.{d}f}"
        if (float(text) >= bound) == (value >= bound) and (float(text) > bound) == (value > bound):
            return text
    return repr(value)
