"""Building blocks shared by the variants: initialisation, spectral norm, discriminator packing, and convolutions
that run small inputs fast on the CPU."""

from .blocks import Maxout, init_weights, pack, spectral_norm_all
from .fast import Conv2d, ConvTranspose2d, InstanceNorm2d, dense_grad

__all__ = [
    "Conv2d",
    "ConvTranspose2d",
    "InstanceNorm2d",
    "Maxout",
    "dense_grad",
    "init_weights",
    "pack",
    "spectral_norm_all",
]
