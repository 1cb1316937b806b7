"""The original GAN of Goodfellow et al. 2014 (MLPs) for ganzoo."""

from ganzoo import hookimpl

from .variant import VanillaGAN


@hookimpl
def ganzoo_register_variants(register):
    register(VanillaGAN)
