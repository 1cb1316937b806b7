"""The sharpness ratios of image-to-image outputs (``ganzoo.metrics.sharpness``): the measures on known images, the
``grad-ratio``/``hf-ratio`` metrics of the registry and of the ``image-pairs`` evaluator, checked on a trained model
against a direct NumPy computation and against the pix2pix plugin's evaluation script, which imports them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import registry
from ganzoo.cli import main
from ganzoo.metrics.evaluate import evaluate
from ganzoo.metrics.sharpness import gradient_magnitude, high_frequency_energy, sharpness_ratio, sharpness_rows
from ganzoo.testing import tiny_variant
from ganzoo.train import TrainConfig, Trainer


def _box_blur(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    kernel = torch.full((c, 1, 3, 3), 1 / 9, dtype=x.dtype)
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)


def test_gradient_magnitude_of_known_images():
    flat = torch.full((2, 3, 8, 8), 100.0)
    assert gradient_magnitude(flat).tolist() == [0.0, 0.0]
    ramp = torch.arange(8.0).repeat(1, 1, 8, 1)  # +1 per column: every horizontal difference is 1
    assert gradient_magnitude(ramp).item() == pytest.approx(1.0)
    diagonal = (torch.arange(8.0)[:, None] + torch.arange(8.0)[None, :]) * 3  # both differences 3
    assert gradient_magnitude(diagonal[None, None]).item() == pytest.approx(3 * math.sqrt(2))
    # uint8 and float inputs agree, and one (C, H, W) image is a batch of one.
    img = torch.randint(0, 256, (3, 9, 7), dtype=torch.uint8)
    assert gradient_magnitude(img).shape == (1,)
    assert gradient_magnitude(img).item() == pytest.approx(gradient_magnitude(img.float()[None]).item())
    with pytest.raises(ValueError, match="shape"):
        gradient_magnitude(torch.zeros(8, 8))


def test_high_frequency_energy_sees_only_the_upper_band():
    n = 16
    y, x = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    checker = ((x + y) % 2 * 255.0)[None, None]  # all its energy at the Nyquist corner
    slow = (127.5 + 100 * torch.cos(2 * math.pi * x / n))[None, None].double()  # 1/16 cycle per pixel
    assert high_frequency_energy(torch.full((1, 1, n, n), 77.0)).item() == 0.0
    assert high_frequency_energy(slow).item() == pytest.approx(0.0, abs=1e-3)
    # Parseval (unnormalised DFT): the checkerboard's power, per pixel, is H * W times its variance 127.5^2, and all
    # of it lies above the cut-off.
    assert high_frequency_energy(checker).item() == pytest.approx(n * n * 127.5**2, rel=1e-5)


def test_ratio_is_one_for_the_truth_below_one_for_blur_and_refuses_mismatched_counts():
    torch.manual_seed(0)
    truth = torch.rand(4, 3, 24, 24) * 255
    rows, blurred = sharpness_rows(truth), sharpness_rows(_box_blur(truth))
    for key in ("grad-ratio", "hf-ratio"):
        assert sharpness_ratio(rows[key], rows[key]) == pytest.approx(1.0)
        assert 0 < sharpness_ratio(blurred[key], rows[key]) < 0.6
        # Batches of values give the ratio of the means over all of them.
        assert sharpness_ratio(list(blurred[key].split(1)), list(rows[key].split(3))) == pytest.approx(
            float(blurred[key].mean() / rows[key].mean()), rel=1e-6
        )
    assert math.isnan(sharpness_ratio(torch.ones(2), torch.zeros(2)))
    with pytest.raises(ValueError, match="3 output values against 2"):
        sharpness_ratio(torch.ones(3), torch.ones(2))


def test_registry_metrics_and_metrics_cli(tmp_path, capsys):
    rng = np.random.default_rng(0)
    refs = [rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(3)]
    smooth = [np.array(Image.fromarray(r).resize((12, 10)).resize((24, 20), Image.BILINEAR)) for r in refs]
    ref_t = [torch.from_numpy(r).permute(2, 0, 1) for r in refs]
    pred_t = [torch.from_numpy(p).permute(2, 0, 1) for p in smooth]
    for name in ("grad-ratio", "hf-ratio"):
        entry = registry.get("metric", name)
        assert str(entry.kind.value) == "paired" and "paired" in entry.tasks and entry.help
        same = entry.obj(ref_t, ref_t)
        assert same[name] == pytest.approx(1.0) and same["per_image"] == pytest.approx([1.0] * 3)
        blur = entry.obj(pred_t, ref_t)
        assert 0 < blur[name] < 0.8 and len(blur["per_image"]) == 3
    for folder, images in (("pred", smooth), ("ref", refs)):
        (tmp_path / folder).mkdir()
        for i, arr in enumerate(images):
            Image.fromarray(arr).save(tmp_path / folder / f"{i}.png")
    assert main(["metrics", "grad-ratio", str(tmp_path / "pred"), str(tmp_path / "ref")]) == 0
    assert "grad-ratio" in capsys.readouterr().out


def _numpy_ratios(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The two ratios computed directly, in float64 NumPy, from 0..255 arrays (N, C, H, W)."""

    def grad(x: np.ndarray) -> np.ndarray:
        gx = x[..., :-1, 1:] - x[..., :-1, :-1]
        gy = x[..., 1:, :-1] - x[..., :-1, :-1]
        return np.sqrt(gx**2 + gy**2).reshape(len(x), -1).mean(1)

    def high(x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=(-2, -1), keepdims=True)
        power = np.abs(np.fft.fft2(x)) ** 2
        f = np.hypot(np.fft.fftfreq(x.shape[-2])[:, None], np.fft.fftfreq(x.shape[-1])[None, :])
        return (power * (f > 0.25)).reshape(len(x), -1).sum(1) / x[0].size

    return {
        "grad-ratio": grad(pred).mean() / grad(truth).mean(),
        "hf-ratio": high(pred).mean() / high(truth).mean(),
    }


@pytest.mark.parametrize("name", ["pix2pix", "cyclegan"])
def test_image_pairs_evaluator_reports_the_ratios_of_a_trained_model(name, tmp_path):
    if name not in ganzoo.list_variants(tags=False):
        pytest.skip(f"variant {name} is not installed")
    from ganzoo.train.data import build_dataset

    torch.manual_seed(0)
    cfg = TrainConfig(steps=3, progress=False, tensorboard=False, sample_every=0, ckpt_every=0)
    Trainer(tiny_variant(name), cfg, out=tmp_path).fit()
    model = ganzoo.load(tmp_path / "model.safetensors").eval()
    n = 8
    res = evaluate(model, n=n, batch_size=3)  # batches of 3: the ratios must not depend on the batching
    assert {"grad-ratio", "hf-ratio"} <= set(res["scores"]) and {"grad-ratio", "hf-ratio"} <= set(
        res["baselines"]["identity"]
    )
    assert "hf-ratio" in res["provenance"]["image"]["protocol"]

    ds = build_dataset(model.default_data, model, split="test", seed=0)
    items = [ds[i] for i in range(n)]
    target = "b" if name == "pix2pix" else "b_true"
    a = torch.stack([it["a"] for it in items]).float() / 127.5 - 1
    truth = np.stack([it[target].numpy() for it in items]).astype(np.float64)
    with torch.no_grad():
        out = model.translate(a, "a2b").double()
    pred = ((out + 1) * 127.5).clamp(0, 255).round().numpy()
    direct = _numpy_ratios(pred, truth)
    identity = _numpy_ratios(np.stack([it["a"].numpy() for it in items]).astype(np.float64), truth)
    for key in ("grad-ratio", "hf-ratio"):
        assert res["scores"][key] == pytest.approx(direct[key], rel=1e-5)
        assert res["baselines"]["identity"][key] == pytest.approx(identity[key], rel=1e-5)

    # The plugin's script imports the same functions: its numbers are the evaluator's, to its 4 decimals.
    script = pytest.importorskip("ganzoo_pix2pix.evaluate")
    ran = script.evaluate(model, n=n)
    for key, prefix in (("model", ""),) if name == "pix2pix" else (("a2b", ""), ("b2a", "b2a_")):
        assert ran[key]["grad_ratio"] == pytest.approx(res["scores"][prefix + "grad-ratio"], abs=6e-5)
        assert ran[key]["hf_ratio"] == pytest.approx(res["scores"][prefix + "hf-ratio"], abs=6e-5)
        assert ran[key]["psnr"] == pytest.approx(res["scores"][prefix + "psnr"], abs=6e-4)
    if name == "pix2pix":  # one direction only
        assert not any(k.startswith("b2a_") for k in res["scores"])
    else:  # a cycle: b_true -> a as well, the identity beside it
        assert {"b2a_psnr", "b2a_grad-ratio", "b2a_hf-ratio"} <= set(res["scores"])
        assert "b2a_psnr" in res["baselines"]["identity"] and "b2a_" in res["provenance"]["image"]["reference"]


def test_only_the_selected_ratio_is_computed():
    if "pix2pix" not in ganzoo.list_variants(tags=False):
        pytest.skip("variant pix2pix is not installed")
    torch.manual_seed(0)
    res = evaluate(tiny_variant("pix2pix"), n=4, metrics="psnr,hf-ratio")
    assert set(res["scores"]) == {"psnr", "hf-ratio"}
