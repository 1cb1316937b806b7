"""PROTOCOLS.md section 2: Stacked MNIST, 1,000 modes (VEEGAN Table 2, PacGAN Tables 2-3).

DCGAN, and DCGAN with PacGAN2 packing, trained on ``stacked-mnist`` (three MNIST digits as R, G, B) at 32x32. Each
channel of 26,000 generated samples is labelled by ganzoo's MNIST classifier (the domain classifier of
``ganzoo.metrics``, held-out accuracy >= 0.95 or it refuses); modes hit and KL(histogram || uniform) are reported
with mean ± s.e. over seeds, beside the same scores of 26,000 real stacked samples and the published rows.

    python -m benchmarks.quality stacked_mnist --budget small --seeds 2
"""

from __future__ import annotations

from pathlib import Path

import torch

import ganzoo
from ganzoo.metrics.domain import get_domain_classifier
from ganzoo.metrics.modes import class_histogram_stats
from ganzoo.train.data import build_dataset

from .common import Report, mean_se, shared, table, train

STEPS = {"tiny": 20, "small": 2000, "medium": 10000, "paper": 50000}  # batch 64
# The full-width DCGAN, and one whose discriminator has a quarter of the width (ndf 16): the published collapse
# comes from discriminators weaker than their generators (the Unrolled GAN paper's smaller-D setting).
CONFIGS = {
    "DCGAN": {},
    "PacDCGAN2": {"pack": 2},
    "DCGAN, D 1/4 width": {"ndf": 16},
    "PacDCGAN2, D 1/4 width": {"ndf": 16, "pack": 2},
}
N_SAMPLES = 26_000
SIZE = 32
PUBLISHED = [  # modes / KL to uniform
    ("DCGAN (VEEGAN Table 2)", 99, 3.4),
    ("Unrolled GAN (VEEGAN Table 2)", 48.7, 4.32),
    ("VEEGAN (VEEGAN Table 2)", 150, 2.95),
    ("DCGAN (PacGAN Table 2)", 78.9, 4.50),
    ("PacDCGAN2-4 (PacGAN Table 2)", 1000, "0.06-0.07"),
]


def _stats(classifier, images_batches) -> dict[str, float]:
    preds = torch.cat([classifier.predict_stacked(b) for b in images_batches])
    return class_histogram_stats(preds, 1000)


def _generated(model: ganzoo.GANVariant, n: int, seed: int, batch: int = 1000):
    for i, start in enumerate(range(0, n, batch)):
        with torch.no_grad():
            yield model.generate(n=min(batch, n - start), seed=seed * 1000 + i)


def run(budget: str, seeds: int, out: Path) -> Path:
    mnist = shared("mnist")
    spec = f"stacked-mnist:{mnist}"
    classifier = get_domain_classifier(f"mnist:{mnist}", SIZE, 1)
    report = Report("stacked_mnist", out, budget, seeds)
    steps = STEPS[budget]
    n_samples = 2000 if budget == "tiny" else N_SAMPLES

    real = build_dataset(spec, ganzoo.create("dcgan", image_size=SIZE), split="test", seed=1)
    idx = torch.arange(n_samples) % len(real)
    real_batches = (
        torch.stack([it["image"] for it in real.__getitems__(idx[i : i + 1000].tolist())])
        for i in range(0, n_samples, 1000)
    )
    floor = _stats(classifier, real_batches)
    report.raw["real"] = floor

    rows, pictures = [], []
    for label, config in CONFIGS.items():
        runs = []
        for seed in range(seeds):
            slug = label.replace(", D 1/4 width", "_smallD")
            curves = out / f"stacked_mnist_losses_{slug}.png" if seed == 0 else None
            model = train("dcgan", spec, steps, seed, options={"image_size": SIZE, **config}, losses_to=curves)
            runs.append(_stats(classifier, _generated(model, n_samples, seed)))
            if seed == 0:
                pictures.append(model.generate(n=16, seed=0).float().cpu())
        report.raw[label] = runs
        rows.append(
            [
                f"{label} (ganzoo, {steps} steps)",
                mean_se([r["modes"] for r in runs], 1),
                mean_se([r["kl"] for r in runs]),
            ]
        )
    rows.append([f"real stacked MNIST, test split ({n_samples:,} samples)", floor["modes"], f"{floor['kl']:.2f}"])
    rows += [[name, m, kl] for name, m, kl in PUBLISHED]
    report.add(
        f"Budget `{budget}`: {steps} steps of batch 64 at {SIZE}x{SIZE} ({seeds} seeds; the papers train for many "
        f"epochs), {n_samples:,} samples per model, each channel labelled by ganzoo's MNIST classifier "
        f"(held-out accuracy {classifier.accuracy:.3f}).",
        "",
        *table(["model", "modes (of 1000)", "KL(histogram ‖ uniform)"], rows),
        "",
        "Pictures: `stacked_mnist.png`, 16 samples of seed 0 per model, two rows each in the table's order; "
        "`stacked_mnist_losses_<model>.png`, the loss curves of seed 0.",
    )
    return report.write(torch.cat(pictures), nrow=8)
