"""Metric functions against independent references: scipy, brute-force definitions, closed forms, published numbers."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import torch

from ganzoo.metrics import (
    FeatureStats,
    auprc,
    auroc,
    class_histogram_stats,
    frechet_distance,
    grid_centres,
    image_scores,
    kid,
    l1,
    mode_stats,
    pm1_to_255,
    precision_recall_density_coverage,
    psnr,
    psnr_per_image,
    psnr_pm1,
    r_precision,
    rgb_to_y,
    ring_centres,
    ssim,
    ssim_per_image,
    stacked_classes,
)


def shared_data() -> Path:
    env = os.environ.get("GANZOO_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------------- Fréchet / stats


def scipy_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_feature_stats_matches_numpy_and_merges() -> None:
    g = gen(1)
    # A large common offset: the naive sum-of-squares formula would lose most digits of the covariance here.
    x = torch.randn(1000, 16, generator=g) * 0.5 + 1e4
    whole, a, b = FeatureStats(max_keep=300), FeatureStats(), FeatureStats(max_keep=50)
    for chunk in x.split(77):
        whole.update(chunk)
    for chunk in x[:400].split(64):
        a.update(chunk)
    for chunk in x[400:].split(100):
        b.update(chunk)
    a.merge(b)
    ref = x.double().numpy()
    for stats in (whole, a):
        assert stats.num == 1000
        np.testing.assert_allclose(stats.mean().numpy(), ref.mean(0), rtol=0, atol=1e-9)
        np.testing.assert_allclose(stats.cov().numpy(), np.cov(ref, rowvar=False), rtol=1e-5, atol=1e-7)
    kept = whole.features()
    assert kept is not None and kept.shape == (300, 16) and torch.equal(kept, x[:300])
    assert a.features() is None  # a kept nothing itself and has no room for b's rows (max_keep=0)


def test_frechet_matches_scipy_reference() -> None:
    g = gen(2)
    a = torch.randn(800, 48, generator=g) @ torch.randn(48, 48, generator=g) * 0.2 + 0.3
    b = torch.randn(900, 48, generator=g) * 1.3 - 0.1
    fa, fb = FeatureStats(), FeatureStats()
    fa.update(a)
    fb.update(b)
    ours = frechet_distance(fa.mean(), fa.cov(), fb.mean(), fb.cov())
    A, B = a.double().numpy(), b.double().numpy()
    ref = scipy_frechet(A.mean(0), np.cov(A, rowvar=False), B.mean(0), np.cov(B, rowvar=False))
    assert abs(ours - ref) / ref < 1e-6
    # numpy inputs are accepted too
    np_ours = frechet_distance(A.mean(0), np.cov(A, rowvar=False), B.mean(0), np.cov(B, rowvar=False))
    assert abs(np_ours - ref) / ref < 1e-6


def test_frechet_identical_and_singular() -> None:
    g = gen(3)
    x = torch.randn(500, 32, generator=g)
    s = FeatureStats()
    s.update(x)
    assert abs(frechet_distance(s.mean(), s.cov(), s.mean(), s.cov())) < 1e-8 * float(torch.trace(s.cov()))
    # Commuting (diagonal) covariances with zero variances: tr sqrt(S1 S2) = sum sqrt(d1 d2) exactly.
    d1 = torch.tensor([4.0, 1.0, 0.0, 0.0, 9.0], dtype=torch.float64)
    d2 = torch.tensor([1.0, 0.0, 0.0, 2.0, 4.0], dtype=torch.float64)
    mu1, mu2 = torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    expected = 5.0 + float(d1.sum() + d2.sum() - 2 * (d1 * d2).sqrt().sum())
    assert frechet_distance(mu1, torch.diag(d1), mu2, torch.diag(d2)) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------------------------------------ KID


def numpy_unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
    m = x.shape[0]
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


def test_kid_formula_on_whole_sets() -> None:
    g = gen(4)
    x, y = torch.randn(60, 8, generator=g), torch.randn(60, 8, generator=g) + 0.3
    mean, std = kid(x, y, subsets=1, subset_size=60, generator=gen(0))
    assert mean == pytest.approx(numpy_unbiased_mmd2(x.double().numpy(), y.double().numpy()), rel=1e-10)
    assert std == 0.0


def test_kid_unbiased_and_separating() -> None:
    g = gen(5)
    x, y = torch.randn(2000, 32, generator=g), torch.randn(2000, 32, generator=g)
    mean, std = kid(x, y, subsets=100, subset_size=200, generator=gen(1))
    assert std > 0 and abs(mean) < std  # centred on 0: the estimate is unbiased, negative values allowed
    mean2, std2 = kid(x, y * 1.5 + 0.5, subsets=100, subset_size=200, generator=gen(1))
    assert mean2 > 10 * std2


def test_kid_whole_kernel_path_matches_subset_by_subset() -> None:
    g = gen(6)
    x, y = torch.randn(300, 16, generator=g).abs(), torch.randn(240, 16, generator=g).abs() * 1.2
    fast = kid(x, y, subsets=30, subset_size=200, generator=gen(2))  # 30 * 200^2 > 300 * 240: whole kernels
    slow = kid(x, y, subsets=30, subset_size=200, generator=gen(2), max_kernel_rows=0)
    assert fast[0] == pytest.approx(slow[0], rel=1e-12) and fast[1] == pytest.approx(slow[1], rel=1e-9)
    assert fast[0] == pytest.approx(
        np.mean([numpy_unbiased_mmd2(*_subset_pair(x, y, 200, gen(2), i)) for i in range(30)]), rel=1e-10
    )


def _subset_pair(x: torch.Tensor, y: torch.Tensor, m: int, g: torch.Generator, i: int) -> tuple:
    for _ in range(i):  # the draws of the earlier subsets
        torch.randperm(len(x), generator=g), torch.randperm(len(y), generator=g)
    ix, iy = torch.randperm(len(x), generator=g)[:m], torch.randperm(len(y), generator=g)[:m]
    return x[ix].double().numpy(), y[iy].double().numpy()


# ----------------------------------------------------------------------------------------------------------- PRDC


def brute_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    drr = np.linalg.norm(real[:, None] - real[None], axis=-1)
    dff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
    drf = np.linalg.norm(real[:, None] - fake[None], axis=-1)  # (N real, M fake)
    rr = np.sort(drr, axis=1)[:, k]
    rf = np.sort(dff, axis=1)[:, k]
    return {
        "precision": float((drf < rr[:, None]).any(axis=0).mean()),
        "recall": float((drf < rf[None, :]).any(axis=1).mean()),
        "density": float((drf < rr[:, None]).sum() / (k * fake.shape[0])),
        "coverage": float((drf.min(axis=1) < rr).mean()),
    }


def test_prdc_matches_definitions_and_is_chunk_invariant() -> None:
    g = gen(6)
    real, fake = torch.randn(150, 6, generator=g), torch.randn(120, 6, generator=g) * 1.2 + 0.2
    ref = brute_prdc(real.double().numpy(), fake.double().numpy(), k=5)
    for chunk in (1024, 7):
        got = precision_recall_density_coverage(real, fake, k=5, chunk_size=chunk)
        for key, value in ref.items():
            assert got[key] == pytest.approx(value, abs=1e-12), key


def test_prdc_identical_and_disjoint() -> None:
    x = torch.randn(400, 16, generator=gen(7))
    same = precision_recall_density_coverage(x, x.clone())
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.1)
    far = precision_recall_density_coverage(x, x + 100)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


# ------------------------------------------------------------------------------------------------ PSNR / SSIM / L1


def test_rgb_to_y_known_values() -> None:
    img = torch.tensor([[0, 255, 255, 0], [0, 255, 0, 255], [0, 255, 0, 0]], dtype=torch.uint8).view(3, 1, 4)
    y = rgb_to_y(img).flatten().tolist()
    assert y == pytest.approx([16.0, 235.0, 16 + 65.481, 16 + 128.553])


def test_psnr_known_values() -> None:
    ref = torch.randint(0, 200, (2, 3, 16, 16), generator=gen(8), dtype=torch.uint8)
    assert psnr_per_image(ref, ref).isinf().all()
    pred = ref + 5  # MSE 25 everywhere
    assert psnr(pred, ref) == pytest.approx(20 * math.log10(255 / 5), abs=1e-12)
    # Y channel: a uniform RGB offset of 5 moves Y by 5 * 219 / 255.
    assert psnr(pred, ref, y_channel=True) == pytest.approx(20 * math.log10(255 / (5 * 219 / 255)), abs=1e-12)
    # Shave drops the border: errors only there leave the interior identical.
    border = ref.clone()
    border[..., :2, :] += 9
    assert psnr(border, ref, shave=2) == math.inf
    # data_range: the same images on a 0..1 scale give the same PSNR.
    assert psnr(pred.double() / 255, ref.double() / 255, data_range=1.0) == pytest.approx(psnr(pred, ref))
    # float [-1, 1] convenience quantizes to the same 8-bit images
    assert psnr_pm1(pred.double() / 127.5 - 1, ref.double() / 127.5 - 1) == pytest.approx(psnr(pred, ref))
    assert torch.equal(pm1_to_255(ref.double() / 127.5 - 1), ref.double())
    assert l1(pred, ref) == pytest.approx(5.0)


def scipy_ssim(x: np.ndarray, y: np.ndarray, peak: float = 255.0) -> float:
    coords = np.arange(11) - 5.0
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def f(a: np.ndarray) -> np.ndarray:
        return scipy.signal.correlate2d(a, w, mode="valid")

    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def test_ssim_matches_reference_and_closed_form() -> None:
    g = gen(9)
    ref = torch.randint(0, 256, (1, 3, 40, 36), generator=g, dtype=torch.uint8)
    noise = torch.randint(-20, 21, ref.shape, generator=g)
    pred = (ref.long() + noise).clamp(0, 255).to(torch.uint8)
    got = ssim(pred, ref)
    want = np.mean([scipy_ssim(pred[0, c].double().numpy(), ref[0, c].double().numpy()) for c in range(3)])
    assert got == pytest.approx(want, abs=1e-12)
    got_y = ssim(pred, ref, y_channel=True, shave=4)
    want_y = scipy_ssim(rgb_to_y(pred)[0, 0, 4:-4, 4:-4].numpy(), rgb_to_y(ref)[0, 0, 4:-4, 4:-4].numpy())
    assert got_y == pytest.approx(want_y, abs=1e-12)
    assert ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    # Two flat images a, b: only the luminance term remains, (2ab + C1) / (a^2 + b^2 + C1).
    a, b = torch.full((1, 1, 20, 20), 100.0), torch.full((1, 1, 20, 20), 140.0)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 140 + c1) / (100**2 + 140**2 + c1), abs=1e-12)


def test_image_scores_lists_and_sizes() -> None:
    g = gen(10)
    refs = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in ((24, 30), (33, 20))]
    preds = [(r.long() + 3).clamp(0, 255).to(torch.uint8) for r in refs]
    out = image_scores(preds, refs, y_channel=True, shave=2)
    assert out["num_images"] == 2 and len(out["psnr_per_image"]) == 2
    assert out["psnr"] == pytest.approx(np.mean(out["psnr_per_image"]))
    assert out["ssim"] == pytest.approx(ssim_per_image(preds, refs, y_channel=True, shave=2).mean().item())


def load_uint8_chw(path: Path, resize_to: tuple[int, int] | None = None) -> torch.Tensor:
    from PIL import Image

    img = Image.open(path)
    if resize_to is not None:
        img = img.resize(resize_to, Image.BICUBIC)
    arr = np.asarray(img)
    arr = arr[:, :, None] if arr.ndim == 2 else arr  # Set14 img_003 is grayscale: scored as its own Y
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


@pytest.mark.parametrize(
    ("name", "lo", "hi", "ssim_lit"),
    # PSNR ranges: the published bicubic rows (28.42-28.43 and 25.99 dB). SSIM: the SR papers' bicubic values
    # (0.8104, 0.7027) come from MATLAB imresize, not PIL, so they only bound ours loosely.
    [("Set5", 28.415, 28.435, 0.8104), ("Set14", 25.985, 25.995, 0.7027)],
)
def test_bicubic_baseline_on_set5_set14(name: str, lo: float, hi: float, ssim_lit: float) -> None:
    root = shared_data() / "sr" / name
    if not (root / "HR").is_dir():
        pytest.skip(f"reference data not found at {root} (set GANZOO_SHARED_DATA to the shared data folder)")
    from PIL import Image

    preds, refs = [], []
    for hr_path in sorted((root / "HR").glob("*.png")):
        with Image.open(hr_path) as hr:
            size = hr.size
        refs.append(load_uint8_chw(hr_path))
        preds.append(load_uint8_chw(root / "LR_x4" / hr_path.name, resize_to=size))
    assert len(preds) == {"Set5": 5, "Set14": 14}[name]
    mean_psnr = psnr(preds, refs, y_channel=True, shave=4)
    assert lo <= mean_psnr < hi, mean_psnr
    assert ssim(preds, refs, y_channel=True, shave=4) == pytest.approx(ssim_lit, abs=0.005)


# -------------------------------------------------------------------------------------------------------- modes


def mixture(centres: torch.Tensor, std: float, n: int, seed: int) -> torch.Tensor:
    g = gen(seed)
    idx = torch.randint(0, centres.shape[0], (n,), generator=g)
    return centres[idx] + std * torch.randn(n, 2, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("centres", "std"), [(ring_centres(8), 0.01), (grid_centres(5), 0.05)])
def test_mode_stats_perfect_and_collapsed(centres: torch.Tensor, std: float) -> None:
    k = centres.shape[0]
    perfect = mode_stats(mixture(centres, std, 2500, seed=11), centres, std)
    assert perfect["modes"] == k
    # In 2-D, P(|N(0, s^2 I)| < 3s) = 1 - exp(-9/2) = 98.89%; binomial sd at N=2500 is 0.2%.
    assert perfect["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.007)
    assert 0 <= perfect["reverse_kl"] < 0.02
    collapsed = mode_stats(centres[3].expand(2500, 2), centres, std)
    assert collapsed == {"modes": 1, "high_quality": 1.0, "reverse_kl": pytest.approx(math.log(k))}
    nowhere = mode_stats(torch.full((10, 2), 50.0), centres, std)
    assert nowhere["modes"] == 0 and nowhere["high_quality"] == 0.0 and math.isnan(nowhere["reverse_kl"])


def test_ring_and_grid_centres() -> None:
    ring = ring_centres()
    assert ring.shape == (8, 2) and torch.allclose(ring.norm(dim=1), torch.ones(8, dtype=torch.float64))
    grid = grid_centres()
    assert grid.shape == (25, 2) and sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_class_histogram_stats() -> None:
    uniform = class_histogram_stats(torch.arange(1000).repeat(3), 1000)
    assert uniform == {"modes": 1000, "kl": pytest.approx(0.0, abs=1e-12)}
    single = class_histogram_stats(torch.full((500,), 7), 1000)
    assert single == {"modes": 1, "kl": pytest.approx(math.log(1000))}
    half = class_histogram_stats(torch.arange(500), 1000)
    assert half["modes"] == 500 and half["kl"] == pytest.approx(math.log(2))
    assert stacked_classes(torch.tensor([[1, 2, 3], [9, 0, 9]])).tolist() == [123, 909]
    with pytest.raises(ValueError):
        class_histogram_stats(torch.tensor([1000]), 1000)


# ------------------------------------------------------------------------------------------------------ ranking


def brute_auroc(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def brute_ap(s: np.ndarray, y: np.ndarray) -> float:
    # sklearn's definition: sum over distinct thresholds t (descending) of (R(t) - R(prev)) * P(t).
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        sel = s >= t
        recall = y[sel].sum() / y.sum()
        ap += (recall - prev_recall) * y[sel].mean()
        prev_recall = recall
    return float(ap)


def test_auroc_auprc_known_values() -> None:
    # The examples of sklearn's roc_auc_score / average_precision_score documentation.
    s, y = torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])
    assert auroc(s, y) == pytest.approx(0.75)
    assert auprc(s, y) == pytest.approx(0.8333333333333333)
    assert auroc(torch.tensor([1.0, 2, 3, 4]), torch.tensor([0, 0, 1, 1])) == 1.0
    assert auroc(torch.tensor([1.0, 2, 3, 4]), torch.tensor([1, 1, 0, 0])) == 0.0
    assert auroc(torch.ones(6), torch.tensor([0, 1, 0, 1, 1, 0])) == 0.5
    assert auprc(torch.ones(6), torch.tensor([0, 1, 0, 1, 1, 0])) == 0.5
    with pytest.raises(ValueError):
        auroc(torch.rand(5), torch.ones(5))


@pytest.mark.parametrize("levels", [3, 10, 1000])
def test_auroc_auprc_match_brute_force_with_ties(levels: int) -> None:
    g = gen(levels)
    y = (torch.rand(300, generator=g) < 0.3).long()
    s = torch.randint(0, levels, (300,), generator=g).double() + y * 0.7  # informative, heavily tied
    sn, yn = s.numpy(), y.numpy()
    assert auroc(s, y) == pytest.approx(brute_auroc(sn, yn), abs=1e-12)
    assert auprc(s, y) == pytest.approx(brute_ap(sn, yn), abs=1e-12)
    assert auroc(s, y.bool()) == auroc(s, y)


def test_r_precision() -> None:
    feats = torch.randn(300, 64, generator=gen(12))
    assert r_precision(feats, feats * 2.0, generator=gen(0)) == 1.0
    # M == candidates: the 99 distractors are all the other captions, so drawing the true one would show as a tie.
    assert r_precision(feats[:100], feats[:100], generator=gen(0), chunk_size=16) == 1.0
    # Shuffled pairing via true_index
    perm = torch.randperm(300, generator=gen(1))
    assert r_precision(feats, feats[perm], true_index=torch.argsort(perm), generator=gen(0)) == 1.0
    g = gen(13)
    rnd = r_precision(torch.randn(3000, 32, generator=g), torch.randn(3000, 32, generator=g), generator=gen(2))
    assert rnd == pytest.approx(0.01, abs=0.006)
    assert r_precision(torch.ones(200, 8), torch.ones(200, 8), generator=gen(3)) == 0.0  # all ties -> misses
