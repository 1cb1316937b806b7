"""Argument types shared by every ``ganzoo`` command, core and plugin: ``parser.add_argument("--seed", type=seed_int)``.

Each function takes the option's text and returns the parsed value, or raises :class:`argparse.ArgumentTypeError`
with one line saying what is wrong and what is valid; the parser turns that into ``ganzoo CMD: argument --seed:
...`` and exit status 2. Checking at parse time keeps a bad value from reaching a model, a file or a device.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from .config import MAX_SEED

__all__ = [
    "MAX_SEED",
    "positive_int",
    "nonnegative_int",
    "bounded_int",
    "seed_int",
    "finite_float",
    "fraction",
    "device_arg",
    "output_file",
    "output_dir",
    "check_output_file",
    "check_output_dir",
    "run_yaml",
    "image_file",
]


def _int(text: str, what: str) -> int:
    try:
        return int(str(text).strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; {what}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (counts, sizes, batch sizes).

    :param text: the option's value.
    :returns: the integer.
    :raises argparse.ArgumentTypeError: not an integer, or below 1.
    """
    value = _int(text, "give an integer >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (sizes where 0 means "off" or "whole").

    :param text: the option's value.
    :returns: the integer.
    :raises argparse.ArgumentTypeError: not an integer, or negative.
    """
    value = _int(text, "give an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argument type for integers in ``low..high``: ``type=bounded_int(1, 4096)``.

    :param low: the smallest valid value.
    :param high: the largest valid value.
    :returns: the type function, named ``int in low..high`` for argparse's messages.
    """

    def parse(text: str) -> int:
        value = _int(text, f"give an integer in {low}..{high}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high}, got {value}")
        return value

    parse.__name__ = f"int in {low}..{high}"
    return parse


def seed_int(text: str) -> int:
    """A random seed: an integer in ``0..MAX_SEED`` (:data:`ganzoo.config.MAX_SEED`).

    :param text: the option's value.
    :returns: the seed.
    :raises argparse.ArgumentTypeError: not an integer, negative, or beyond ``MAX_SEED``.
    """
    value = _int(text, f"a seed is an integer in 0..{MAX_SEED}")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be an integer in 0..{MAX_SEED}, got {value}")
    return value


def finite_float(text: str) -> float:
    """A finite number (no nan or inf).

    :param text: the option's value.
    :returns: the number.
    :raises argparse.ArgumentTypeError: not a number, or not finite.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1] (an accuracy, a share).

    :param text: the option's value.
    :returns: the number.
    :raises argparse.ArgumentTypeError: not a number, or outside [0, 1].
    """
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text}")
    return value


def device_arg(text: str) -> str:
    """A device that exists here: ``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    :param text: the option's value.
    :returns: the device it resolves to, as a string (``auto`` becomes ``cuda`` or ``cpu``).
    :raises argparse.ArgumentTypeError: an unknown device, or CUDA asked for where there is none.
    """
    import torch

    from .errors import ConfigError
    from .train.config import resolve_device

    try:
        dev = resolve_device(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(
            f"device {text!r}: this machine has CUDA devices 0..{torch.cuda.device_count() - 1}"
        )
    return str(dev)


def _nearest_existing(path: Path) -> Path:
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _check_parent(path: Path) -> None:
    """The folder ``path`` goes in exists as a folder we may write in, or can be made: no file in the way."""
    anchor = _nearest_existing(path.parent if str(path.parent) else Path("."))
    if not anchor.is_dir():
        raise ValueError(f"cannot write {str(path)!r}: {str(anchor)!r} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {str(path)!r}: the folder {str(anchor)!r} is not writable")


def check_output_file(path: str | Path) -> Path:
    """Check that a file can be written at ``path``: a new path or a regular file (replaced), in a folder that is
    writable or can be made.

    :param path: the output file.
    :returns: ``path`` as a :class:`~pathlib.Path`.
    :raises ganzoo.errors.ConfigError: a folder or special file at ``path``, a file where a parent folder should
        be, or a parent folder that is not writable.
    """
    from .errors import ConfigError

    p = Path(path)
    try:
        if os.path.lexists(p) and not p.is_file():
            what = "a folder" if p.is_dir() else "not a regular file"
            raise ValueError(f"{str(p)!r} is {what}; give the path of a file to write")
        _check_parent(p)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return p


def check_output_dir(path: str | Path) -> Path:
    """Check that ``path`` is a folder, or can be made one, that is writable.

    :param path: the output folder.
    :returns: ``path`` as a :class:`~pathlib.Path`.
    :raises ganzoo.errors.ConfigError: a file at ``path`` or at one of its parents, or a folder that is not
        writable.
    """
    from .errors import ConfigError

    p = Path(path)
    try:
        if os.path.lexists(p):
            if not p.is_dir():
                raise ValueError(f"{str(p)!r} is a file, not a folder; give a folder to write in")
            if not os.access(p, os.W_OK | os.X_OK):
                raise ValueError(f"the folder {str(p)!r} is not writable")
        else:
            _check_parent(p)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return p


def _argument_type(check: Callable[[str], object], text: str) -> str:
    # A ConfigError of the check becomes argparse's own error, so the message names the option.
    from .errors import ConfigError

    try:
        check(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def output_file(text: str) -> str:
    """Argument type of an output file (``-o out.png``): see :func:`check_output_file`.

    :param text: the option's value.
    :returns: ``text`` unchanged.
    :raises argparse.ArgumentTypeError: when :func:`check_output_file` refuses it.
    """
    return _argument_type(check_output_file, text)


def output_dir(text: str) -> str:
    """Argument type of an output folder (``--out runs/x``): see :func:`check_output_dir`.

    :param text: the option's value.
    :returns: ``text`` unchanged.
    :raises argparse.ArgumentTypeError: when :func:`check_output_dir` refuses it.
    """
    return _argument_type(check_output_dir, text)


def run_yaml(text: str) -> str:
    """Argument type of ``ganzoo train --config``: a UTF-8 YAML file with the sections of
    :data:`ganzoo.config.RUN_SECTIONS` (``model:``, ``train:``, ``data:``), each of its shape.

    :param text: the option's value.
    :returns: ``text`` unchanged; the command reads the file.
    :raises argparse.ArgumentTypeError: when :func:`ganzoo.config.load_yaml` refuses the file.
    """
    from .config import RUN_SECTIONS, load_yaml
    from .errors import ConfigError

    try:
        load_yaml(text, sections=RUN_SECTIONS)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def image_file(text: str) -> str:
    """Argument type of an output picture (``-o grid.png``): an output file (:func:`check_output_file`) whose suffix
    names an image format that can be written (``.png``, ``.jpg``, ``.webp``, ``.gif`` ...).

    :param text: the option's value.
    :returns: ``text`` unchanged.
    :raises argparse.ArgumentTypeError: an unwritable path, or a suffix that is no image format.
    """
    from PIL import Image

    output_file(text)
    Image.init()
    writable = sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE)
    suffix = Path(text).suffix.lower()
    if suffix not in writable:
        shown = ", ".join(e for e in (".png", ".jpg", ".webp", ".gif", ".bmp", ".tif") if e in writable)
        raise argparse.ArgumentTypeError(
            f"{text!r} does not end in an image format's suffix ({shown} ...)"
            if suffix
            else f"{text!r} has no suffix; end it in an image format's ({shown} ...)"
        )
    return text
