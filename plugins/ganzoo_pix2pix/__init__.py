"""Pix2Pix (Isola et al. 2017) for ganzoo, reference checkpoint interop of the image-to-image variants, and the
``translate`` / ``import-reference`` commands; the networks are the core's (``ganzoo.nn.translation``)."""

from collections.abc import Callable

from ganzoo import hookimpl

from .variant import Pix2Pix

# Where the pix2pix authors publish their datasets: aligned A|B images in NAME/train, val, test.
DATASETS_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
DATASETS = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")


@hookimpl
def ganzoo_register_variants(register):
    register(Pix2Pix)


@hookimpl
def ganzoo_register_commands(register: Callable[..., None]) -> None:
    from .commands import register_commands

    register_commands(register)


@hookimpl
def ganzoo_register_downloads(register: Callable[..., None]) -> None:
    for name in DATASETS:
        register(name, DATASETS_URL.format(name=name), "aligned", help="pix2pix dataset (aligned A|B images)")
