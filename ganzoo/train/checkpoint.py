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
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from .._version import versions
from ..errors import CheckpointError, ConfigError
from ..utils.files import atomic_write_bytes

if TYPE_CHECKING:
    from ..variant import GANVariant

FORMAT_CHECKPOINT = "ganzoo.checkpoint/1"
FORMAT_MODEL = "ganzoo.model/1"
CKPT_RE = re.compile(r"^step-(\d{8,})\.safetensors$")


DIGEST_KEY = "ganzoo.digest"
CARD_KEY = "ganzoo.card"
_DIGEST_SCHEME = "sha256-v2"


def _digest(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> str:
    """``sha256-v2:HEX`` over every metadata entry but the digest itself and every tensor's name, dtype, shape and
    bytes: an edited config value, a deleted entry or a flipped weight byte all change it."""
    h = hashlib.sha256()
    h.update(f"ganzoo {_DIGEST_SCHEME}\n".encode())
    header = {k: v for k, v in meta.items() if k != DIGEST_KEY}
    h.update(json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode())
    for key in sorted(tensors):
        t = tensors[key]
        h.update(b"\0" + key.encode() + b"\0" + str(t.dtype).encode() + str(tuple(t.shape)).encode())
        if t.numel():  # the tensor's own memory (mapped from the file when loaded): no copy of the bytes
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return f"{_DIGEST_SCHEME}:{h.hexdigest()}"


def _prepare(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; a CPU clone is also a consistent snapshot.
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any], fmt: str) -> None:
    """Write ``tensors`` and ``metadata`` (values that are not strings are stored as JSON) atomically as one
    safetensors file of format ``fmt``, with a digest over both (``ganzoo.digest``).

    :param path: the file to write (a new path or a regular file).
    :param tensors: name -> tensor; copied to the CPU first.
    :param metadata: JSON-serialisable header entries.
    :param fmt: the file's kind, e.g. :data:`FORMAT_CHECKPOINT`.
    """
    tensors = _prepare(tensors)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta["ganzoo.format"] = fmt
    meta["ganzoo.nbytes"] = str(sum(t.numel() * t.element_size() for t in tensors.values()))
    meta.pop(DIGEST_KEY, None)
    meta[DIGEST_KEY] = _digest(tensors, meta)
    atomic_write_bytes(Path(path), st_save(tensors, metadata=meta))


def save_model(
    variant: GANVariant,
    path: str | Path,
    name: str | None = None,
    extra: dict | None = None,
    card: dict | None = None,
) -> Path:
    """Export ``variant`` as one ``.safetensors`` file whose metadata names the variant and its config, so that
    :func:`ganzoo.load` rebuilds it by name. Training-only state (``variant.training_state``) is left out.

    :param variant: the model to write (its current weights: swap EMA weights in first to export those).
    :param path: the file to write; must end in ``.safetensors``.
    :param name: the registered name to record (``"dcgan.mnist"``); default: the name the variant was created or
        loaded by, else its family name.
    :param extra: JSON-serialisable information stored as ``ganzoo.info`` (the trainer records the step).
    :param card: the model card's facts (:func:`ganzoo.cards.card_facts`), stored as ``ganzoo.card`` under the
        file's digest so that ``ganzoo info FILE`` reads them from the file alone; files without it stay valid.
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
    if card is not None:
        meta[CARD_KEY] = card
    skip = tuple(variant.training_state)
    tensors = {f"model/{k}": v for k, v in variant.state_dict().items() if not (skip and k.startswith(skip))}
    save_tensors(path, tensors, meta, FORMAT_MODEL)
    return path


def load_tensors(
    path: str | Path, fmt: str | None = None, trust_unverified: bool = False
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a ganzoo safetensors file and verify its digest over header and tensors.

    :param path: the file.
    :param fmt: the expected format (:data:`FORMAT_CHECKPOINT`, :data:`FORMAT_MODEL`, ...); ``None`` accepts any.
    :param trust_unverified: accept a file that carries no digest (written by hand or by a ganzoo older than the
        digest over the header), with a warning; a digest that does not match is refused whatever this says.
    :returns: ``(tensors, metadata)``, metadata values decoded from JSON where they are JSON.
    :raises CheckpointError: naming the file, when it is missing, unreadable, of another format, not ganzoo's,
        without a digest (unless trusted) or failing its digest.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{str(p)!r} does not exist" if not p.exists() else f"{str(p)!r} is not a regular file")
    if p.suffix in (".pt", ".pth", ".ckpt", ".pkl", ".bin"):
        raise CheckpointError(
            f"{str(p)!r} is not a safetensors file; ganzoo loads its own models only from .safetensors"
        )
    try:
        # Memory-mapped: tensors are views of the file's pages, read when first touched (by the digest below), so
        # a large model costs no second copy of its bytes and no read of the whole file into memory.
        with safe_open(str(p), framework="pt") as f:
            meta_raw = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, ValueError, OSError, UnicodeDecodeError, OverflowError, RuntimeError) as e:
        raise CheckpointError(f"{str(p)!r} is not a readable safetensors file (truncated or corrupt?): {e}") from None
    got_fmt = meta_raw.get("ganzoo.format")
    if got_fmt is None:
        raise CheckpointError(
            f"{str(p)!r} is a safetensors file but not one written by ganzoo (no ganzoo.format); bring weights from "
            "elsewhere in with `ganzoo import-weights VARIANT FILE -o OUT.safetensors`"
        )
    if fmt is not None and got_fmt != fmt:
        raise CheckpointError(f"{str(p)!r} is a {got_fmt} file, expected {fmt}")
    want = meta_raw.get(DIGEST_KEY)
    if want is None:
        if not trust_unverified:
            raise CheckpointError(
                f"{str(p)!r} carries no ganzoo digest, so tampering cannot be ruled out; load it only if you trust "
                "its origin, with --trust-unverified (trust_unverified=True in Python)"
            )
        warnings.warn(f"loading {str(p)!r} without verification: it carries no ganzoo digest", stacklevel=2)
    elif _digest(tensors, meta_raw) != want:
        raise CheckpointError(f"{str(p)!r} failed its integrity check (digest mismatch: tampered or corrupt)")
    return tensors, _decode(meta_raw)


def _decode(meta_raw: dict[str, str]) -> dict[str, Any]:
    """Metadata values decoded from JSON where they are JSON."""
    meta: dict[str, Any] = {}
    for k, v in meta_raw.items():
        try:
            meta[k] = json.loads(v)
        except (json.JSONDecodeError, TypeError):
            meta[k] = v
    return meta


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


def _kind(t: torch.Tensor | tuple) -> str:
    return f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"


def check_tensors(
    source: str, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], loose: tuple[str, ...] = ()
) -> None:
    """Check that ``tensors`` holds exactly the keys of ``expected`` under each prefix ``expected`` uses (the part
    before the first ``/``), each with the expected shape and dtype; keys starting with a ``loose`` prefix (state
    that sizes itself when loaded) are checked for dtype only.

    :param source: the file, for the message.
    :param tensors: what the file holds.
    :param expected: name -> a tensor of the wanted shape and dtype (the live model's).
    :param loose: key prefixes whose shape may differ.
    :raises CheckpointError: naming the first key that is missing, unexpected or of the wrong shape or dtype.
    """
    prefixes = {k.split("/", 1)[0] + "/" for k in expected}
    for prefix in sorted(prefixes):
        want = {k for k in expected if k.startswith(prefix)}
        have = {k for k in tensors if k.startswith(prefix)}
        if want - have:
            raise CheckpointError(f"{source!r} does not fit this model: missing {sorted(want - have)[:3]}")
        if have - want:
            raise CheckpointError(f"{source!r} does not fit this model: unexpected {sorted(have - want)[:3]}")
    for key, ref in expected.items():
        t = tensors[key]
        if t.dtype != ref.dtype or (t.shape != ref.shape and not (loose and key.startswith(loose))):
            raise CheckpointError(
                f"{source!r} does not fit this model: {key} is {_kind(t)}, the model's is {_kind(ref)}"
            )


_MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def check_optimizer_flat(
    source: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: Any, prefix: str
) -> None:
    """Check the flat state :func:`optimizer_from_flat` would restore into ``opt`` (an Adam) before it is used: the
    same parameter groups and sizes, and for every parameter moments of its shape and dtype and a scalar step. A
    mismatched moment would otherwise reach the fused kernel, which does not check sizes.

    :raises CheckpointError: naming the first mismatch.
    """
    bad = f"{source!r} holds an optimizer state ({prefix.rstrip('/')}) that does not fit this model"
    groups = meta.get("param_groups") if isinstance(meta, dict) else None
    if not isinstance(groups, list) or len(groups) != len(opt.param_groups):
        raise CheckpointError(f"{bad}: {len(opt.param_groups)} parameter groups expected")
    for g, mine in zip(groups, opt.param_groups):
        if not isinstance(g, dict) or not isinstance(g.get("params"), list) or len(g["params"]) != len(mine["params"]):
            raise CheckpointError(f"{bad}: a parameter group of {len(mine['params'])} parameters expected")
    params = [p for group in opt.param_groups for p in group["params"]]
    scalars = meta.get("scalars") or {}
    if not isinstance(scalars, dict):
        raise CheckpointError(f"{bad}: malformed scalars")
    seen: dict[int, set[str]] = {}
    for key, val in tensors.items():
        if not key.startswith(prefix):
            continue
        idx, _, name = key[len(prefix) :].partition(".")
        if not idx.isdigit() or int(idx) >= len(params):
            raise CheckpointError(f"{bad}: {key} names no parameter (there are {len(params)})")
        p = params[int(idx)]
        if name in _MOMENTS:
            if val.shape != p.shape or val.dtype != p.dtype:
                raise CheckpointError(f"{bad}: {key} is {_kind(val)}, its parameter is {_kind(p)}")
        elif name == "step":
            if val.numel() != 1 or val.dtype.is_complex or val.dtype == torch.bool:
                raise CheckpointError(f"{bad}: {key} is {_kind(val)}, a scalar step expected")
        else:
            raise CheckpointError(f"{bad}: unknown state {key}")
        seen.setdefault(int(idx), set()).add(name)
    for idx, sc in scalars.items():
        if not str(idx).isdigit() or int(idx) >= len(params) or not isinstance(sc, dict):
            raise CheckpointError(f"{bad}: scalars of parameter {idx!r}, which does not exist")
        seen.setdefault(int(idx), set()).update(k for k in sc if k == "step")
    for idx, names in seen.items():
        if not {"step", "exp_avg", "exp_avg_sq"} <= names:
            raise CheckpointError(f"{bad}: parameter {idx} lacks {sorted({'step', 'exp_avg', 'exp_avg_sq'} - names)}")


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


def first_nonfinite(tensors: dict[str, torch.Tensor], skip: tuple[str, ...] = ("rng/",)) -> str | None:
    """The first floating-point tensor (in key order) holding a NaN or an infinity, or ``None`` when all are finite.

    :param tensors: name -> tensor (a checkpoint's, or a model's state).
    :param skip: key prefixes not to look at (the RNG states are bytes, not numbers).
    :returns: ``"KEY (nan)"`` / ``"KEY (inf)"`` naming the first bad tensor, or ``None``.
    """
    keys = [
        k
        for k in sorted(tensors)
        if not k.startswith(skip) and (tensors[k].is_floating_point() or tensors[k].is_complex()) and tensors[k].numel()
    ]
    by_device: dict[torch.device, list[str]] = {}
    for k in keys:
        by_device.setdefault(tensors[k].device, []).append(k)
    bad: list[str] = []
    for group in by_device.values():  # one host sync per device, not one per tensor
        finite = torch.stack([torch.isfinite(tensors[k]).all() for k in group]).cpu()
        bad.extend(k for k, ok in zip(group, finite.tolist()) if not ok)
    if not bad:
        return None
    key = min(bad)
    return f"{key} ({'nan' if bool(torch.isnan(tensors[key]).any()) else 'inf'})"


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a ganzoo safetensors file, decoded as :func:`load_tensors` does, from its header alone: not
    verified (use it for defaults such as a run's settings, never in place of :func:`load_tensors`).

    :param path: the file.
    :returns: the decoded metadata.
    :raises CheckpointError: when the file is missing or its header is unreadable.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{str(p)!r} is not a regular file")
    try:
        with safe_open(str(p), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, ValueError, OSError, UnicodeDecodeError, OverflowError, RuntimeError) as e:
        raise CheckpointError(f"{str(p)!r} is not a readable safetensors file (truncated or corrupt?): {e}") from None
    return _decode(raw)
