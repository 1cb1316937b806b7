"""Checkpoints of the reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix) in and out of ganzoo.

The reference saves one ``.pth`` per network: ``latest_net_G.pth`` and ``latest_net_D.pth`` for pix2pix,
``latest_net_G_A.pth``, ``latest_net_G_B.pth``, ``latest_net_D_A.pth``, ``latest_net_D_B.pth`` for CycleGAN (epoch
numbers replace ``latest`` in older snapshots). ganzoo's networks (``ganzoo.nn.translation``) have the reference's
module tree, so a file's keys are our keys: the mapping is the identity. Three historical quirks are smoothed over, as
the reference's own loader does: a ``module.`` prefix (a network saved while wrapped in DataParallel), InstanceNorm
running statistics (saved by versions before 2019, which tracked them; they are unused and dropped), and a missing
``num_batches_tracked`` (files from PyTorch < 0.4; set to 0).

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only. A pickle that needs code
to load is refused with a :class:`~ganzoo.errors.CheckpointError`, never executed.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo.errors import CheckpointError, ConfigError

__all__ = [
    "NETS",
    "export_reference_state_dict",
    "infer_config",
    "load_reference_state_dict",
    "net_name_of_file",
    "read_reference_file",
    "save_reference_state_dict",
]

# The networks of each variant, under the reference's names (which are also the variant's attribute names).
NETS = {"pix2pix": ("G", "D"), "cyclegan": ("G_A", "G_B", "D_A", "D_B")}

_FILE_NET = re.compile(r"net_(G_A|G_B|D_A|D_B|G|D)\.pth$")


def read_reference_file(path: str | Path) -> dict[str, Tensor]:
    """The state dict in a reference ``.pth`` file, read without executing any pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"reference checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path} is not a plain state dict of tensors; ganzoo never unpickles code (weights_only load: {first})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as e:
        raise CheckpointError(f"cannot read reference checkpoint {path}: {str(e).strip().splitlines()[0]}") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(
            f"{path} holds entries that are not tensors ({', '.join(bad[:3])}); expected a state dict"
        )
    return dict(obj)


def _adapt(module: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    state = dict(state)
    for name, sub in module.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(sub, nn.InstanceNorm2d) and not sub.track_running_stats:
            for stat in ("running_mean", "running_var", "num_batches_tracked"):
                state.pop(prefix + stat, None)
        elif isinstance(sub, nn.BatchNorm2d) and prefix + "running_mean" in state:
            state.setdefault(prefix + "num_batches_tracked", torch.zeros((), dtype=torch.long))
    return state


def _mismatch(module: nn.Module, state: dict[str, Tensor]) -> str:
    """One line saying how ``state`` differs from ``module``'s state dict ('' when it fits)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({missing[0]} ...)")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({unexpected[0]} ...)")
    if shapes:
        k = shapes[0]
        parts.append(
            f"{len(shapes)} shape mismatches ({k}: {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} here)"
        )
    return "; ".join(parts)


def _describe(variant: Any) -> str:
    c = variant.config
    g = getattr(c, "generator", c.netG)
    return f"netG={g} netD={c.netD} ngf={c.ngf} ndf={c.ndf} norm={c.norm} channels={c.channels}"


def _module(variant: Any, net: str | None) -> tuple[str, nn.Module]:
    nets = NETS.get(variant.name)
    if nets is None:
        raise ConfigError(f"reference checkpoints exist for {', '.join(NETS)}, not {variant.name!r}")
    net = net or nets[0]
    if net not in nets:
        raise ConfigError(f"{variant.name} has no network {net!r}; valid: {', '.join(nets)}")
    return net, getattr(variant, net)


def load_reference_state_dict(variant: Any, path: str | Path, net: str | None = None) -> nn.Module:
    """Load the reference checkpoint ``path`` into ``variant``'s network ``net`` (default: its first generator) with
    strict key and shape checks; returns that network. A mismatch is a one-line CheckpointError naming the options
    that differ in kind (architecture, width, norm)."""
    net, module = _module(variant, net)
    state = _adapt(module, read_reference_file(path))
    problem = _mismatch(module, state)
    if problem:
        raise CheckpointError(
            f"{path} does not fit {variant.name}'s {net} ({_describe(variant)}): {problem}; "
            "build the variant with the reference run's options (see infer_config)"
        )
    module.load_state_dict(state, strict=True)
    return module


def export_reference_state_dict(variant: Any, net: str | None = None) -> dict[str, Tensor]:
    """``variant``'s network ``net`` as a state dict the reference loads (``netG.load_state_dict``), on the CPU."""
    _, module = _module(variant, net)
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def save_reference_state_dict(variant: Any, path: str | Path, net: str | None = None) -> Path:
    """Write ``variant``'s network ``net`` as a reference ``.pth`` file (a plain tensor dict, loadable with
    ``weights_only=True``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(export_reference_state_dict(variant, net), path)
    return path


def net_name_of_file(path: str | Path) -> str | None:
    """``latest_net_G_A.pth`` -> ``"G_A"``; ``None`` when the name does not follow the reference's pattern."""
    m = _FILE_NET.search(Path(path).name)
    return m.group(1) if m else None


def _norm_of(state: dict[str, Tensor], conv_prefix: str, norm_prefix: str) -> str:
    if norm_prefix + "weight" in state:
        return "batch"
    # Instance norm without affine keeps a bias on the convolution (and, in pre-2019 files, running statistics).
    if conv_prefix + "bias" in state or norm_prefix + "running_mean" in state:
        return "instance"
    return "none"


def infer_config(state: dict[str, Tensor], kind: str) -> dict[str, Any]:
    """Config overrides that rebuild the network a reference state dict came from: ``kind`` is ``"G"`` or ``"D"``.

    Generators: U-Net depth (``unet_N``), ResNet blocks, ``ngf``, ``norm``, ``channels`` and dropout in residual blocks;
    discriminators: ``basic``/``n_layers``/``pixel``, ``n_layers_D``, ``ndf``.
    """
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    if kind == "G":
        if "model.model.0.weight" in state:
            w = state["model.model.0.weight"]
            depth = max(k.split(".").count("model") for k in state) - 1
            return {
                "netG": f"unet_{2**depth}",
                "ngf": int(w.shape[0]),
                "channels": int(w.shape[1]),
                "norm": _norm_of(state, "model.model.1.model.1.", "model.model.1.model.2."),
            }
        if "model.1.weight" in state and state["model.1.weight"].dim() == 4 and state["model.1.weight"].shape[-1] == 7:
            w = state["model.1.weight"]
            blocks = {int(k.split(".")[1]) for k in state if ".conv_block." in k}
            # Dropout shifts a block's second convolution from index 5 to 6 (where a norm weight sits without it).
            dropout = any(k.endswith("conv_block.6.weight") and state[k].dim() == 4 for k in state)
            return {
                "netG": f"resnet_{len(blocks)}blocks",
                "ngf": int(w.shape[0]),
                "channels": int(w.shape[1]),
                "norm": _norm_of(state, "model.1.", "model.2."),
                "dropout": dropout,
            }
        raise CheckpointError("the state dict is neither a reference U-Net nor a ResNet generator")
    if kind == "D":
        if "net.0.weight" in state:
            return {"netD": "pixel", "ndf": int(state["net.0.weight"].shape[0])}
        if "model.0.weight" in state:
            convs = sorted(int(k.split(".")[1]) for k in state if k.endswith(".weight") and state[k].dim() == 4)
            n_layers = len(convs) - 2
            out = {"ndf": int(state["model.0.weight"].shape[0]), "n_layers_D": n_layers}
            out["netD"] = "basic" if n_layers == 3 else "n_layers"
            return out
        raise CheckpointError("the state dict is neither a reference PatchGAN nor a pixel discriminator")
    raise ValueError(f"kind must be 'G' or 'D', got {kind!r}")
