"""DCGAN (Radford, Metz & Chintala 2015) for ganzoo."""

from ganzoo import hookimpl

from .variant import DCGAN


@hookimpl
def ganzoo_register_variants(register):
    register(DCGAN)
