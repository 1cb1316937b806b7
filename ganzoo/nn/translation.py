"""Image-to-image networks: the U-Net generator (Isola et al. 2017), the ResNet generator (Johnson et al. 2016, as
used by Zhu et al. 2017), the PatchGAN and 1x1 "pixel" discriminators, by the architecture names of the authors'
reference implementation (``unet_256``, ``resnet_9blocks``, ``basic``, ``n_layers``, ``pixel``).

The module trees are laid out so that ``state_dict()`` keys are exactly those of that reference implementation
(github.com/junyanz, ``models/networks.py``) for the same architecture name: every layer sits at
the index the reference gives it inside an ``nn.Sequential`` called ``model`` (``net`` for the pixel
discriminator), parameter-free layers (padding, activations, dropout) included, and the U-Net nests one
``model`` attribute per level (``model.model.1.model.3.model...``). Reference checkpoints therefore load with the
identity key mapping.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from .blocks import init_weights
from .fast import Conv2d, ConvTranspose2d, InstanceNorm2d, dense_grad

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS_HELP",
    "NORMS",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetBlock",
    "UnetGenerator",
    "build_discriminator",
    "build_generator",
    "conv_bias",
    "generator_stride",
    "make_norm",
    "parse_generator",
]

NORMS = ("batch", "instance", "none")
"""The normalisations :func:`make_norm` builds."""
GENERATORS_HELP = (
    "unet_256, unet_128, unet_64, unet_32 (U-Net of log2(N) downsamplings), resnet_9blocks, resnet_6blocks"
)
"""The generator architecture names, for help texts and error messages."""
DISCRIMINATORS = ("basic", "n_layers", "pixel")
"""The discriminator architecture names :func:`build_discriminator` knows."""

_UNET = re.compile(r"unet_(\d+)$")
_RESNET = re.compile(r"resnet_(\d+)blocks$")


def make_norm(kind: str, channels: int) -> nn.Module:
    """The normalisation layer the reference uses: BatchNorm with affine and running stats; InstanceNorm without
    either (the reference's current setting); ``none`` is an identity that keeps layer indices (and so key names).

    :param kind: ``batch``, ``instance`` or ``none`` (:data:`NORMS`).
    :param channels: channels of the normalised feature map.
    :returns: the layer.
    :raises ValueError: for an unknown ``kind``.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; valid: {', '.join(NORMS)}")


def conv_bias(norm: str) -> bool:
    """Whether a convolution followed by the ``norm`` layer has a bias, as the reference decides.

    :param norm: ``batch``, ``instance`` or ``none``.
    :returns: ``True`` for ``instance`` only.
    """
    # A conv followed by BatchNorm has its bias cancelled by the mean subtraction; InstanceNorm without affine
    # leaves the network no other offset, hence a bias. The reference decides the same way (and also drops the bias
    # with norm "none", which we follow to keep its key names).
    return norm == "instance"


class UnetBlock(nn.Module):
    """One level of the U-Net: down-convolution, the inner levels, up-convolution, and the skip connection that
    concatenates this level's input with its output (except at the outermost level, which returns the image)."""

    def __init__(
        self,
        outer: int,
        inner: int,
        in_channels: int | None = None,
        sub: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        down = Conv2d(in_channels or outer, inner, 4, 2, 1, bias=bias)
        if outermost:
            layers: list[nn.Module] = [
                down,
                sub,
                nn.ReLU(True),
                ConvTranspose2d(inner * 2, outer, 4, 2, 1),
                nn.Tanh(),
            ]
        elif innermost:
            up = ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, make_norm(norm, outer)]
        else:
            up = ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, make_norm(norm, inner), sub]
            layers += [nn.ReLU(True), up, make_norm(norm, outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, dense_grad(self.model(x))], 1)


class UnetGenerator(nn.Module):
    """U-Net of ``num_downs`` stride-2 levels (8 for 256x256: the bottleneck is 1x1). Widths: ngf, 2ngf, 4ngf, then
    8ngf for every deeper level; dropout 0.5 in the decoder of the 8ngf levels below the three outer ones, as in
    Isola et al. 2017."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_downs: int,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
    ):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"a U-Net needs at least 5 downsamplings, got {num_downs}")
        self.stride = 2**num_downs
        block = UnetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, sub=block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            block = UnetBlock(ngf * mult, ngf * mult * 2, sub=block, norm=norm)
        self.model = UnetBlock(out_channels, ngf, in_channels, sub=block, outermost=True, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with a residual connection (Johnson et al. 2016)."""

    def __init__(self, dim: int, norm: str, dropout: bool, bias: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(norm, dim)]
        layers.append(nn.ReLU(True))
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """The ResNet generator of Zhu et al. 2017: 7x7 stem, two stride-2 downsamplings, ``n_blocks`` residual blocks
    at 4ngf, two fractionally strided upsamplings, 7x7 head with tanh; reflection padding throughout."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        n_blocks: int = 9,
    ):
        super().__init__()
        self.stride = 4
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias)]
        layers += [make_norm(norm, ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1, bias=bias), make_norm(norm, ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch, norm, dropout, bias) for _ in range(n_blocks)]
        for _ in range(2):
            up = ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=bias)
            layers += [up, make_norm(norm, ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4x4 convolutions (widths ndf, 2ndf, ... capped at 8ndf), one stride-1, then a
    1-channel map of logits. With ``n_layers=3`` each logit sees a 70x70 patch."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias), make_norm(norm, ndf * mult)]
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN ("PixelGAN"): judges each pixel's colour on its own."""

    def __init__(self, in_channels: int, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            make_norm(norm, ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def parse_generator(name: str) -> tuple[str, int]:
    """Split a generator architecture name into its kind and size.

    :param name: ``unet_N`` (N a power of two >= 32) or ``resnet_Nblocks``.
    :returns: ``("unet", downsamplings)`` (``"unet_256"`` -> ``("unet", 8)``) or ``("resnet", blocks)``
        (``"resnet_9blocks"`` -> ``("resnet", 9)``).
    :raises ValueError: for a name of neither form, naming the valid ones.
    """
    m = _UNET.match(name)
    if m:
        size = int(m.group(1))
        if size < 32 or size & (size - 1):
            raise ValueError(
                f"generator {name!r}: the U-Net size must be a power of two >= 32; valid: {GENERATORS_HELP}"
            )
        return "unet", size.bit_length() - 1
    m = _RESNET.match(name)
    if m:
        return "resnet", int(m.group(1))
    raise ValueError(f"unknown generator {name!r}; valid: {GENERATORS_HELP}")


def generator_stride(name: str) -> int:
    """The multiple every input side must be (the U-Net halves the image ``num_downs`` times, the ResNet twice).

    :param name: a generator architecture name (see :func:`parse_generator`).
    :returns: ``2 ** num_downs`` for a U-Net, 4 for a ResNet generator.
    :raises ValueError: for an unknown name.
    """
    kind, n = parse_generator(name)
    return 2**n if kind == "unet" else 4


def build_generator(
    name: str,
    in_channels: int,
    out_channels: int,
    ngf: int = 64,
    norm: str = "batch",
    dropout: bool = False,
    init: str = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """A generator by its reference architecture name, initialised as the reference does.

    :param name: ``unet_256``, ``unet_128`` ... (:class:`UnetGenerator`) or ``resnet_9blocks``, ``resnet_6blocks`` ...
        (:class:`ResnetGenerator`).
    :param in_channels: channels of the input images.
    :param out_channels: channels of the output images.
    :param ngf: width (channels of the first layer).
    :param norm: ``batch``, ``instance`` or ``none``.
    :param dropout: dropout 0.5 in the U-Net decoder's inner levels / inside the residual blocks.
    :param init: ``normal``, ``xavier``, ``kaiming`` or ``orthogonal`` (see :func:`ganzoo.nn.init_weights`).
    :param init_gain: std of the normal init, gain of xavier/orthogonal.
    :returns: the initialised network; it has a ``stride`` attribute (see :func:`generator_stride`).
    :raises ValueError: for an unknown name, norm or init.
    """
    kind, n = parse_generator(name)
    if kind == "unet":
        net: nn.Module = UnetGenerator(in_channels, out_channels, n, ngf, norm, dropout)
    else:
        net = ResnetGenerator(in_channels, out_channels, ngf, norm, dropout, n)
    return init_weights(net, init, init_gain)


def build_discriminator(
    name: str,
    in_channels: int,
    ndf: int = 64,
    n_layers: int = 3,
    norm: str = "batch",
    init: str = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """A discriminator by its reference architecture name, initialised as the reference does.

    :param name: ``basic`` (70x70 PatchGAN), ``n_layers`` (PatchGAN of ``n_layers``) or ``pixel`` (1x1)
        (:data:`DISCRIMINATORS`).
    :param in_channels: channels of the judged input (both images stacked for a conditional discriminator).
    :param ndf: width (channels of the first layer).
    :param n_layers: stride-2 layers of the ``n_layers`` PatchGAN (ignored by the others).
    :param norm: ``batch``, ``instance`` or ``none``.
    :param init: ``normal``, ``xavier``, ``kaiming`` or ``orthogonal`` (see :func:`ganzoo.nn.init_weights`).
    :param init_gain: std of the normal init, gain of xavier/orthogonal.
    :returns: the initialised network, whose output is a one-channel map of logits.
    :raises ValueError: for an unknown name, norm or init.
    """
    if name == "basic":
        net: nn.Module = NLayerDiscriminator(in_channels, ndf, 3, norm)
    elif name == "n_layers":
        net = NLayerDiscriminator(in_channels, ndf, n_layers, norm)
    elif name == "pixel":
        net = PixelDiscriminator(in_channels, ndf, norm)
    else:
        raise ValueError(f"unknown discriminator {name!r}; valid: {', '.join(DISCRIMINATORS)}")
    return init_weights(net, init, init_gain)
