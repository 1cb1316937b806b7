"""The package version and the versions recorded with every run, model and score (no other ganzoo import, so any
module can use it without an import cycle)."""

from __future__ import annotations

import platform

import torch

__version__ = "0.1.0"


def versions() -> dict[str, str]:
    """The versions of ganzoo, PyTorch and Python, as recorded in ``run.json``, checkpoints and model files.

    :returns: ``{"ganzoo": ..., "torch": ..., "python": ...}``.
    """
    return {"ganzoo": __version__, "torch": torch.__version__, "python": platform.python_version()}
