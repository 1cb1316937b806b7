"""Inference and evaluation of SR models: ``ganzoo upscale`` and ``ganzoo sr-eval``.

Evaluation follows the SR literature (PROTOCOLS.md section 3): PSNR and SSIM on the BT.601 Y channel with ``scale``
pixels shaved off each border, per image, averaged; the bicubic row upsamples the given LR images with PIL BICUBIC.
Grayscale images (Set14 img_003) are fed to an RGB model as RGB and its output is turned back to gray (PIL's
BT.601 luma) before scoring against the gray HR image, which is scored as it is, like the bicubic row.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ganzoo.data.base import DataError
from ganzoo.data.files import image_inputs, image_to_tensor, open_image
from ganzoo.errors import TRUST_HELP, ConfigError
from ganzoo.tasks import Upscaler, require


def pil_to_pm1(im: Image.Image) -> torch.Tensor:
    """A PIL image as a ``1 x C x H x W`` float tensor in [-1, 1]."""
    return image_to_tensor(im)[None].float().div(127.5).sub(1.0)


def pm1_to_pil(img: torch.Tensor) -> Image.Image:
    """One ``C x H x W`` [-1, 1] image as a PIL image (rounded to 8 bits, as saved)."""
    from ganzoo.utils.images import to_pil

    return to_pil(img)


def upscale_image(
    model: Upscaler, im: Image.Image, tile: int = 128, overlap: int | None = None, keep_gray: bool = True
) -> Image.Image:
    """Super-resolve a PIL image of any size and mode. Grayscale input goes through an RGB model as RGB; with
    ``keep_gray`` the result is turned back to gray, so gray in gives gray out."""
    gray = im.mode in ("L", "LA", "1", "I", "I;16", "F")
    target = "RGB" if getattr(model, "channels", 3) == 3 else "L"
    x = pil_to_pm1(im.convert(target) if im.mode != target else im)
    out = pm1_to_pil(upscaler(model, "upscaling").upscale(x, tile=tile, overlap=overlap)[0])
    return out.convert("L") if gray and keep_gray and out.mode != "L" else out


def upscaler(model: Any, purpose: str) -> Upscaler:
    """``model`` checked against :class:`ganzoo.tasks.Upscaler` (a one-line error otherwise)."""
    return require(model, Upscaler, purpose=purpose)


def _open_any(path: Path) -> Image.Image:
    """Decode keeping grayscale as gray (``open_image`` needs a channel count up front)."""
    try:
        with Image.open(path) as im:
            mode = im.mode
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}") from None
    return open_image(path, 1 if mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F") else 3)


def evaluate_sr(
    model: Upscaler | None,
    root: str | Path,
    scale: int | None = None,
    tile: int = 128,
    overlap: int | None = None,
    save_dir: str | Path | None = None,
) -> dict[str, Any]:
    """PSNR/SSIM (Y channel, ``shave = scale``) of bicubic upsampling and of ``model`` (if given) on the pairs
    ``root/HR`` + ``root/LR_x{scale}``. Returns ``{"set", "scale", "n", "rows": {"bicubic": {...}, "model": {...}}}``
    with per-image lists; ``save_dir`` receives the model's outputs as PNG."""
    from ganzoo.data.sr import SRPairsDataset
    from ganzoo.metrics.image import psnr_per_image, ssim_per_image

    if model is not None:
        sr_model = upscaler(model, "ganzoo sr-eval")
        if scale is not None and scale != sr_model.scale:
            raise ConfigError(f"--scale {scale} does not match the model's scale {sr_model.scale}")
        scale = sr_model.scale
    scale = scale or 4
    pairs = SRPairsDataset(root, scale=scale, crop=0, channels=0)
    refs, bics, outs = [], [], []
    seconds = 0.0
    for i in range(len(pairs)):
        hr, lr = pairs.load_pair(i)
        refs.append(image_to_tensor(hr))
        bics.append(image_to_tensor(lr.resize(hr.size, Image.Resampling.BICUBIC)))
        if model is not None:
            t0 = time.perf_counter()
            sr = upscale_image(model, lr, tile, overlap)
            seconds += time.perf_counter() - t0
            outs.append(image_to_tensor(sr))
            if save_dir is not None:
                Path(save_dir).mkdir(parents=True, exist_ok=True)
                sr.save(Path(save_dir) / f"{pairs.hr_files[i].stem}.png")
    kw = dict(y_channel=True, shave=scale)

    def row(preds: list[torch.Tensor]) -> dict[str, Any]:
        p, s = psnr_per_image(preds, refs, **kw), ssim_per_image(preds, refs, **kw)
        return {
            "psnr": float(p.mean()),
            "ssim": float(s.mean()),
            "psnr_per_image": p.tolist(),
            "ssim_per_image": s.tolist(),
        }

    rows = {"bicubic": row(bics)}
    if model is not None:
        rows["model"] = {**row(outs), "seconds": seconds}
    return {"set": str(root), "scale": scale, "n": len(pairs), "names": pairs.names(), "rows": rows}


# ---- CLI ---------------------------------------------------------------------------------------------------------


def _positive_tiling(args: argparse.Namespace) -> None:
    if args.tile < 0 or (args.overlap is not None and args.overlap < 0):
        raise ConfigError(f"--tile and --overlap must be >= 0, got {args.tile} and {args.overlap}")


def configure_upscale(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run directory or exported .safetensors file of an SR model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the upscaled PNGs")
    p.add_argument("--tile", type=int, default=128, help="LR tile side (0: whole image at once)")
    p.add_argument(
        "--overlap", type=int, help="LR pixels of context around each tile (default: the receptive radius: seamless)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)


def run_upscale(args: argparse.Namespace) -> int:
    from ganzoo.api import load

    _positive_tiling(args)
    model = upscaler(load(args.model, device=args.device, trust_unverified=args.trust_unverified), "ganzoo upscale")
    from ganzoo.utils.files import atomic_write_bytes, refuse_overwriting_inputs

    files = image_inputs(args.inputs)
    out = Path(args.output)
    refuse_overwriting_inputs(files, [out / f"{f.stem}.png" for f in files])
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        im = _open_any(f)
        sr = upscale_image(model, im, args.tile, args.overlap)
        dest = out / f"{f.stem}.png"
        buf = io.BytesIO()
        sr.save(buf, format="PNG")
        atomic_write_bytes(dest, buf.getvalue())
        print(f"{f} ({im.size[0]}x{im.size[1]}) -> {dest} ({sr.size[0]}x{sr.size[1]})")
    return 0


def configure_sr_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="SR model (run directory or .safetensors); omit for bicubic only")
    p.add_argument("--data", required=True, action="append", help="sr-pairs:DIR (DIR/HR, DIR/LR_xS); repeatable")
    p.add_argument("--scale", type=int, help="scale factor (default: the model's, else 4)")
    p.add_argument("--tile", type=int, default=128, help="LR tile side (0: whole image at once)")
    p.add_argument("--overlap", type=int, help="LR context around each tile (default: the receptive radius)")
    p.add_argument("--save", metavar="DIR", help="write the model's outputs here (one subfolder per set)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)


def run_sr_eval(args: argparse.Namespace) -> int:
    from ganzoo.api import load

    _positive_tiling(args)
    model = load(args.model, device=args.device, trust_unverified=args.trust_unverified) if args.model else None
    results = []
    for spec in args.data:
        name, sep, path = spec.partition(":")
        if not sep or name != "sr-pairs" or not path:
            raise DataError(f"--data {spec!r} is not valid; use sr-pairs:DIR with DIR/HR and DIR/LR_x{{scale}}")
        save = Path(args.save) / Path(path).name if args.save else None
        results.append(evaluate_sr(model, path, args.scale, args.tile, args.overlap, save))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"{r['set']} x{r['scale']}, {r['n']} images, Y channel, shave {r['scale']}:")
        for label, row in r["rows"].items():
            name = "bicubic (PIL)" if label == "bicubic" else (args.model or "model")
            print(f"  {name:<40} PSNR {row['psnr']:7.3f} dB   SSIM {row['ssim']:.4f}")
    return 0
