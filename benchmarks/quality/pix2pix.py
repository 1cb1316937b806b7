"""pix2pix (Isola et al. 2017) on ``shapes-pairs``: cGAN + L1 against L1 alone, as in docs/variants/pix2pix.md.

``pix2pix.shapes`` (U-Net 64, ngf = ndf = 32, batch 4, 64x64, adversarial + 100 L1) and ``pix2pix.shapes_l1`` (the
same U-Net, L1 only) trained for the same steps per seed, scored on the 200 held-out test scenes by
``ganzoo_pix2pix.evaluate`` (see ``translation.py``), beside the identity mapping measured in the same run. The
paper's finding in small: L1 alone scores better on pixel-wise PSNR/SSIM but is blurred (sharpness ratios well
under 1); the adversarial term restores the detail the input map leaves open (stripes, grain).

    python -m benchmarks.quality pix2pix --budget small --seeds 2
"""

from __future__ import annotations

from pathlib import Path

from .common import Report, table
from .translation import N_TEST, columns, grid, seeds_row, single_row, train_and_score, train_seconds

# Batch 4 of 64x64 pairs; 2,000 training scenes, so 100,000 steps are the paper's 200 epochs.
STEPS = {"tiny": 20, "small": 600, "medium": 2400, "paper": 100_000}
MODELS = {
    "pix2pix, cGAN + L1 (`pix2pix.shapes`)": "pix2pix.shapes",
    "L1 only (`pix2pix.shapes_l1`)": "pix2pix.shapes_l1",
}
DOCS_ROWS = [  # docs/variants/pix2pix.md, hand-measured: PSNR, SSIM, L1, gradient ratio, high-frequency ratio
    ("L1 only, docs/variants/pix2pix.md (2,400 steps, 1 seed, fp32)", "26.69", "0.774", "7.16", "0.564", "0.306"),
    ("pix2pix, docs/variants/pix2pix.md (2,400 steps, 1 seed, fp32)", "25.58", "0.733", "8.17", "0.800", "0.802"),
]


def run(budget: str, seeds: int, out: Path) -> Path:
    steps = STEPS[budget]
    report = Report("pix2pix", out, budget, seeds)
    n_seeds = f"{seeds} seed" + ("s" if seeds > 1 else "")
    report.raw["steps"] = steps
    rows, models, identity, timing = [], [], None, []
    for label, tag in MODELS.items():
        results, model = train_and_score(tag, steps, seeds)
        report.raw[tag] = results
        rows.append(seeds_row(f"{label}, {steps:,} steps", results, "model"))
        models.append(model)
        identity = results[0]["identity"]  # no model involved: the same every seed
        timing.append(f"{tag} {train_seconds(results)}")
    rows.append(single_row("identity (input as output), measured in this run", identity))
    rows += [list(r) for r in DOCS_ROWS]
    report.raw["identity"] = identity
    grid(models[::-1], out / "pix2pix.png")  # columns: input, L1 only, pix2pix, truth (as in the docs)
    report.add(
        f"Budget `{budget}`: {steps:,} steps of batch 4 at 64x64 per model and seed ({n_seeds}; mean ± s.e. "
        f"over seeds), precision `auto` (bf16 autocast where supported), scored on the {N_TEST} held-out `test` "
        "scenes of `shapes-pairs` with the exported EMA generators (eval mode: no dropout, batch-norm running "
        "statistics). PSNR, SSIM and L1 on 0..255; sharpness as ratios to the ground truth's own value (1 = as "
        "sharp as the truth). No published rows: PROTOCOLS.md has none for pix2pix, and the paper's numbers are on "
        "its own datasets (e.g. FCN scores on Cityscapes), not on this synthetic task; the docs' hand-measured rows "
        "are shown for reference.",
        "",
        *table(["model", *columns()], rows),
        "",
        "Training seconds per seed: " + "; ".join(timing) + ".",
        "",
        "Pictures (`pix2pix.png`): held-out scenes (rows); columns: input map, L1 only, pix2pix (seed 0 models), "
        "ground truth.",
    )
    return report.write()
