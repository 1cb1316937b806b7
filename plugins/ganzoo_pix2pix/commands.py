"""Command-line tools of the image-to-image variants: ``translate``, ``import-reference``, ``export-reference``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from ganzoo.cliargs import bounded_int, device_arg, output_dir, output_file, positive_int
from ganzoo.data.base import DataError
from ganzoo.errors import TRUST_HELP, ConfigError


def _inputs(paths: list[str]) -> list[tuple[Path, Path]]:
    """``(file, output name)`` for every image named or found (recursively) in a named folder."""
    from ganzoo.data.files import list_images

    found: list[tuple[Path, Path]] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            found += [(f, f.relative_to(p).with_suffix(".png")) for f in list_images(p)]
        elif p.is_file():
            found.append((p, Path(p.name).with_suffix(".png")))
        elif p.exists():
            raise DataError(f"{p} is not a regular file (a FIFO, device or socket); give image files or folders")
        else:
            raise DataError(f"input not found: {p}")
    seen: dict[Path, int] = {}
    unique = []
    for f, name in found:
        n = seen.get(name, 0)
        seen[name] = n + 1
        # Two inputs with one file name (from different folders) must not overwrite each other's output.
        unique.append((f, name if n == 0 else name.with_name(f"{name.stem}_{n}.png")))
    return unique


def _load(path: Path, channels: int, aligned: str | None, size: int) -> torch.Tensor:
    from PIL import Image

    from ganzoo.data.files import image_to_tensor, open_image

    im = open_image(path, channels)
    if aligned:
        w, h = im.size
        if w % 2:
            raise DataError(f"aligned image {path} has odd width {w}; A|B pairs need two halves of equal width")
        im = im.crop((0, 0, w // 2, h)) if aligned == "left" else im.crop((w // 2, 0, w, h))
    if size:
        im = im.resize((size, size), Image.Resampling.BICUBIC)
    return image_to_tensor(im)


#: The largest ``translate --size``: the side the translators are trained at is 256; 8192 is far past any use.
MAX_SIZE = 8192


def configure_translate(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run directory or exported .safetensors of a pix2pix or cyclegan model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("-o", "--output", type=output_dir, required=True, help="folder for the translated PNGs")
    p.add_argument(
        "--direction",
        choices=["a2b", "b2a"],
        default="a2b",
        help="a2b: the A -> B generator; b2a: CycleGAN's G_B (B -> A)",
    )
    p.add_argument(
        "--batch-size",
        dest="batch_size",
        type=positive_int,
        default=8,
        help="images per forward pass (equal-sized images are batched together)",
    )
    p.add_argument(
        "--size",
        type=bounded_int(0, MAX_SIZE),
        default=0,
        help=f"resize inputs to SIZE x SIZE first, at most {MAX_SIZE} (default: keep their size)",
    )
    p.add_argument("--aligned", action="store_true", help="inputs are A|B pairs: use the A half (B half with b2a)")
    p.add_argument("--device", type=device_arg, default="cpu", help="where the model runs: auto, cpu, cuda or cuda:N")
    p.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)


def run_translate(args: argparse.Namespace) -> int:
    from ganzoo.api import load
    from ganzoo.tasks import Translator, require
    from ganzoo.utils.images import save_image

    model = require(
        load(args.model, device=args.device, trust_unverified=args.trust_unverified),
        Translator,
        purpose="ganzoo translate",
    )
    if args.direction not in model.directions:
        raise ConfigError(
            f"{model.name} translates {', '.join(model.directions)} only, not {args.direction}"
            + ("; train it with direction=b2a for the other way" if args.direction == "b2a" else "")
        )
    from ganzoo.utils.files import refuse_overwriting_inputs

    files = _inputs(args.inputs)
    out_dir = Path(args.output)
    refuse_overwriting_inputs([f for f, _ in files], [out_dir / name for _, name in files])
    aligned = ("left" if args.direction == "a2b" else "right") if args.aligned else None
    channels = model.channels
    # Batches of equal-sized images, in input order; sizes that differ make separate batches.
    groups: dict[tuple[int, ...], list[tuple[torch.Tensor, Path]]] = {}
    done = 0

    def flush(key: tuple[int, ...]) -> None:
        nonlocal done
        items = groups.pop(key)
        x = torch.stack([t for t, _ in items])
        y = model.translate(x, args.direction)
        for img, (_, name) in zip(y, items):
            save_image(img, out_dir / name)
        done += len(items)

    for path, name in files:
        t = _load(path, channels, aligned, args.size)
        key = tuple(t.shape)
        groups.setdefault(key, []).append((t, name))
        if len(groups[key]) == args.batch_size:
            flush(key)
    for key in list(groups):
        flush(key)
    print(f"translated {done} images ({args.direction}) to {out_dir}")
    return 0


def configure_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("variant", help="pix2pix or cyclegan")
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="reference .pth files (latest_net_G.pth ...; the net comes from the name, or write NET=FILE)",
    )
    p.add_argument(
        "-o", "--output", type=output_file, required=True, help="the ganzoo model file to write (.safetensors)"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override (architecture is inferred)")


def run_import(args: argparse.Namespace) -> int:
    import ganzoo
    from ganzoo.api import save_model
    from ganzoo.config import parse_assignments

    from .interop import NETS, infer_config, load_reference_state_dict, net_name_of_file, read_reference_file

    family = args.variant.split(".")[0]
    if family not in NETS:
        raise ConfigError(f"reference checkpoints exist for {', '.join(NETS)}, not {args.variant!r}")
    named: dict[str, Path] = {}
    for item in args.files:
        net, sep, file = item.partition("=")
        if not sep:
            file, net = item, net_name_of_file(item) or ""
        if net not in NETS[family]:
            raise ConfigError(f"cannot tell which network {item!r} holds; write NET=FILE with NET in {NETS[family]}")
        named[net] = Path(file)
    inferred: dict[str, object] = {}
    for net, path in named.items():
        inferred.update(infer_config(read_reference_file(path), net[0]))
    overrides = {**inferred, **parse_assignments(args.set)}
    if family == "cyclegan" and "dropout" not in overrides:
        overrides["dropout"] = False
    variant = ganzoo.create(args.variant, **overrides)
    for net, path in named.items():
        load_reference_state_dict(variant, path, net)
    path = save_model(
        variant, args.output, name=args.variant, extra={"imported_from": {k: str(v) for k, v in named.items()}}
    )
    missing = [n for n in NETS[family] if n not in named]
    note = f"; left at initialisation: {', '.join(missing)}" if missing else ""
    print(f"imported {', '.join(named)} into {args.variant} ({overrides}) -> {path}{note}")
    return 0


def configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run directory or exported .safetensors of a pix2pix or cyclegan model")
    p.add_argument("-o", "--output", type=output_dir, required=True, help="folder for latest_net_*.pth files")
    p.add_argument("--prefix", default="latest", help="file name prefix (an epoch number in the reference)")
    p.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)


def run_export(args: argparse.Namespace) -> int:
    from ganzoo.api import load

    from .interop import NETS, save_reference_state_dict

    model = load(args.model, trust_unverified=args.trust_unverified)
    if model.name not in NETS:
        raise ConfigError(f"{model.name} has no reference checkpoint format; only {', '.join(NETS)}")
    paths = [
        save_reference_state_dict(model, Path(args.output) / f"{args.prefix}_net_{n}.pth", n) for n in NETS[model.name]
    ]
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def register_commands(register: Callable[..., None]) -> None:
    register(
        "translate",
        "translate image files or folders with a pix2pix or cyclegan model (PNG out)",
        configure_translate,
        run_translate,
        tasks=("paired", "unpaired"),
    )
    register(
        "import-reference",
        "build a ganzoo model from pytorch-CycleGAN-and-pix2pix .pth files",
        configure_import,
        run_import,
    )
    register(
        "export-reference",
        "write a pix2pix/cyclegan model as pytorch-CycleGAN-and-pix2pix .pth files",
        configure_export,
        run_export,
        tasks=("paired", "unpaired"),
    )
