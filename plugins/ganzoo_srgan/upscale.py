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
import sys
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ganzoo.cliargs import device_arg, output_dir, positive_int
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


#: ``ganzoo upscale``'s default memory budget per image, in MiB (``--max-memory``).
DEFAULT_MAX_MEMORY_MB = 2048
#: The smallest LR tile side a budget may leave; below it the work per output pixel explodes (overlap dominates).
MIN_TILE = 16
#: LR context around each tile for an upscaler that does not report its receptive radius.
GENERIC_OVERLAP = 32
_MB = 2**20


def receptive_overlap(model: Any) -> int:
    """The LR context that makes tiled output equal untiled output: the model's ``receptive_radius()`` (or its
    generator's), else :data:`GENERIC_OVERLAP`."""
    for obj in (model, getattr(model, "G", None)):
        radius = getattr(obj, "receptive_radius", None)
        if callable(radius):
            return int(radius())
    return GENERIC_OVERLAP


def _channels(model: Any) -> int:
    return 3 if getattr(model, "channels", 3) == 3 else 1


def bytes_per_lr_pixel(model: Any) -> float:
    """Working memory of the model per LR pixel of a tile (its input with context): measured once on a small probe
    through forward hooks, as eight times the largest activation a layer produces (a layer's input and output, a
    skip connection held across blocks, convolution workspace; the tiny SRGAN of the tests peaks at about 6.5
    times), plus the tile's float input and output."""
    cached = getattr(model, "_ganzoo_bytes_per_lr_pixel", None)
    if cached is not None:
        return cached
    c, scale, side = _channels(model), int(model.scale), 16
    largest = 0

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        nonlocal largest
        if torch.is_tensor(output):
            largest = max(largest, output.numel() * output.element_size())

    handles = []
    if isinstance(model, torch.nn.Module):
        handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model.upscale(torch.zeros(1, c, side, side), tile=0, overlap=0)
    finally:
        for h in handles:
            h.remove()
    if not largest:  # not a module we can look into: assume 64 float channels at the output resolution
        largest = 64 * scale * scale * side * side * 4
    per_px = 8 * largest / (side * side) + 4 * c * (1 + 2 * scale * scale)
    try:
        model._ganzoo_bytes_per_lr_pixel = per_px
    except AttributeError:
        pass
    return per_px


def output_bytes(model: Any, size: tuple[int, int], gray: bool = False) -> int:
    """Host memory of one upscaled image of LR ``size`` (w, h): the 8-bit output image (PIL keeps RGB in 4 bytes a
    pixel), its PNG encoding (at most about its raw size) and the 8-bit input."""
    w, h = size
    out_px = w * h * int(model.scale) ** 2
    per_px = 2 if gray or _channels(model) == 1 else 7
    return out_px * per_px + w * h * 4


def plan_tile(
    model: Any, size: tuple[int, int], max_memory: int, overlap: int | None = None, gray: bool = False
) -> int:
    """The largest LR tile side whose working memory, beside the output image, fits ``max_memory`` bytes.

    :param model: the upscaler.
    :param size: the LR image's ``(width, height)``.
    :param max_memory: the budget in bytes for the whole image (output, its encoding and a tile's activations).
    :param overlap: LR context around each tile (default: :func:`receptive_overlap`).
    :param gray: the output is turned to gray (one byte a pixel).
    :returns: a tile side; ``max(size)`` or more means the whole image in one piece.
    :raises ConfigError: when the output alone, or the output and the smallest tile, do not fit, naming the
        budget that would.
    """
    overlap = receptive_overlap(model) if overlap is None else overlap
    w, h = size
    fixed = output_bytes(model, size, gray)
    per_px = bytes_per_lr_pixel(model)
    left = max_memory - fixed
    need = fixed + per_px * (min(MIN_TILE, w, h) + 2 * overlap) ** 2
    if left <= 0 or need > max_memory:
        sw, sh = w * int(model.scale), h * int(model.scale)
        raise ConfigError(
            f"upscaling a {w}x{h} image to {sw}x{sh} needs about {need / _MB:.0f} MiB, more than --max-memory "
            f"{max_memory / _MB:.0f}; raise --max-memory to at least {need / _MB + 1:.0f}, or split the image"
        )
    if per_px * (w * h) <= left:
        return max(w, h)  # the whole image at once: no context to recompute
    side = int((left / per_px) ** 0.5) - 2 * overlap
    return max(min(side, max(w, h)), MIN_TILE)


def upscale_image(
    model: Upscaler,
    im: Image.Image,
    tile: int | None = None,
    overlap: int | None = None,
    keep_gray: bool = True,
    max_memory: int | None = DEFAULT_MAX_MEMORY_MB * _MB,
) -> Image.Image:
    """Super-resolve a PIL image of any size and mode, tile by tile into an 8-bit image: the whole output never
    exists as floats. Grayscale input goes through an RGB model as RGB; with ``keep_gray`` the result is turned
    back to gray, so gray in gives gray out.

    :param model: the upscaler.
    :param im: the LR image.
    :param tile: LR tile side (0: the whole image at once); default: the largest that ``max_memory`` allows. A
        tile larger than the budget allows is made smaller.
    :param overlap: LR context read around each tile (default: the model's receptive radius, so tiles match the
        untiled output).
    :param keep_gray: gray in gives gray out.
    :param max_memory: budget in bytes for this image (see :func:`plan_tile`); ``None``: no budget.
    :returns: the upscaled image (``L`` or ``RGB``).
    :raises ConfigError: when the image cannot be upscaled within ``max_memory``.
    """
    sr_model = upscaler(model, "upscaling")
    gray = im.mode in ("L", "LA", "1", "I", "I;16", "F")
    target = "RGB" if _channels(model) == 3 else "L"
    src = im.convert(target) if im.mode != target else im
    w, h = src.size
    scale = int(sr_model.scale)
    overlap = receptive_overlap(model) if overlap is None else overlap
    whole = max(w, h)
    side = whole if tile is None or tile <= 0 else tile
    if max_memory is not None:
        side = min(side, plan_tile(model, (w, h), max_memory, overlap, gray and keep_gray))
    to_gray = gray and keep_gray and target != "L"
    out = Image.new("L" if to_gray or target == "L" else "RGB", (w * scale, h * scale))
    for y0 in range(0, h, side):
        for x0 in range(0, w, side):
            x1, y1 = min(x0 + side, w), min(y0 + side, h)
            xa, ya = (x0, y0) if side >= whole else (max(x0 - overlap, 0), max(y0 - overlap, 0))
            xb, yb = (x1, y1) if side >= whole else (min(x1 + overlap, w), min(y1 + overlap, h))
            sr = sr_model.upscale(pil_to_pm1(src.crop((xa, ya, xb, yb))), tile=0, overlap=0)[0]
            keep = sr[:, (y0 - ya) * scale : (y1 - ya) * scale, (x0 - xa) * scale : (x1 - xa) * scale]
            piece = pm1_to_pil(keep.detach().float().cpu())
            out.paste(piece.convert("L") if to_gray else piece, (x0 * scale, y0 * scale))
    return out


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
    tile = args.tile if args.tile is not None else 0
    if tile < 0 or (args.overlap is not None and args.overlap < 0):
        raise ConfigError(f"--tile and --overlap must be >= 0, got {args.tile} and {args.overlap}")
    budget = getattr(args, "max_memory", None)
    if budget is not None and budget < 1:
        raise ConfigError(f"--max-memory must be >= 1 (MiB), got {budget}")


def configure_upscale(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run directory or exported .safetensors file of an SR model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("-o", "--output", type=output_dir, required=True, metavar="DIR", help="folder for the upscaled PNGs")
    p.add_argument(
        "--tile",
        type=int,
        help="LR tile side, 0: the whole image at once (default: the largest --max-memory allows; a larger one is "
        "made smaller)",
    )
    p.add_argument(
        "--overlap", type=int, help="LR pixels of context around each tile (default: the receptive radius: seamless)"
    )
    p.add_argument(
        "--max-memory",
        type=int,
        default=DEFAULT_MAX_MEMORY_MB,
        metavar="MIB",
        help="memory budget per image in MiB: the 8-bit output, its PNG encoding and one tile's activations (on the "
        "model's device); an image whose output alone exceeds it is refused (default: %(default)s)",
    )
    p.add_argument("--device", type=device_arg, default="cpu", help="where the model runs: auto, cpu, cuda or cuda:N")
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
        budget = args.max_memory * _MB
        if args.tile:
            fits = plan_tile(model, im.size, budget, args.overlap, im.mode in ("L", "LA", "1", "I", "I;16", "F"))
            if fits < args.tile:
                print(
                    f"ganzoo: {f}: --tile {args.tile} does not fit --max-memory {args.max_memory}; tiles of {fits}",
                    file=sys.stderr,
                )
        sr = upscale_image(model, im, args.tile, args.overlap, max_memory=budget)
        dest = out / f"{f.stem}.png"
        buf = io.BytesIO()
        sr.save(buf, format="PNG")
        atomic_write_bytes(dest, buf.getvalue())
        print(f"{f} ({im.size[0]}x{im.size[1]}) -> {dest} ({sr.size[0]}x{sr.size[1]})")
    return 0


def configure_sr_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="SR model (run directory or .safetensors); omit for bicubic only")
    p.add_argument("--data", required=True, action="append", help="sr-pairs:DIR (DIR/HR, DIR/LR_xS); repeatable")
    p.add_argument("--scale", type=positive_int, help="scale factor (default: the model's, else 4)")
    p.add_argument("--tile", type=int, default=128, help="LR tile side (0: whole image at once)")
    p.add_argument("--overlap", type=int, help="LR context around each tile (default: the receptive radius)")
    p.add_argument(
        "--save", type=output_dir, metavar="DIR", help="write the model's outputs here (one subfolder per set)"
    )
    p.add_argument("--device", type=device_arg, default="cpu", help="where the model runs: auto, cpu, cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print the PSNR/SSIM table as JSON")
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
