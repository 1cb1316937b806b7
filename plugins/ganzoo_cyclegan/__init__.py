"""CycleGAN (Zhu et al. 2017) for ganzoo; its networks are the core's image-to-image networks
(``ganzoo.nn.translation``)."""

from collections.abc import Callable

from ganzoo import hookimpl

from .variant import CycleGAN

# Where the CycleGAN authors publish their datasets: unpaired NAME/trainA, trainB, testA, testB.
DATASETS_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
DATASETS = {
    **{
        n: n
        for n in (
            "horse2zebra",
            "apple2orange",
            "summer2winter_yosemite",
            "monet2photo",
            "cezanne2photo",
            "ukiyoe2photo",
            "vangogh2photo",
            "iphone2dslr_flower",
        )
    },
    # Unpaired versions of two pix2pix datasets, under their own names (the pix2pix plugin registers the aligned ones).
    "cyclegan-maps": "maps",
    "cyclegan-facades": "facades",
}


@hookimpl
def ganzoo_register_variants(register: Callable[..., None]) -> None:
    register(CycleGAN)


@hookimpl
def ganzoo_register_downloads(register: Callable[..., None]) -> None:
    for name, archive in DATASETS.items():
        register(name, DATASETS_URL.format(name=archive), "unaligned", help="CycleGAN dataset (unpaired trainA/trainB)")
