"""CycleGAN (Zhu et al. 2017) for ganzoo; its networks are Pix2Pix's (``ganzoo_pix2pix.model``)."""

from ganzoo import hookimpl

from .variant import CycleGAN


@hookimpl
def ganzoo_register_variants(register):
    register(CycleGAN)
