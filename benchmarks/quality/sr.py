"""PROTOCOLS.md section 3: super-resolution x4 on Set5 and Set14 (SRGAN, Ledig et al. 2017).

SRResNet (``srgan.srresnet``, pixel MSE only) trained on ``sr-folder:../shared/data/sr/Urban100_train`` (100 images,
disjoint from the test sets), at the reduced size of docs/variants/srgan.md (32 features, 8 residual blocks, lr 5e-4)
except at the ``paper`` budget, which uses the paper's network and learning rate. Each seed's exported (EMA) model is
scored by ``ganzoo sr-eval``'s own code (``ganzoo_srgan.upscale.evaluate_sr``): PSNR and SSIM on the BT.601 Y channel,
``scale`` pixels shaved, per image and averaged, with the PIL-bicubic row measured in the same call.

    python -m benchmarks.quality sr --budget small --seeds 2
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from ganzoo_srgan.upscale import evaluate_sr, upscale_image
from PIL import Image

import ganzoo
from ganzoo.data.files import image_to_tensor
from ganzoo.data.sr import SRPairsDataset

from .common import Report, mean_se, shared, table, train

STEPS = {"tiny": 20, "small": 1000, "medium": 4500, "paper": 1_000_000}  # batch 16 of 96x96 HR crops
# docs/variants/srgan.md: CPU-sized, lr raised for short runs
REDUCED = {"n_feats": 32, "n_blocks": 8, "lr_g": 5e-4, "lr_d": 5e-4}
CONFIGS = {"tiny": REDUCED, "small": REDUCED, "medium": REDUCED, "paper": {}}  # paper: 64 feats, 16 blocks, lr 1e-4
SETS = ("Set5", "Set14")
SCALE = 4
PUBLISHED = [  # Ledig et al. 2017, Table 2: PSNR / SSIM on Set5, Set14
    (
        "SRResNet, published (Ledig et al. 2017, Table 2)",
        "350k ImageNet images, 10^6 steps",
        "32.05",
        "0.9019",
        "28.49",
        "0.8184",
    ),
    ("SRGAN (VGG54), published (same table)", "+ 2x10^5 GAN steps", "29.40", "0.8472", "26.02", "0.7397"),
]
BICUBIC_REFERENCE = ("28.42-28.43", "25.99")  # PROTOCOLS.md: the PSNR that pins down the metric code
PICTURE = (("Set5", 2), ("Set5", 0), ("Set14", 13))  # (set, image index): butterfly, baby, Set14 img_014
CROP = 72


def _crops(model: ganzoo.GANVariant, root: Path, index: int) -> list[torch.Tensor]:
    """Centre crops of bicubic, the model's output and the ground truth, shown at 2x (nearest neighbour)."""
    hr, lr = SRPairsDataset(root, scale=SCALE, crop=0, channels=3).load_pair(index)
    views = (lr.resize(hr.size, Image.Resampling.BICUBIC), upscale_image(model, lr), hr)
    tiles = []
    for im in views:
        t = image_to_tensor(im.convert("RGB")).float().div(127.5).sub(1.0)
        y, x = (t.shape[1] - CROP) // 2, (t.shape[2] - CROP) // 2
        tiles.append(t[:, y : y + CROP, x : x + CROP].repeat_interleave(2, 1).repeat_interleave(2, 2))
    return tiles


def run(budget: str, seeds: int, out: Path) -> Path:
    train_dir = shared("sr", "Urban100_train")
    sets = {name: shared("sr", name) for name in SETS}
    steps, overrides = STEPS[budget], CONFIGS[budget]
    report = Report("sr", out, budget, seeds)
    n_seeds = f"{seeds} seed" + ("s" if seeds > 1 else "")
    report.raw.update(steps=steps, config=overrides, train_data=str(train_dir))

    runs: list[dict[str, dict]] = []
    bicubic: dict[str, dict] = {}
    picture: list[torch.Tensor] = []
    for seed in range(seeds):
        t0 = time.time()
        model = train("srgan.srresnet", f"sr-folder:{train_dir}", steps, seed, options=overrides)
        seconds = time.time() - t0
        scores = {}
        for name, root in sets.items():
            r = evaluate_sr(model, root, SCALE)
            scores[name] = r["rows"]["model"] | {"names": r["names"]}
            bicubic[name] = r["rows"]["bicubic"]  # identical every seed: no model involved
        runs.append({"seed": seed, "train_seconds": round(seconds, 1), "scores": scores})
        if seed == 0:
            for name, index in PICTURE:
                picture += _crops(model, sets[name], index)
    report.raw["runs"] = runs
    report.raw["bicubic"] = bicubic

    def cols(get) -> list[str]:
        return [get(name, key) for name in SETS for key in ("psnr", "ssim")]

    c = ganzoo.create("srgan.srresnet", **overrides).config
    ours = f"SRResNet, ours ({c.n_feats} feats, {c.n_blocks} blocks, lr {c.lr_g:g})"
    rows = [
        [
            ours,
            f"Urban100_train, {steps:,} steps",
            *cols(lambda s, k: mean_se([r["scores"][s][k] for r in runs], 2 if k == "psnr" else 4)),
        ],
        [
            "bicubic (PIL), measured in this run",
            "-",
            *cols(lambda s, k: f"{bicubic[s][k]:.{2 if k == 'psnr' else 4}f}"),
        ],
        ["bicubic (PIL), PROTOCOLS.md reference", "-", BICUBIC_REFERENCE[0], "", BICUBIC_REFERENCE[1], ""],
    ]
    rows += [list(published) for published in PUBLISHED]
    deviations = (
        "the paper's network (64 features, 16 blocks) and lr 1e-4"
        if not overrides
        else f"a reduced network ({c.n_feats} features, {c.n_blocks} blocks instead of 64 and 16) and lr {c.lr_g:g} "
        "instead of 1e-4 (docs/variants/srgan.md)"
    )
    report.add(
        f"Budget `{budget}`: {steps:,} steps of batch {c.batch_size} {c.image_size}x{c.image_size} HR crops per seed "
        f"({n_seeds}; mean ± s.e. over seeds), pixel MSE only (SRResNet). **Deviations from PROTOCOLS.md "
        f"section 3:** trained on `../shared/data/sr/Urban100_train` (100 images, disjoint from Set5/Set14) instead "
        f"of 350k ImageNet images, {steps:,} steps instead of 10^6, {deviations}. Scores: Y channel of BT.601, "
        f"{SCALE} pixels shaved, 255 range, per image and averaged over the set (`ganzoo sr-eval`'s code), "
        "exported EMA weights.",
        "",
        *table(["model", "training", "Set5 PSNR (dB)", "Set5 SSIM", "Set14 PSNR (dB)", "Set14 SSIM"], rows),
        "",
        "Training seconds per seed: " + ", ".join(f"{r['train_seconds']:.0f}" for r in runs) + ".",
        "",
        f"Pictures (`sr.png`): {CROP}x{CROP} HR centre crops at 2x (nearest neighbour) of Set5 img_003, Set5 "
        "img_001 and Set14 img_014; columns: bicubic, ours (seed 0), ground truth.",
    )
    return report.write(torch.stack(picture), nrow=3)
