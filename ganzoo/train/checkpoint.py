"""Checkpoints and exported models in safetensors: tensors + JSON metadata, atomic writes, integrity hash.

No pickle is ever loaded. A training checkpoint holds the model, its EMA, every optimizer's state, the RNG states
and the run position; an exported model (:func:`save_model`) holds the weights plus the variant name and config so
that :func:`ganzoo.load` can rebuild it by name. Both the trainer and the public API write models through this
module, which imports neither of them.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .._version import versions
from ..errors import CheckpointError, ConfigError
from ..utils.files import atomic_write_bytes

if TYPE_CHECKING:
    from ..variant import GANVariant

FORMAT_CHECKPOINT = "ganzoo.checkpoint/1"
FORMAT_MODEL = "ganzoo.model/1"
CKPT_RE = re.compile(r"^step-(\d{8,})\.safetensors$")


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key]
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _prepare(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; a CPU clone is also a consistent snapshot.
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any], fmt: str) -> None:
    tensors = _prepare(tensors)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta["ganzoo.format"] = fmt
    meta["ganzoo.sha256"] = _digest(tensors)
    meta["ganzoo.nbytes"] = str(sum(t.numel() * t.element_size() for t in tensors.values()))
    atomic_write_bytes(Path(path), st_save(tensors, metadata=meta))


def save_model(variant: GANVariant, path: str | Path, name: str | None = None, extra: dict | None = None) -> Path:
    """Export ``variant`` as one ``.safetensors`` file whose metadata names the variant and its config, so that
    :func:`ganzoo.load` rebuilds it by name. Training-only state (``variant.training_state``) is left out.

    :param variant: the model to write (its current weights: swap EMA weights in first to export those).
    :param path: the file to write; must end in ``.safetensors``.
    :param name: the registered name to record (``"dcgan.mnist"``); default: the name the variant was created or
        loaded by, else its family name.
    :param extra: JSON-serialisable information stored as ``ganzoo.info`` (the trainer records the step).
    :returns: ``path``.
    :raises ConfigError: when ``path`` does not end in ``.safetensors``.
    """
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
    save_tensors(path, tensors, meta, FORMAT_MODEL)
    return path


def load_tensors(path: str | Path, fmt: str | None = None, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """Read and verify a ganzoo safetensors file; raises :class:`CheckpointError` naming the file on any problem."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{str(p)!r} does not exist")
    if p.suffix in (".pt", ".pth", ".ckpt", ".pkl", ".bin"):
        raise CheckpointError(
            f"{str(p)!r} is not a safetensors file; ganzoo loads its own models only from .safetensors"
        )
    data = p.read_bytes()
    try:
        from safetensors import safe_open  # noqa: F401 - imported to fail early if safetensors is broken

        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError, json.JSONDecodeError, UnicodeDecodeError, OverflowError) as e:
        raise CheckpointError(f"{str(p)!r} is not a readable safetensors file (truncated or corrupt?): {e}") from None
    meta_raw = header.get("__metadata__", {}) or {}
    got_fmt = meta_raw.get("ganzoo.format")
    if got_fmt is None:
        raise CheckpointError(f"{str(p)!r} is a safetensors file but not one written by ganzoo (no ganzoo.format)")
    if fmt is not None and got_fmt != fmt:
        raise CheckpointError(f"{str(p)!r} is a {got_fmt} file, expected {fmt}")
    if verify:
        want = meta_raw.get("ganzoo.sha256")
        if want is not None and _digest(tensors) != want:
            raise CheckpointError(f"{str(p)!r} failed its integrity check (sha256 mismatch: tampered or corrupt)")
    meta: dict[str, Any] = {}
    for k, v in meta_raw.items():
        try:
            meta[k] = json.loads(v)
        except (json.JSONDecodeError, TypeError):
            meta[k] = v
    return tensors, meta


# ---- optimizer state <-> flat tensors + JSON -------------------------------------------------------------------------


def optimizer_to_flat(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{prefix}{idx}.{key}"] = val
            else:
                scalars.setdefault(str(idx), {})[key] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict, prefix: str) -> None:
    params = [p for group in opt.param_groups for p in group["params"]]
    state: dict[int, dict[str, Any]] = {}
    for key, val in tensors.items():
        if key.startswith(prefix):
            idx, name = key[len(prefix) :].split(".", 1)
            p = params[int(idx)]
            if val.shape == p.shape:
                # Give moments the parameter's strides (channels_last weights): fused Adam walks both buffers in
                # memory order, so a contiguous moment beside a channels_last weight would pair wrong elements.
                val = torch.empty_like(p, dtype=val.dtype).copy_(val)
            state.setdefault(int(idx), {})[name] = val
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the checkpoints in ``folder``, newest first (temporary files are ignored)."""
    d = Path(folder)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = CKPT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found, reverse=True)


def checkpoint_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step-{step:08d}.safetensors"
