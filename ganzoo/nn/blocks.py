"""Small pieces every family needs."""

from __future__ import annotations

import torch
from torch import Tensor, nn

INITS = ("normal", "xavier", "kaiming", "orthogonal")
"""The weight initialisations :func:`init_weights` knows."""


def init_weights(module: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise a network in place as the GAN papers do: ``normal`` N(0, gain) for conv/linear weights and
    N(1, gain) for norm scales (Radford et al. 2016, Isola et al. 2017, Zhu et al. 2017); ``xavier``, ``kaiming`` and
    ``orthogonal`` as in the options of Isola et al.'s reference implementation. Biases start at 0.

    :param module: the network.
    :param kind: one of :data:`INITS`.
    :param gain: std of the normal init, gain of xavier/orthogonal (unused by kaiming).
    :returns: ``module`` itself.
    :raises ValueError: for an unknown ``kind``.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"unknown init {kind!r}; choose {', '.join(INITS[:-1])} or {INITS[-1]}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def spectral_norm_all(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv and linear layer of a discriminator."""
    from torch.nn.utils.parametrizations import spectral_norm

    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Conv2d, nn.Linear, nn.Embedding)):
            setattr(module, name, spectral_norm(child))
        else:
            spectral_norm_all(child)
    return module


def pack(x: Tensor, m: int) -> Tensor:
    """PacGAN packing (Lin et al. 2018): join ``m`` samples into one discriminator input along the channel (or
    feature) axis, so D judges sets of samples and a collapsed generator is easy to spot."""
    if m == 1:
        return x
    b = x.shape[0]
    if b % m:
        raise ValueError(f"batch size {b} is not divisible by the packing degree {m}")
    if x.dim() == 2:
        return x.reshape(b // m, m * x.shape[1])
    return x.reshape(b // m, m * x.shape[1], *x.shape[2:]).contiguous(
        memory_format=torch.channels_last
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )


class Maxout(nn.Module):
    """A linear layer with ``pieces`` outputs per unit, keeping the maximum (Goodfellow et al. 2013)."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        # max, not amax: its backward scatters through the argmax indices, where amax's builds an equality mask
        # over all pieces (1.1x a whole step of the 2D-mixture GAN on a CPU). Ties, which amax would share, have
        # probability 0 for float activations.
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).max(-1).values


def run_padded(net: nn.Module, x: Tensor, stride: int) -> Tensor:
    """``net(x)`` for any image size, for a fully convolutional ``net`` whose input sides must be multiples of
    ``stride``: pad bottom and right up to such a multiple (reflection where the image is big enough, else edge
    replication), run, and crop the output back to the input's size.

    :param net: a network mapping ``B x C x H x W`` to images of the same size.
    :param x: the input batch.
    :param stride: the multiple the network needs (e.g. :func:`ganzoo.nn.generator_stride`).
    :returns: ``net``'s output cropped to ``x``'s height and width.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
    return net(x)[..., :h, :w]


class MemoryFormatSwitch:
    """Mixin for a wrapper around a network ``self.net`` (a feature extractor) that can run it in channels_last
    memory format, which under bf16 autocast is the fastest on CPUs with oneDNN's bf16 kernels. The wrapper sets
    ``self.channels_last = False`` when it builds ``self.net`` and passes its inputs through :meth:`in_format`."""

    net: nn.Module
    channels_last: bool

    def set_channels_last(self, on: bool):  # noqa: ANN201 - returns the wrapper itself, whatever its class
        """Switch the network's memory format (a no-op when it already has it).

        :param on: channels_last (True) or contiguous (False).
        :returns: self.
        """
        if on != self.channels_last:
            self.net.to(memory_format=torch.channels_last if on else torch.contiguous_format)
            self.channels_last = on
        return self

    def in_format(self, x: Tensor) -> Tensor:
        """``x`` in the network's memory format.

        :param x: a ``B x C x H x W`` input.
        """
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
