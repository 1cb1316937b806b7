"""Pix2Pix (Isola et al. 2017) for ganzoo, the image-to-image networks CycleGAN shares, reference checkpoint
interop, and the ``translate`` / ``import-reference`` commands."""

from ganzoo import hookimpl

from .variant import Pix2Pix


@hookimpl
def ganzoo_register_variants(register):
    register(Pix2Pix)


@hookimpl
def ganzoo_register_commands(register):
    from .commands import register_commands

    register_commands(register)
