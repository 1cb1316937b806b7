"""AttnGAN (Xu et al. 2018) for ganzoo: the ``attngan`` variant, its DAMSM R-precision evaluator for ``ganzoo eval``
(the independent R-precision and attribute scores come from the core's ``scenes`` evaluator), and the
``ganzoo generate`` command."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ganzoo import hookimpl
from ganzoo.cliargs import bounded_int, device_arg, image_file, seed_int
from ganzoo.errors import TRUST_HELP

from .variant import AttnGAN


@hookimpl
def ganzoo_register_variants(register: Callable[..., None]) -> None:
    register(AttnGAN)


#: The most images one ``ganzoo generate`` draws (a 64 x 64 grid), as for ``ganzoo sample``.
MAX_IMAGES = 4096


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="run directory or exported .safetensors file of a text-to-image model")
    parser.add_argument("caption", help='what to draw, e.g. "a red circle above a small blue square"')
    parser.add_argument("-n", type=bounded_int(1, MAX_IMAGES), default=8, help=f"images to draw, at most {MAX_IMAGES}")
    parser.add_argument("-o", "--output", type=image_file, default="generated.png", help="PNG grid to write")
    parser.add_argument(
        "--seed", type=seed_int, default=0, help="the noise's seed: same seed, caption and options, same images"
    )
    parser.add_argument(
        "--device", type=device_arg, default="cpu", help="where the model runs: auto, cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--attention-maps", type=image_file, metavar="FILE", help="also write the per-word attention maps (PNG)"
    )
    parser.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)


def _run(args: argparse.Namespace) -> int:
    from ganzoo.api import load
    from ganzoo.errors import ConfigError
    from ganzoo.tasks import TextToImageGenerator, require
    from ganzoo.utils.images import SampleGrid

    from .maps import save_attention_maps

    model = require(
        load(args.model, device=args.device, trust_unverified=args.trust_unverified),
        TextToImageGenerator,
        purpose="`ganzoo generate`",
    )
    if not isinstance(model, AttnGAN):
        # Any text-to-image model draws; the words read and the attention maps are AttnGAN's own.
        if args.attention_maps:
            raise ConfigError(f"--attention-maps needs an attngan model, not {model.name}")
        images = model.generate_from_captions([args.caption] * args.n, seed=args.seed)
        path = SampleGrid(images.float(), title=args.caption).save(args.output)
        print(f"wrote {args.n} images of {args.caption!r} to {path}")
        return 0
    out = model.generate_details(args.caption, n=args.n, seed=args.seed)
    unknown = [w for w in out["words"][0] if w == model.vocab.SPECIALS[1]]
    read = " ".join(out["words"][0])
    # The title is the caption as the model read it: unknown words show as <unk>.
    path = SampleGrid(out["images"][-1].float(), title=read).save(args.output)
    print(f"wrote {args.n} images of {read!r} to {path}" + (" (unknown words read as <unk>)" if unknown else ""))
    if args.attention_maps:
        maps = save_attention_maps(out, args.attention_maps, rows=min(args.n, 4))
        print(f"wrote the attention maps to {maps}")
    return 0


@hookimpl
def ganzoo_register_evaluators(register: Callable[..., None]) -> None:
    from .evaluate import DamsmRPrecisionEvaluator

    register(DamsmRPrecisionEvaluator())


@hookimpl
def ganzoo_register_commands(register: Callable[..., None]) -> None:
    register(
        "generate",
        "draw images from a caption with a text-to-image model (optionally its word attention maps)",
        _configure,
        _run,
        tasks=("text_to_image",),
    )
