"""PROTOCOLS.md section 1: mode collapse on the 2D ring (8 modes) and grid (25 modes).

Trains the vanilla GAN (PacGAN's 2D MLPs) with and without PacGAN packing over several seeds, scores 2,500 samples
(high quality = within 3 std of the nearest mode; modes captured; reverse KL of the mode histogram to uniform) and
writes a markdown table with mean ± standard error beside the published rows, plus a scatter picture.

    python -m benchmarks.quality mode2d --budget small --seeds 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ganzoo.data.toy2d import GRID25_STD, RING8_STD, grid25_modes, ring8_modes
from ganzoo.metrics.modes import mode_stats

from .common import Report, mean_se, table, train

BUDGETS = {"tiny": 20, "small": 2000, "medium": 10000, "paper": 100000}  # steps of batch 100
PUBLISHED = {  # PacGAN Table 1: modes / % high quality / reverse KL
    "ring8": [("GAN (PacGAN Table 1)", 6.3, 98.2, 0.45), ("PacGAN2", 7.9, 95.6, 0.07), ("PacGAN4", 7.8, 95.9, 0.07)],
    "grid25": [
        ("GAN (PacGAN Table 1)", 17.3, 94.8, 0.70),
        ("PacGAN2", 23.8, 91.3, 0.13),
        ("PacGAN4", 24.8, 93.6, 0.04),
    ],
}
CONFIGS = {"GAN": {}, "PacGAN2": {"pack": 2}}


def run_one(data: str, config: dict, seed: int, steps: int, losses_to: Path | None = None) -> tuple[dict, torch.Tensor]:
    model = train(
        f"vanilla.{data}",
        None,
        steps,
        seed,
        options=config,
        losses_to=losses_to,
        device="cpu",
        precision="fp32",
        ema_decay=0,
    )
    samples = model.eval().generate(n=2500, seed=10_000 + seed)
    centres, std = (ring8_modes(), RING8_STD) if data == "ring8" else (grid25_modes(), GRID25_STD)
    return mode_stats(samples, centres, std), samples


def run(budget: str, seeds: int, out: Path, datasets: tuple[str, ...] = ("ring8", "grid25")) -> Path:
    """Train and score every configuration on ``datasets``; write ``<out>/mode2d.md/.json/.png``."""
    from ganzoo.utils.images import scatter_image

    steps = BUDGETS[budget]
    out.mkdir(parents=True, exist_ok=True)
    report = Report("mode2d", out, budget, seeds)
    report.add(
        f"Budget `{budget}`: {steps} steps of batch 100 (the papers train far longer), {seeds} seeds, "
        "2,500 samples scored, CPU, fp32.",
        "",
    )
    pictures = []
    for data in datasets:
        rows = []
        for label, config in CONFIGS.items():
            stats = []
            t0 = time.time()
            for seed in range(seeds):
                curves = out / f"mode2d_losses_{data}_{label}.png" if seed == 0 else None
                s, samples = run_one(data, config, seed, steps, curves)
                stats.append(s)
                if seed == 0:
                    lim = 1.5 if data == "ring8" else 6.0
                    ref = ring8_modes() if data == "ring8" else grid25_modes()
                    pictures.append(scatter_image(samples, lim, size=192, reference=ref))
            report.raw[f"{data}/{label}"] = stats
            rows.append(
                [
                    f"{label} (ganzoo)",
                    mean_se([s["modes"] for s in stats]),
                    mean_se([100 * s["high_quality"] for s in stats]),
                    mean_se([s["reverse_kl"] for s in stats]),
                    f"measured, {time.time() - t0:.0f} s",
                ]
            )
        for name, modes, hq, kl in PUBLISHED[data]:
            rows.append([name, modes, hq, kl, "published, 100k-point training set, long schedule"])
        report.add(f"### {data}", "", *table(["model", "modes", "high quality %", "reverse KL", "source"], rows), "")
    report.add("Reverse KL is KL(p_gen || uniform) over the modes of the high-quality samples (PacGAN's code).")
    return report.write(torch.stack(pictures), nrow=len(CONFIGS))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", choices=list(BUDGETS), default="small")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--data", default="ring8,grid25")
    ap.add_argument("--out", default="docs/benchmarks")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(run(args.budget, args.seeds, Path(args.out), tuple(args.data.split(","))).read_text())


if __name__ == "__main__":
    main()
