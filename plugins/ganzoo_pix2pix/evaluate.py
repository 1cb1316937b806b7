"""Held-out scores of translation models against ground truth, and the comparison pictures of the docs.

    python -m ganzoo_pix2pix.evaluate MODEL [MODEL ...] [--data SPEC] [--split test] [-n 200] [--grid PATH]

Paired models (pix2pix) are scored on ``b`` of the paired data; unpaired ones (CycleGAN) on the hidden pairing
``b_true`` of ``shapes-styles`` (A -> B) and on ``a`` from ``b_true`` (B -> A), beside two baselines that need no
pairs either: the identity mapping and a global colour transfer (per-channel mean/std matched to the B images).
Scores: PSNR, SSIM and L1 on 0..255 (``ganzoo.metrics``), plus two sharpness ratios against the ground truth (1 is
as sharp as the truth; blur is below 1): mean gradient magnitude and the energy above half the Nyquist frequency
(:mod:`ganzoo.metrics.sharpness`, the ``grad-ratio`` and ``hf-ratio`` of ``ganzoo eval``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate

from ganzoo.metrics import image_scores, pm1_to_255
from ganzoo.metrics.sharpness import gradient_magnitude, high_frequency_energy, sharpness_ratio


def _scores(pred: Tensor, truth: Tensor) -> dict[str, float]:
    s = image_scores(pred, truth, pm1=True)
    p255, t255 = pm1_to_255(pred.float()), pm1_to_255(truth.float())
    return {
        "psnr": round(float(s["psnr"]), 3),
        "ssim": round(float(s["ssim"]), 4),
        "l1": round(float(s["l1"]), 3),
        "grad_ratio": round(sharpness_ratio(gradient_magnitude(p255), gradient_magnitude(t255)), 4),
        "hf_ratio": round(sharpness_ratio(high_frequency_energy(p255), high_frequency_energy(t255)), 4),
    }


def _items(model: Any, data: str | None, split: str, n: int) -> dict[str, Tensor]:
    from ganzoo.train.data import build_dataset

    ds = build_dataset(data or model.default_data, model, split=split, seed=0)
    batch = default_collate([ds[i] for i in range(min(n, len(ds)))])
    return {k: v.float().div(127.5).sub(1.0) for k, v in batch.items() if torch.is_tensor(v) and v.dtype == torch.uint8}


def _translate(model: Any, x: Tensor, key: str, chunk: int = 50) -> Tensor:
    direction = "a2b" if key == "a" else "b2a"
    with torch.no_grad():
        return torch.cat([model.translate(x[i : i + chunk], direction).float().cpu() for i in range(0, len(x), chunk)])


def evaluate(model: Any, data: str | None = None, split: str = "test", n: int = 200) -> dict[str, Any]:
    """Scores of ``model`` on the first ``n`` items of ``split`` (see the module docstring)."""
    model.eval()
    items = _items(model, data, split, n)
    a, b = items["a"], items["b"]
    if str(model.task) == "paired":
        return {"n": len(a), "model": _scores(_translate(model, a, "a"), b), "identity": _scores(a, b)}
    truth = items.get("b_true")
    if truth is None:
        raise ValueError("unpaired scores need data with the hidden pairing b_true (shapes-styles)")
    return {
        "n": len(a),
        "a2b": _scores(_translate(model, a, "a"), truth),
        "a2b_identity": _scores(a, truth),
        "a2b_colour_transfer": _scores(colour_transfer(a, b), truth),
        "b2a": _scores(_translate(model, truth, "b"), a),
        "b2a_identity": _scores(truth, a),
    }


def colour_transfer(x: Tensor, style: Tensor) -> Tensor:
    """A stronger baseline than the identity that also needs no pairs: give ``x`` the per-channel mean and standard
    deviation of the ``style`` images (Reinhard et al. 2001, in RGB)."""
    dims = (0, 2, 3)
    mx, sx = x.mean(dims, keepdim=True), x.std(dims, keepdim=True)
    ms, ss = style.mean(dims, keepdim=True), style.std(dims, keepdim=True)
    return ((x - mx) / sx.clamp_min(1e-6) * ss + ms).clamp(-1, 1)


def comparison_grid(models: list[Any], path: str, data: str | None = None, split: str = "test", n: int = 6) -> None:
    """One row per held-out item: the input, each model's output, then the ground truth (``b`` or ``b_true``)."""
    from ganzoo.utils.images import save_grid

    first = models[0]
    items = _items(first, data, split, n)
    a = items["a"]
    truth = items.get("b_true", items["b"])
    columns = [a] + [_translate(m.eval(), a, "a") for m in models] + [truth]
    if str(first.task) == "unpaired":
        columns.append(_translate(first, truth, "b"))  # and back: G_B of the true B image, to compare with a
    save_grid(torch.cat(columns, dim=-1), path, nrow=1)


def main(argv: list[str] | None = None) -> int:
    from ganzoo.api import load

    p = argparse.ArgumentParser(prog="python -m ganzoo_pix2pix.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="run directories or .safetensors files")
    p.add_argument("--data", help="data spec (default: each model's own)")
    p.add_argument("--split", default="test", help="split to score (default: %(default)s)")
    p.add_argument("-n", type=int, default=200, help="items to score, from the first (default: %(default)s)")
    p.add_argument("--grid", help="also write a comparison picture here (inputs | models... | truth)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    models = [load(m) for m in args.models]
    for path, model in zip(args.models, models):
        print(json.dumps({"path": path, **evaluate(model, args.data, args.split, args.n)}))
    if args.grid:
        comparison_grid(models, args.grid, args.data, args.split)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
