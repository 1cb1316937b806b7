"""Building blocks shared by the variants: initialisation, spectral norm, discriminator packing."""

from .blocks import Maxout, init_weights, pack, spectral_norm_all

__all__ = ["Maxout", "init_weights", "pack", "spectral_norm_all"]
