"""The public Python API: create a variant by name, save and load models, list what is installed.

:func:`save_model` lives in :mod:`ganzoo.train.checkpoint` (the trainer exports through it too) and is re-exported
here and from ``ganzoo``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import registry
from .errors import CheckpointError
from .train import checkpoint as ckpt
from .train.checkpoint import save_model
from .variant import GANVariant

__all__ = ["create", "import_weights", "list_plugins", "load", "save_model"]


def create(name: str, **overrides: Any) -> GANVariant:
    """Build the variant ``name`` (``"dcgan"``, ``"dcgan.mnist"``) with its paper defaults, the tag's preset and
    then ``overrides`` applied: ``ganzoo.create("dcgan", image_size=32, loss="hinge")``."""
    spec, _tag, preset = registry.resolve(name)
    config = spec.cls.make_config({**preset, **overrides})
    variant = spec.cls(config)
    variant.registered_name = name
    return variant


def _rebuild(tensors: dict[str, torch.Tensor], meta: dict[str, Any], source: str, prefix: str) -> GANVariant:
    name = meta.get("ganzoo.variant")
    if not name:
        raise CheckpointError(f"{source!r} does not name its variant")
    spec, _, _ = registry.resolve(name)
    config = spec.cls.make_config(meta.get("ganzoo.config") or {})
    variant = spec.cls(config)
    variant.registered_name = name
    variant.load_extra_metadata(meta.get("ganzoo.extra") or {})
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    own = variant.state_dict()
    # Training-only state (``training_state``, e.g. a history pool of generated images) may be sized as it fills;
    # its modules load their own shapes, so only the networks' tensors must match the architecture.
    sized_by_training = tuple(variant.training_state)
    for key, t in state.items():  # a tensor per key, not load_state_dict's list of "size mismatch" lines
        if sized_by_training and key.startswith(sized_by_training):
            continue
        if key in own and tuple(t.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"{source!r} does not match the {name!r} architecture of its header: {key} is {tuple(t.shape)}, "
                f"the architecture's is {tuple(own[key].shape)}"
            )
    try:
        result = variant.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise CheckpointError(
            f"{source!r} does not match the {name!r} architecture: {str(e).splitlines()[0]}"
        ) from None
    # Exported files leave out training-only state; anything else missing is a mismatch.
    missing = [k for k in result.missing_keys if not (sized_by_training and k.startswith(sized_by_training))]
    if missing or result.unexpected_keys:
        what = f"missing {missing[:3]}" if missing else f"unexpected {result.unexpected_keys[:3]}"
        raise CheckpointError(f"{source!r} does not match the {name!r} architecture: {what}")
    return variant.eval()


def load(
    path: str | Path, device: str | torch.device = "cpu", ema: bool = True, trust_unverified: bool = False
) -> GANVariant:
    """Load a model: an exported ``.safetensors`` file, a training checkpoint, or a run directory (its exported
    model if present, else its newest readable checkpoint, with EMA weights unless ``ema=False``).

    :param path: the file or run directory.
    :param device: where to put the model.
    :param ema: from a checkpoint, take the EMA generator weights.
    :param trust_unverified: accept a ganzoo file that carries no digest (with a warning) instead of refusing it;
        weights from elsewhere go through :func:`import_weights` instead.
    :returns: the variant, in eval mode.
    :raises CheckpointError: when the file is missing, unverifiable, tampered with or does not fit its variant.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "model.safetensors").is_file() and ema:
            p = p / "model.safetensors"
        else:
            found = ckpt.list_checkpoints(p / "checkpoints")
            if not found:
                raise CheckpointError(f"{str(path)!r} is a folder with neither model.safetensors nor checkpoints/")
            p = found[0][1]
    tensors, meta = ckpt.load_tensors(p, trust_unverified=trust_unverified)
    if meta["ganzoo.format"] == ckpt.FORMAT_CHECKPOINT:
        if ema:
            for k in [k for k in tensors if k.startswith("ema/")]:
                module, _, rest = k[len("ema/") :].partition("/")
                tensors[f"model/{module}.{rest}"] = tensors.pop(k)
    variant = _rebuild(tensors, meta, str(p), "model/")
    return variant.to(device)


def import_weights(name: str, source: str | Path, output: str | Path, **overrides: Any) -> Path:
    """Bring weights from elsewhere (a plain safetensors file of the variant's ``state_dict``) into a verified ganzoo
    model file: the variant ``name`` is built with ``overrides``, every tensor is checked against it by name, shape
    and dtype kind, and the result is written as :func:`save_model` does.

    :param name: the variant (``"dcgan"``, ``"dcgan.mnist"``) whose architecture the weights follow.
    :param source: a ``.safetensors`` file whose keys are the variant's ``state_dict`` keys (optionally prefixed
        ``model/``); training-only state may be left out.
    :param output: the model file to write (``.safetensors``).
    :param overrides: config values, as for :func:`create`.
    :returns: ``output``.
    :raises CheckpointError: when ``source`` is unreadable or its tensors do not fit the variant (names the first
        differences).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    src = Path(source)
    if not src.is_file() or src.suffix != ".safetensors":
        raise CheckpointError(f"{str(src)!r} is not a .safetensors file to import")
    try:
        tensors = st_load(src.read_bytes())
    except (SafetensorError, ValueError, OverflowError) as e:
        raise CheckpointError(f"{str(src)!r} is not a readable safetensors file: {e}") from None
    if tensors and all(k.startswith("model/") for k in tensors):
        tensors = {k[len("model/") :]: v for k, v in tensors.items()}
    variant = create(name, **overrides)
    expected = variant.state_dict()
    skip = tuple(variant.training_state)
    missing = [k for k in expected if k not in tensors and not (skip and k.startswith(skip))]
    unexpected = [k for k in tensors if k not in expected]
    wrong = [
        f"{k} {tuple(t.shape)} {str(t.dtype).removeprefix('torch.')} (expected {tuple(expected[k].shape)} "
        f"{str(expected[k].dtype).removeprefix('torch.')})"
        for k, t in tensors.items()
        if k in expected
        and (t.shape != expected[k].shape or t.dtype.is_floating_point != expected[k].dtype.is_floating_point)
    ]
    for what, items in (("missing", missing), ("unexpected", unexpected), ("of the wrong shape or type", wrong)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            raise CheckpointError(f"{str(src)!r} does not fit {name!r}: {what} {', '.join(items[:3])}{more}")
    variant.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()}, strict=False)
    return save_model(variant, output, name=name, extra={"imported_from": str(src)})


def list_plugins() -> list[dict[str, Any]]:
    """The plugins found, in load order (the core's own first, then entry points by name, then plugins registered
    from code), each with what it registered or why it is disabled.

    :returns: one dict per plugin: ``name`` (the entry-point name), ``module``, ``distribution`` and ``version``
        (the installed package, ``None`` for plugins registered from code), ``registered`` (kind -> sorted names)
        and ``error`` (``None``, or why the plugin is disabled).
    """
    from .plugins import plugin_infos

    registry.variants()  # fills every registry (a plugin is enabled or disabled across all of them at once)
    return [
        {
            "name": i.name,
            "module": i.module,
            "distribution": i.distribution,
            "version": i.version,
            "registered": i.registered,
            "error": i.error,
        }
        for i in plugin_infos().values()
    ]
