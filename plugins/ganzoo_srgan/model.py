"""SRGAN networks (Ledig et al., CVPR 2017): the SRResNet generator, the VGG-style discriminator, content losses
and tiled inference.

At the paper's sizes (64 features, 16 residual blocks, x4, 96x96 HR crops) the generator has 1,549,462 parameters
and the discriminator has the paper's layers; its dense head sits behind an adaptive average pool to 6x6, which is
the identity at 96x96 (96 / 2^4 = 6) and lets the same weights judge crops of any size.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.errors import ConfigError, UnknownNameError


def upscale_steps(scale: int) -> int:
    """Number of x2 sub-pixel stages for ``scale`` (2, 4, 8 ...)."""
    steps = int(round(math.log2(scale))) if scale >= 2 else 0
    if scale < 2 or 2**steps != scale:
        raise ValueError(f"scale must be a power of two >= 2 (2, 4, 8), got {scale}")
    return steps


class ResidualBlock(nn.Module):
    """conv3x3 - BN - PReLU - conv3x3 - BN, plus the input (He et al. 2016 with Gross & Wilber's variant); without
    ``batch_norm``, conv3x3 - PReLU - conv3x3 (EDSR's block, with SRResNet's PReLU)."""

    def __init__(self, n: int, batch_norm: bool = True):
        super().__init__()

        def norm() -> list[nn.Module]:  # a new layer at each place
            return [nn.BatchNorm2d(n)] if batch_norm else []

        self.body = nn.Sequential(nn.Conv2d(n, n, 3, 1, 1), *norm(), nn.PReLU(), nn.Conv2d(n, n, 3, 1, 1), *norm())

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """The SRGAN generator: 9x9 conv + PReLU, ``n_blocks`` residual blocks, conv3x3 + BN with a skip from before the
    blocks, ``log2(scale)`` sub-pixel x2 stages (conv to 4n channels, pixel shuffle, PReLU), 9x9 conv to RGB.
    Takes and returns images in [-1, 1] (the output is not squashed: the MSE stage trains best unbounded).
    ``batch_norm=False`` drops every batch norm of the generator (blocks and fuse)."""

    def __init__(
        self, channels: int = 3, n_feats: int = 64, n_blocks: int = 16, scale: int = 4, batch_norm: bool = True
    ):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(channels, n_feats, 9, 1, 4), nn.PReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(n_feats, batch_norm) for _ in range(n_blocks)])
        norm = [nn.BatchNorm2d(n_feats)] if batch_norm else []
        self.fuse = nn.Sequential(nn.Conv2d(n_feats, n_feats, 3, 1, 1), *norm)
        up: list[nn.Module] = []
        for _ in range(upscale_steps(scale)):
            up += [nn.Conv2d(n_feats, 4 * n_feats, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU()]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(n_feats, channels, 9, 1, 4)

    def forward(self, lr: Tensor) -> Tensor:
        h = self.head(lr)
        h = h + self.fuse(self.blocks(h))
        return self.tail(self.upsample(h))

    def receptive_radius(self) -> int:
        """How far (in LR pixels) an output pixel looks: tiles overlapping by this much match untiled output."""
        n_blocks = len(self.blocks)
        lr_radius = 4 + 2 * n_blocks + 1
        # Each x2 stage's 3x3 conv looks one pixel further at its own resolution; the 9x9 tail 4 HR pixels.
        hr_px = 4 + sum(2**i for i in range(upscale_steps(self.scale)))
        return lr_radius + math.ceil(hr_px / self.scale) + 1


class Discriminator(nn.Module):
    """The paper's VGG-style discriminator: eight 3x3 convs 64 -> 512 (strides 1,2,1,2,...; BN after all but the
    first; LeakyReLU 0.2), dense 1024, LeakyReLU, dense 1. Returns one logit per image.

    ``pool`` (6) is where an adaptive average pool brings the last map before the dense layers, so any HR crop
    size works; at 96x96 the map already is 6x6 and the network is exactly the paper's."""

    def __init__(self, channels: int = 3, ndf: int = 64, dense: int = 1024, pool: int = 6):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        plan = [(ndf, 2), (2 * ndf, 1), (2 * ndf, 2), (4 * ndf, 1), (4 * ndf, 2), (8 * ndf, 1), (8 * ndf, 2)]
        for out, stride in plan:
            layers += [nn.Conv2d(ch, out, 3, stride, 1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(ch * pool * pool, dense), nn.LeakyReLU(0.2, inplace=True), nn.Linear(dense, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.features(x))).flatten()


# ---- content losses ----------------------------------------------------------------------------------------------

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG19 weights, as torch.hub caches them
VGG_ENV = "GANZOO_VGG19_WEIGHTS"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def find_vgg19_weights(path: str | None = None) -> Path | None:
    """The VGG19 weights file: ``path``, else ``$GANZOO_VGG19_WEIGHTS``, else torch hub's cache; None if absent.
    A path given explicitly (argument or env var) that does not exist is an error, not a silent fallback."""
    for given, what in ((path, "vgg_weights"), (os.environ.get(VGG_ENV), f"${VGG_ENV}")):
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise ConfigError(f"{what}: VGG19 weights file {str(p)!r} does not exist")
            return p
    hub = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    return hub if hub.is_file() else None


def load_vgg54(path: str | Path) -> nn.Module:
    """torchvision's VGG19 ``features`` up to conv5_4 + ReLU (before the 5th max-pool: ``features[:36]``), with
    weights from ``path`` (a torchvision state dict; classifier keys optional). Frozen, in eval mode."""
    from torchvision.models import vgg19

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or foreign file: one line naming it
        raise ConfigError(f"cannot read VGG19 weights {str(path)!r}: {str(e).splitlines()[0]}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"VGG19 weights {str(path)!r} do not hold a state dict")
    # Built on the meta device: the 120M-parameter classifier would otherwise be allocated and initialised for nothing.
    with torch.device("meta"):
        features = vgg19(weights=None).features[:36]
    features = features.to_empty(device="cpu")
    wanted = {f"features.{k}": v for k, v in features.state_dict().items()}
    missing = sorted(k for k in wanted if k not in state)
    if missing:
        raise ConfigError(f"VGG19 weights {str(path)!r} lack {', '.join(missing[:4])}; need torchvision's vgg19")
    features.load_state_dict({k[len("features.") :]: state[k] for k in wanted})
    return features.eval().requires_grad_(False)


class ContentLoss:
    """A content loss on images in [-1, 1]. Deliberately not an ``nn.Module`` attribute of the variant: a frozen
    VGG19 (80 MB) has no place in checkpoints and exported models."""

    name = ""

    def __call__(self, sr: Tensor, hr: Tensor) -> Tensor:
        raise NotImplementedError


class MSEContent(ContentLoss):
    """Pixel-wise MSE (SRResNet-MSE / SRGAN-MSE in the paper)."""

    name = "mse"

    def __call__(self, sr: Tensor, hr: Tensor) -> Tensor:
        return (sr.float() - hr.float()).square().mean()


class VGGContent(ContentLoss):
    """MSE between VGG19 feature maps (the paper's VGG54: conv5_4 after ReLU), each map scaled by 1/12.75 so the
    loss is of the order of the pixel MSE, as the paper rescales it."""

    name = "vgg54"
    rescale = 1 / 12.75

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.net = load_vgg54(path)
        self.mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)

    def features(self, x: Tensor) -> Tensor:
        if self.mean.device != x.device:
            self.net.to(x.device)
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = ((x + 1) / 2 - self.mean) / self.std
        return self.net(x) * self.rescale

    def __call__(self, sr: Tensor, hr: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.features(hr)
        return (self.features(sr).float() - target.float()).square().mean()


def _make_vgg54(vgg_weights: str | None) -> ContentLoss:
    path = find_vgg19_weights(vgg_weights)
    if path is None:
        warnings.warn(
            "SRGAN content loss 'vgg54' needs ImageNet VGG19 weights, which were not found; using 'mse' instead. "
            f"To enable VGG54, put torchvision's {VGG19_FILE} in {Path(torch.hub.get_dir()) / 'checkpoints'}, "
            f"or set ${VGG_ENV} or the config field vgg_weights to its path.",
            stacklevel=3,
        )
        return MSEContent()
    return VGGContent(path)


# A plugin-local registry: content losses are specific to SR/translation, so they do not go into the shared
# adversarial-loss registry (which expects AdversarialLoss objects). A core `ganzoo_register_content_losses` hook
# would let other plugins add perceptual losses (LPIPS, VGG22) here.
CONTENT_LOSSES: dict[str, Callable[[str | None], ContentLoss]] = {
    "mse": lambda _weights: MSEContent(),
    "vgg54": _make_vgg54,
}


def get_content_loss(name: str, vgg_weights: str | None = None) -> ContentLoss:
    if name not in CONTENT_LOSSES:
        raise UnknownNameError("content loss", name, CONTENT_LOSSES)
    return CONTENT_LOSSES[name](vgg_weights)


# ---- tiled inference ---------------------------------------------------------------------------------------------


def upscale_tiled(net: Callable[[Tensor], Tensor], lr: Tensor, scale: int, tile: int, overlap: int) -> Tensor:
    """Run ``net`` over ``lr`` (B x C x H x W) in tiles of ``tile`` LR pixels, each read with ``overlap`` extra
    pixels of context on every side; only each tile's centre is kept, so every output pixel is computed with at
    least ``overlap`` pixels of real context (no seams) and memory is bounded by the tile size, not the image.
    With ``overlap`` at least the net's receptive radius the result equals the untiled one (eval mode)."""
    b, _, h, w = lr.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return net(lr)
    out: Tensor | None = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)
            yb, xb = min(y1 + overlap, h), min(x1 + overlap, w)
            sr = net(lr[:, :, ya:yb, xa:xb])
            if out is None:
                out = sr.new_empty(b, sr.shape[1], h * scale, w * scale)
            s = scale
            out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = sr[
                :, :, (y0 - ya) * s : (y1 - ya) * s, (x0 - xa) * s : (x1 - xa) * s
            ]
    assert out is not None
    return out


def bicubic_upscale(lr: Tensor, scale: int) -> Tensor:
    """Torch bicubic upsampling of [-1, 1] images (for sample grids; evaluation uses PIL's, as the benchmarks do)."""
    return F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)
