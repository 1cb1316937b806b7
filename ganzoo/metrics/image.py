"""Full-reference image metrics: PSNR, SSIM and L1, computed the way the super-resolution literature does.

The SR protocol (SRGAN, EDSR, BasicSR): 8-bit images (0..255), converted to the Y channel of ITU-R BT.601 YCbCr,
``scale`` pixels shaved off each border, PSNR with peak 255, SSIM of Wang et al. (2004) with an 11x11 Gaussian
window (sigma 1.5), K1 = 0.01, K2 = 0.03, over the "valid" region only, one value per image, then the mean over
images. All arithmetic is float64.

Inputs are (C, H, W) or (B, C, H, W) tensors, or a sequence of those when images differ in size (test sets do).
Functions named ``*_per_image`` return a float64 tensor with one value per image; the plain names return the mean
as a Python float. The base functions take 0..255 images (uint8 or float); ``pm1_to_255`` and the ``*_pm1``
convenience functions take float images in [-1, 1] as the generators produce them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "rgb_to_y",
    "pm1_to_255",
    "psnr",
    "psnr_per_image",
    "ssim",
    "ssim_per_image",
    "l1",
    "l1_per_image",
    "psnr_pm1",
    "ssim_pm1",
    "image_scores",
]

Images = Tensor | Sequence[Tensor]

# BT.601 "studio swing" luma on 0..255 RGB: the coefficients of MATLAB's rgb2ycbcr, which the SR papers used.
_Y_COEFFS = (65.481, 128.553, 24.966)


def rgb_to_y(img: Tensor) -> Tensor:
    """Y of ITU-R BT.601 YCbCr: ``16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for RGB in 0..255.

    Takes (..., 3, H, W) of any dtype; returns (..., 1, H, W) float64 in [16, 235], not rounded (BasicSR keeps the
    fraction; MATLAB's uint8 version rounds, which moves Set5 bicubic PSNR by about -0.01 dB).
    """
    if img.shape[-3] != 3:
        raise ValueError(f"rgb_to_y needs 3 channels in dim -3, got shape {tuple(img.shape)}")
    x = img.to(torch.float64)
    y = (_Y_COEFFS[0] * x[..., 0:1, :, :] + _Y_COEFFS[1] * x[..., 1:2, :, :] + _Y_COEFFS[2] * x[..., 2:3, :, :]) / 255
    return y + 16.0


def pm1_to_255(img: Tensor, *, quantize: bool = True) -> Tensor:
    """Map float images in [-1, 1] to float64 0..255.

    ``quantize`` rounds to the 256 levels an 8-bit PNG would store, so a generated image is scored exactly as it
    would be after saving it, and the same way as the uint8 reference it is compared with.
    """
    x = ((img.to(torch.float64) + 1) * 127.5).clamp_(0, 255)
    return x.round_() if quantize else x


def _as_list(images: Images) -> list[Tensor]:
    if isinstance(images, Tensor):
        if images.ndim == 3:
            return [images[None]]
        if images.ndim == 4:
            return [images]
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(images.shape)}")
    out: list[Tensor] = []
    for im in images:
        out.extend(_as_list(im))
    return out


def _prepare(img: Tensor, data_range: float, y_channel: bool, shave: int) -> tuple[Tensor, float]:
    # Images decoded as HWC and permuted arrive channels-last; float64 convolutions on that layout take a slow
    # path (10x here), so make them contiguous once.
    x = img.to(torch.float64, memory_format=torch.contiguous_format)
    if y_channel:
        if x.shape[1] == 3:
            # Y's offset of 16 matters to SSIM (it enters the means), so scale to the 0..255 the formula expects.
            x = rgb_to_y(x if data_range == 255 else x * (255.0 / data_range))
            data_range = 255.0
        elif x.shape[1] != 1:
            raise ValueError(f"y_channel needs 1 or 3 channels, got {x.shape[1]}")
        # A one-channel image is its own luma and is scored as it is (BasicSR's to_y_channel does the same); mapping
        # it through rgb_to_y would squeeze it into 16..235 and inflate PSNR (Set14 bicubic: 26.09 instead of 25.99).
    if shave > 0:
        if x.shape[-2] <= 2 * shave or x.shape[-1] <= 2 * shave:
            raise ValueError(f"shave={shave} leaves nothing of a {x.shape[-2]}x{x.shape[-1]} image")
        x = x[..., shave:-shave, shave:-shave]
    return x, data_range


def _pairs(pred: Images, ref: Images) -> list[tuple[Tensor, Tensor]]:
    ps, rs = _as_list(pred), _as_list(ref)
    if len(ps) != len(rs):
        raise ValueError(f"got {len(ps)} prediction batches but {len(rs)} reference batches")
    for p, r in zip(ps, rs):
        if p.shape != r.shape:
            raise ValueError(f"prediction {tuple(p.shape)} and reference {tuple(r.shape)} differ in shape")
    return [(p, r.to(p.device)) for p, r in zip(ps, rs)]


def psnr_per_image(
    pred: Images, ref: Images, *, data_range: float = 255.0, y_channel: bool = False, shave: int = 0
) -> Tensor:
    """PSNR in dB of each image, ``10 log10(data_range^2 / MSE)``; ``inf`` where the images are identical.

    Args:
        pred, ref: images in 0..``data_range`` (uint8 or float).
        data_range: the peak value: 255 for 8-bit images.
        y_channel: score the BT.601 Y channel of RGB images (one-channel images are taken as Y already).
        shave: pixels removed from each border before scoring (the SR scale factor, by convention).
    """
    out = []
    for p, r in _pairs(pred, ref):
        x, peak = _prepare(p, data_range, y_channel, shave)
        y, _ = _prepare(r, data_range, y_channel, shave)
        mse = (x - y).pow(2).flatten(1).mean(dim=1)
        out.append(10 * torch.log10(peak**2 / mse))
    return torch.cat(out)


def psnr(pred: Images, ref: Images, *, data_range: float = 255.0, y_channel: bool = False, shave: int = 0) -> float:
    """Mean over images of the per-image PSNR (the SR papers' average), see :func:`psnr_per_image`."""
    return float(psnr_per_image(pred, ref, data_range=data_range, y_channel=y_channel, shave=shave).mean())


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_per_image(
    pred: Images,
    ref: Images,
    *,
    data_range: float = 255.0,
    y_channel: bool = False,
    shave: int = 0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """SSIM of each image (Wang et al. 2004, as MATLAB's ssim_index.m and BasicSR compute it).

    Local statistics come from a normalised Gaussian window applied over the "valid" region (no padding), so the
    map is (H - 10) x (W - 10); the score is the mean of the map, averaged over channels for multi-channel input.
    No automatic downsampling (the later ssim.m rescales large images; the SR literature does not).
    """
    out = []
    for p, r in _pairs(pred, ref):
        x, peak = _prepare(p, data_range, y_channel, shave)
        y, _ = _prepare(r, data_range, y_channel, shave)
        if min(x.shape[-2:]) < window_size:
            raise ValueError(f"image {tuple(x.shape[-2:])} is smaller than the {window_size}x{window_size} window")
        c = x.shape[1]
        g = _gaussian_window(window_size, sigma, x.dtype, x.device)
        # The 2-D Gaussian is separable: one pass along rows, one along columns, one group per channel.
        wh = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
        ww = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)

        def filt(t: Tensor, wh: Tensor = wh, ww: Tensor = ww, c: int = c) -> Tensor:
            return F.conv2d(F.conv2d(t, wh, groups=c), ww, groups=c)

        c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
        mu_x, mu_y = filt(x), filt(y)
        var_x = filt(x * x) - mu_x**2
        var_y = filt(y * y) - mu_y**2
        cov_xy = filt(x * y) - mu_x * mu_y
        num = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
        den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        out.append((num / den).flatten(1).mean(dim=1))
    return torch.cat(out)


def ssim(pred: Images, ref: Images, *, data_range: float = 255.0, y_channel: bool = False, shave: int = 0) -> float:
    """Mean over images of the per-image SSIM, see :func:`ssim_per_image`."""
    return float(ssim_per_image(pred, ref, data_range=data_range, y_channel=y_channel, shave=shave).mean())


def l1_per_image(pred: Images, ref: Images) -> Tensor:
    """Mean absolute difference of each image, in the inputs' own units (float64)."""
    return torch.cat(
        [(p.to(torch.float64) - r.to(torch.float64)).abs().flatten(1).mean(dim=1) for p, r in _pairs(pred, ref)]
    )


def l1(pred: Images, ref: Images) -> float:
    """Mean over images of the per-image mean absolute difference."""
    return float(l1_per_image(pred, ref).mean())


def psnr_pm1(pred: Images, ref: Images, *, y_channel: bool = False, shave: int = 0, quantize: bool = True) -> float:
    """PSNR of float images in [-1, 1], scored as the 8-bit images they would be saved as (0..255, peak 255)."""
    ps = [pm1_to_255(t, quantize=quantize) for t in _as_list(pred)]
    rs = [pm1_to_255(t, quantize=quantize) for t in _as_list(ref)]
    return psnr(ps, rs, data_range=255.0, y_channel=y_channel, shave=shave)


def ssim_pm1(pred: Images, ref: Images, *, y_channel: bool = False, shave: int = 0, quantize: bool = True) -> float:
    """SSIM of float images in [-1, 1], scored as the 8-bit images they would be saved as (0..255, peak 255)."""
    ps = [pm1_to_255(t, quantize=quantize) for t in _as_list(pred)]
    rs = [pm1_to_255(t, quantize=quantize) for t in _as_list(ref)]
    return ssim(ps, rs, data_range=255.0, y_channel=y_channel, shave=shave)


def image_scores(
    pred: Images, ref: Images, *, pm1: bool = False, y_channel: bool = False, shave: int = 0
) -> dict[str, float | int | list[float]]:
    """PSNR, SSIM and L1 (on the 0..255 scale) in one call: means plus per-image lists.

    Args:
        pm1: inputs are float images in [-1, 1] (quantized to 8 bits first); otherwise 0..255.
    """
    if pm1:
        ps = [pm1_to_255(t) for t in _as_list(pred)]
        rs = [pm1_to_255(t) for t in _as_list(ref)]
    else:
        ps, rs = _as_list(pred), _as_list(ref)
    p = psnr_per_image(ps, rs, y_channel=y_channel, shave=shave)
    s = ssim_per_image(ps, rs, y_channel=y_channel, shave=shave)
    a = l1_per_image(ps, rs)
    return {
        "psnr": float(p.mean()),
        "ssim": float(s.mean()),
        "l1": float(a.mean()),
        "psnr_per_image": p.tolist(),
        "ssim_per_image": s.tolist(),
        "l1_per_image": a.tolist(),
        "num_images": int(p.numel()),
    }
