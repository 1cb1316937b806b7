"""The public Python API: create a variant by name, save and load models, list what is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import registry
from .errors import CheckpointError, ConfigError
from .train import checkpoint as ckpt
from .variant import GANVariant


def create(name: str, **overrides: Any) -> GANVariant:
    """Build the variant ``name`` (``"dcgan"``, ``"dcgan.mnist"``) with its paper defaults, the tag's preset and
    then ``overrides`` applied: ``ganzoo.create("dcgan", image_size=32, loss="hinge")``."""
    spec, _tag, preset = registry.resolve(name)
    config = spec.cls.make_config({**preset, **overrides})
    variant = spec.cls(config)
    variant.registered_name = name
    return variant


def save_model(variant: GANVariant, path: str | Path, name: str | None = None, extra: dict | None = None) -> Path:
    """Export ``variant`` as one ``.safetensors`` file whose metadata names the variant and its config."""
    from .train.trainer import versions

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ConfigError(f"model files are .safetensors; got {str(path)!r}")
    meta = {
        "ganzoo.variant": name or getattr(variant, "registered_name", variant.name),
        "ganzoo.config": variant.config_dict(),
        "ganzoo.extra": variant.extra_metadata(),
        "ganzoo.info": extra or {},
        "ganzoo.versions": versions(),
    }
    skip = tuple(variant.training_state)
    tensors = {f"model/{k}": v for k, v in variant.state_dict().items() if not (skip and k.startswith(skip))}
    ckpt.save_tensors(path, tensors, meta, ckpt.FORMAT_MODEL)
    return path


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
    try:
        result = variant.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise CheckpointError(
            f"{source!r} does not match the {name!r} architecture: {str(e).splitlines()[0]}"
        ) from None
    # Exported files leave out training-only state (``training_state``); anything else missing is a mismatch.
    skip = tuple(variant.training_state)
    missing = [k for k in result.missing_keys if not (skip and k.startswith(skip))]
    if missing or result.unexpected_keys:
        what = f"missing {missing[:3]}" if missing else f"unexpected {result.unexpected_keys[:3]}"
        raise CheckpointError(f"{source!r} does not match the {name!r} architecture: {what}")
    return variant.eval()


def load(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> GANVariant:
    """Load a model: an exported ``.safetensors`` file, a training checkpoint, or a run directory (its exported
    model if present, else its newest readable checkpoint, with EMA weights unless ``ema=False``)."""
    p = Path(path)
    if p.is_dir():
        if (p / "model.safetensors").is_file() and ema:
            p = p / "model.safetensors"
        else:
            found = ckpt.list_checkpoints(p / "checkpoints")
            if not found:
                raise CheckpointError(f"{str(path)!r} is a folder with neither model.safetensors nor checkpoints/")
            p = found[0][1]
    tensors, meta = ckpt.load_tensors(p)
    if meta["ganzoo.format"] == ckpt.FORMAT_CHECKPOINT:
        if ema:
            for k in [k for k in tensors if k.startswith("ema/")]:
                module, _, rest = k[len("ema/") :].partition("/")
                tensors[f"model/{module}.{rest}"] = tensors.pop(k)
    variant = _rebuild(tensors, meta, str(p), "model/")
    return variant.to(device)


def list_plugins() -> list[dict[str, Any]]:
    """Installed plugins: name, module, distribution, version, what each registered, and load errors."""
    from .plugins import plugin_infos

    registry.variants(), registry.losses(), registry.datasets(), registry.metrics(), registry.commands()
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
