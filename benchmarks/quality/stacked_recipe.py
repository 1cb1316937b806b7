"""PROTOCOLS.md section 2 with the recipe by name: ``ganzoo train dcgan.stacked`` on Stacked MNIST (1,000 modes).

Each row is what a user gets from the tag: ``ganzoo train dcgan.stacked --data stacked-mnist:MNIST_DIR --seed S``
(the tag holds the size, the data and the run's length) run as a whole command and timed, then scored as
``stacked_mnist`` scores: each channel of 26,000 generated samples labelled by ganzoo's MNIST classifier, modes hit
and KL(histogram || uniform), beside the same scores of 26,000 real stacked test samples measured in the same run.
The issue's target: all 1,000 modes and a KL within 0.01 of the real data's, within 20 minutes per command.

    python -m benchmarks.quality stacked_recipe --seeds 3

The command runs with torch's default threads, one at a time, so its wall time is the quiet machine's. The ``tiny``
budget runs the same commands with ``--steps 20`` and 2,000 samples: a smoke test of the code, not a result.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import ganzoo
from ganzoo.metrics.domain import get_domain_classifier

from .common import Report, beside, mean_se, shared, table
from .stacked_mnist import N_SAMPLES, PUBLISHED, SIZE, _generated, _stats

BUDGETS: dict[str, int | None] = {"tiny": 20, "small": None, "medium": None, "paper": None}
TAG = "dcgan.stacked"
KL_MARGIN = 0.01  # the target: KL at most the real data's + this
TARGET_SECONDS = 20 * 60


def run_one(spec: str, seed: int, steps: int | None, run_dir: Path) -> dict:
    """Train ``dcgan.stacked`` by name on ``spec`` with ``seed`` (``steps``: only to shorten a smoke test); the
    exact command and its wall time."""
    cmd = ["train", TAG, "--data", spec, "--seed", str(seed), "--out", str(run_dir), "--no-progress"]
    if steps is not None:
        cmd += ["--steps", str(steps)]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ganzoo", *cmd], capture_output=True, text=True, env=dict(os.environ))
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"`ganzoo {shlex.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    shown = [c if c != spec else "stacked-mnist:MNIST_DIR" for c in cmd[:6]] + cmd[8:]
    return {"seed": seed, "train_seconds": round(seconds, 1), "command": "ganzoo " + shlex.join(shown)}


def score(model_path: Path, classifier, n_samples: int, seed: int) -> dict[str, float]:
    """Modes and KL of ``n_samples`` samples of the model at ``model_path`` (its EMA generator, as exported)."""
    model = ganzoo.load(model_path).eval()
    return _stats(classifier, _generated(model, n_samples, seed))


def _verdict(stats: list[dict], real_kl: float) -> str:
    modes = sum(s["modes"] for s in stats) / len(stats)
    kl = sum(s["kl"] for s in stats) / len(stats)
    slow = max(s["train_seconds"] for s in stats)
    bound = real_kl + KL_MARGIN
    return (
        f"Target: modes {beside(modes, 1000, 1)} (target 1000: {'met' if modes >= 1000 else 'missed'}); KL "
        f"{beside(kl, bound, 3)} (target at most "
        f"the real data's {real_kl:.3f} + {KL_MARGIN} = {bound:.3f}: {'met' if kl <= bound else 'missed'}); slowest "
        f"command {slow:.0f} s (target {TARGET_SECONDS} s: {'met' if slow <= TARGET_SECONDS else 'missed'})."
    )


def real_floor(mnist: Path, classifier, n_samples: int) -> dict[str, float]:
    """Modes and KL of ``n_samples`` real stacked test samples, labelled by the same classifier."""
    from ganzoo.train.data import build_dataset

    real = build_dataset(f"stacked-mnist:{mnist}", ganzoo.create("dcgan", image_size=SIZE), split="test", seed=1)
    idx = torch.arange(n_samples) % len(real)
    real_batches = (
        torch.stack([it["image"] for it in real.__getitems__(idx[i : i + 1000].tolist())])
        for i in range(0, n_samples, 1000)
    )
    return _stats(classifier, real_batches)


def run(budget: str, seeds: int, out: Path) -> Path:
    """Train and score the recipe over ``seeds`` seeds; write ``<out>/stacked_recipe.md/.json/.png``."""
    mnist = shared("mnist")
    spec = f"stacked-mnist:{mnist}"
    steps = BUDGETS[budget]
    n_samples = 2000 if budget == "tiny" else N_SAMPLES
    classifier = get_domain_classifier(f"mnist:{mnist}", SIZE, 1)
    stats, picture = [], None
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as tmp:
            result = run_one(spec, seed, steps, Path(tmp) / "run")
            result.update(score(Path(tmp) / "run" / "model.safetensors", classifier, n_samples, seed))
            if seed == 0:
                picture = ganzoo.load(Path(tmp) / "run" / "model.safetensors").generate(n=32, seed=0).float().cpu()
        print(f"stacked_recipe seed {seed}: {result}", file=sys.stderr, flush=True)
        stats.append(result)
    floor = real_floor(mnist, classifier, n_samples)
    return write_report(budget, stats, floor, classifier.accuracy, n_samples, out, picture)


def write_report(
    budget: str,
    stats: list[dict],
    floor: dict[str, float],
    accuracy: float,
    n_samples: int,
    out: Path,
    picture: torch.Tensor | None,
) -> Path:
    """The table (recipe, real data, published rows), the verdict against the targets and the per-seed rows."""
    steps = BUDGETS[budget]
    report = Report("stacked_recipe", out, budget, len(stats))
    report.raw["real"] = floor
    report.raw["runs"] = stats
    seconds = [s["train_seconds"] for s in stats]
    length = "the tag's own length" if steps is None else f"--steps {steps} (a smoke test, not a result)"
    rows = [
        [
            f"`{TAG}` (ganzoo recipe)",
            mean_se([s["modes"] for s in stats], 1),
            mean_se([s["kl"] for s in stats], 3),
            f"measured, {sum(seconds) / len(seconds):.0f} s per command (max {max(seconds):.0f} s)",
        ],
        [f"real stacked MNIST, test split ({n_samples:,} samples)", floor["modes"], f"{floor['kl']:.3f}", "measured"],
    ]
    rows += [[name, m, kl, "published"] for name, m, kl in PUBLISHED]
    per_seed = [[s["seed"], s["modes"], f"{s['kl']:.3f}", s["train_seconds"]] for s in stats]
    report.add(
        f"Budget `{budget}`: {length}, {len(stats)} seeds, {n_samples:,} samples per model, each channel labelled by "
        f"ganzoo's MNIST classifier (held-out accuracy {accuracy:.3f}). Wall time: the whole `ganzoo train` "
        "command with torch's default threads, one command at a time.",
        "",
        *table(["model", "modes (of 1000)", "KL(histogram ‖ uniform)", "source"], rows),
        "",
        _verdict(stats, floor["kl"]),
        "",
        f"Per seed; command `{stats[0]['command'].replace('--seed 0', '--seed SEED')}`:",
        "",
        *table(["seed", "modes", "KL", "train wall time s"], per_seed),
        "",
        "Picture: `stacked_recipe.png`, 32 samples of seed 0.",
    )
    return report.write(picture, nrow=8)
