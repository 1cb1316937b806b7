"""Small pieces every family needs."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def init_weights(module: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """The initialisations of the GAN papers: ``normal`` N(0, gain) for conv/linear weights and N(1, gain) for
    norm scales (DCGAN, pix2pix, CycleGAN); ``xavier``/``kaiming``/``orthogonal`` as in pix2pix's options."""
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
                raise ValueError(f"unknown init {kind!r}; choose normal, xavier, kaiming or orthogonal")
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
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).amax(-1)
