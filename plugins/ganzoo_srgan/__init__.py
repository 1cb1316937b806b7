"""SRGAN and SRResNet (Ledig et al. 2017) for ganzoo, with the ``upscale`` and ``sr-eval`` commands."""

from ganzoo import hookimpl

from .variant import SRGAN


@hookimpl
def ganzoo_register_variants(register):
    register(SRGAN)


@hookimpl
def ganzoo_register_commands(register):
    from .upscale import configure_sr_eval, configure_upscale, run_sr_eval, run_upscale

    register(
        "upscale",
        "super-resolve images with a trained SR model (tiled, any size), PNG out",
        configure_upscale,
        run_upscale,
        tasks=("super_resolution",),
    )
    register(
        "sr-eval",
        "PSNR/SSIM (Y channel, shave=scale) of an SR model on HR/LR pairs, beside bicubic",
        configure_sr_eval,
        run_sr_eval,
        tasks=("super_resolution",),
    )
