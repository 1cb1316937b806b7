"""CycleGAN (Zhu et al. 2017) on ``shapes-styles``, scored against the hidden pairing, as in docs/variants/cyclegan.md.

``cyclegan.shapes32`` (32x32, resnet_6blocks, ngf 16, ndf 32, the paper's losses, history pool and learning rates)
is trained with batch 4 per seed on unpaired A/B scenes. Every item of ``shapes-styles`` also carries ``b_true``,
scene ``a`` drawn in style B, which training never sees: A -> B compares ``G_A(a)`` with ``b_true`` and B -> A
compares ``G_B(b_true)`` with ``a`` (``ganzoo_pix2pix.evaluate``, see ``translation.py``), on the 200 held-out test
scenes, beside two baselines that need no pairs either, measured in the same run: the identity mapping and a global
colour transfer (per-channel mean and std matched to the B images).

    python -m benchmarks.quality cyclegan --budget small --seeds 2
"""

from __future__ import annotations

from pathlib import Path

from .common import Report, table
from .translation import METRICS, N_TEST, columns, grid, seeds_row, single_row, train_and_score, train_seconds

BATCH = 4  # the docs' run (the paper's batch is 1)
# 2,000 training scenes: 100,000 steps of batch 4 are the paper's 200 epochs.
STEPS = {"tiny": 20, "small": 1500, "medium": 8000, "paper": 100_000}
TAG = "cyclegan.shapes32"
SHOWN = METRICS[:3]  # PSNR, SSIM, L1 (the sharpness ratios are in the JSON)
DOCS_ROWS = [  # docs/variants/cyclegan.md, hand-measured: 8,000 steps of batch 4, 1 seed, fp32
    ("CycleGAN `G_A`, A -> B, docs/variants/cyclegan.md (8,000 steps, 1 seed, fp32)", "22.96", "0.877", "8.9"),
    ("CycleGAN `G_B`, B -> A, docs/variants/cyclegan.md (8,000 steps, 1 seed, fp32)", "24.66", "0.779", "7.1"),
]


def run(budget: str, seeds: int, out: Path) -> Path:
    steps = STEPS[budget]
    report = Report("cyclegan", out, budget, seeds)
    n_seeds = f"{seeds} seed" + ("s" if seeds > 1 else "")
    report.raw["steps"] = steps
    results, model = train_and_score(TAG, steps, seeds, batch_size=BATCH)
    report.raw[TAG] = results
    first = results[0]  # the baselines involve no model: the same every seed
    rows = [
        seeds_row(f"CycleGAN `G_A`, A -> B, ours ({steps:,} steps)", results, "a2b", SHOWN),
        single_row("identity, A -> B (measured in this run)", first["a2b_identity"], SHOWN),
        single_row("colour transfer, A -> B (measured in this run)", first["a2b_colour_transfer"], SHOWN),
        seeds_row(f"CycleGAN `G_B`, B -> A, ours ({steps:,} steps)", results, "b2a", SHOWN),
        single_row("identity, B -> A (measured in this run)", first["b2a_identity"], SHOWN),
        *[list(r) for r in DOCS_ROWS],
    ]
    grid([model], out / "cyclegan.png")
    report.add(
        f"Budget `{budget}`: `{TAG}` trained {steps:,} steps of batch {BATCH} at 32x32 per seed ({n_seeds}; "
        "mean ± s.e. over seeds), precision `auto`, which the tag keeps at fp32. **Deviations from the paper:** "
        f"batch {BATCH} instead of 1, 32x32 synthetic scenes instead of its 256x256 photo datasets. Scored on the "
        f"{N_TEST} held-out `test` scenes against the hidden pairing `b_true` (never used in training) with the "
        "exported EMA generators; PSNR, SSIM and L1 on 0..255. No published rows: PROTOCOLS.md has none for "
        "CycleGAN, and the paper's numbers (FCN scores on Cityscapes, AMT studies) are for other data; the docs' "
        "hand-measured rows are shown for reference.",
        "",
        *table(["mapping", *columns(SHOWN)], rows),
        "",
        f"Training seconds per seed: {train_seconds(results)}.",
        "",
        "Pictures (`cyclegan.png`): held-out scenes (rows); columns: `a`, `G_A(a)`, the hidden truth `b_true`, and "
        "`G_B(b_true)` (to compare with `a`); seed 0.",
    )
    return report.write()
