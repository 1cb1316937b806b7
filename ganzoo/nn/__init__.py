"""Networks and building blocks shared by the variants: initialisation, spectral norm, discriminator packing,
convolutions that run small inputs fast on the CPU, and the image-to-image networks (U-Net and ResNet generators,
PatchGAN and pixel discriminators) with the state dict keys of their reference implementation."""

from .blocks import INITS, Maxout, MemoryFormatSwitch, init_weights, pack, run_padded, spectral_norm_all
from .fast import Conv2d, ConvTranspose2d, InstanceNorm2d, dense_grad
from .translation import (
    DISCRIMINATORS,
    GENERATORS_HELP,
    NORMS,
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    generator_stride,
    make_norm,
)

__all__ = [
    "MemoryFormatSwitch",
    "DISCRIMINATORS",
    "GENERATORS_HELP",
    "INITS",
    "NORMS",
    "Conv2d",
    "ConvTranspose2d",
    "InstanceNorm2d",
    "Maxout",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetGenerator",
    "UnetGenerator",
    "build_discriminator",
    "build_generator",
    "dense_grad",
    "generator_stride",
    "init_weights",
    "make_norm",
    "pack",
    "run_padded",
    "spectral_norm_all",
]
