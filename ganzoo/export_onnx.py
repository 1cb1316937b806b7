"""ONNX export of a variant's inference networks (``ganzoo export RUN --format onnx``).

A variant describes what a trained model computes at inference as one or more :class:`InferenceGraph` objects
(:meth:`ganzoo.GANVariant.inference_graphs`): a module whose ``forward`` is the pure tensor computation (noise to
images, images to images, tokens to images, images to scores), example inputs, names and dynamic axes. This module
turns each into an ONNX model with the plain torch layers in place of ganzoo's CPU fast paths and the model's facts
in its metadata, runs it in onnxruntime against the PyTorch output, and writes the ``.onnx`` files (atomically) only
when every graph passed.

The exporter is torch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``): it writes every built-in
graph, LSTM included, in 0.2-1.8 s where the torch.export-based exporter took 4.2-27 s (docs/onnx.md). Its trace
records the shapes it sees, so every model is checked in onnxruntime at a second size along each dynamic axis as
well (:attr:`InferenceGraph.check_inputs`).

onnx and onnxruntime are the optional extra ``ganzoo[onnx]``; they are imported only when a file is written.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ConfigError, GanzooError
from .utils.files import atomic_write_bytes

__all__ = [
    "ATOL",
    "ExportError",
    "InferenceGraph",
    "InferenceNet",
    "OPSET",
    "check_onnx",
    "export_graph",
    "export_onnx",
    "graph_paths",
    "plain_copy",
    "require_onnx",
    "run_onnx",
]

#: The ONNX opset the files use (onnxruntime 1.18, the oldest the extra allows, runs opset 20).
OPSET = 17
#: Default largest absolute difference allowed between onnxruntime's and PyTorch's fp32 outputs.
ATOL = 1e-4
INSTALL_HINT = "pip install 'ganzoo[onnx]'"


class ExportError(GanzooError):
    """An export that cannot be written, or whose file does not reproduce the PyTorch output."""


class InferenceNet(nn.Module):
    """A module made of named networks and a function of them: ``forward(*inputs)`` is ``fn(self, *inputs)``, with
    the networks as attributes of ``self``. The exporter deep-copies the module (and so the networks) before it
    changes layers, which ``fn`` sees because it reads them from its first argument, never from a closure.

    >>> InferenceNet(lambda nets, z: nets.G(z), G=variant.G)

    :param fn: the pure tensor computation, ``fn(nets, *inputs) -> Tensor | tuple[Tensor, ...]``.
    :param nets: the networks ``fn`` uses, by attribute name.
    """

    def __init__(self, fn: Callable[..., Any], **nets: nn.Module):
        super().__init__()
        self.fn = fn
        for name, net in nets.items():
            self.add_module(name, net)

    def forward(self, *inputs: Tensor) -> Any:
        return self.fn(self, *inputs)


@dataclass
class InferenceGraph:
    """One inference network of a variant, as the ONNX exporter needs it.

    :param name: names the graph among the variant's (``"generator"``, ``"a2b"``); a variant with several graphs
        gets one file per graph, ``OUT.<name>.onnx``.
    :param module: computes the outputs from the inputs with tensor operations only (no tokenizing, no Python
        decisions on values), in eval mode; usually an :class:`InferenceNet`.
    :param inputs: example inputs, in ``module.forward``'s order, on any device; they fix every size that is not a
        dynamic axis.
    :param input_names: the ONNX names of the inputs.
    :param output_names: the ONNX names of the outputs.
    :param dynamic_axes: per input or output name, its dynamic axes and their names (``{"z": {0: "batch"}}``);
        every input and output must have a ``"batch"`` axis 0.
    :param check_inputs: further inputs of other sizes along the dynamic axes, on which the written file is checked
        too; default: ``inputs`` with their first item appended (a batch one larger).
    :param description: one line for the file's ``doc_string`` (what goes in, what comes out).
    :param metadata: strings the file carries in its ``metadata_props`` beside ganzoo's own (a vocabulary, a
        threshold), so that a runtime without ganzoo can use the model.
    :param atol: the largest absolute difference from the PyTorch output that the check accepts.
    """

    name: str
    module: nn.Module
    inputs: tuple[Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    check_inputs: tuple[Tensor, ...] | None = None
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    atol: float = ATOL

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.input_names):
            raise ValueError(f"graph {self.name!r}: {len(self.inputs)} inputs but {len(self.input_names)} names")
        names = (*self.input_names, *self.output_names)
        if len(set(names)) != len(names):
            raise ValueError(f"graph {self.name!r}: input and output names must be distinct, got {names}")
        for n in names:
            if self.dynamic_axes.get(n, {}).get(0) != "batch":
                raise ValueError(f"graph {self.name!r}: {n!r} needs the dynamic axis 0 named 'batch'")

    def second_inputs(self) -> tuple[Tensor, ...]:
        """The inputs the written file is checked on besides :attr:`inputs` (:attr:`check_inputs`, else a batch one
        larger)."""
        if self.check_inputs is not None:
            return self.check_inputs
        return tuple(torch.cat([x, x[:1]]) for x in self.inputs)


def image_to_image_graph(
    name: str, net: nn.Module, source: str, target: str, channels: int, image_size: int, stride: int
) -> InferenceGraph:
    """The graph of a fully convolutional image-to-image network (a translator's generator): ``source (B, C, H, W)``
    in [-1, 1] -> ``target``, the same shape, with ``H`` and ``W`` dynamic multiples of ``stride`` (carried in the
    file's ``stride`` metadata; callers pad and crop around it for other sizes).

    :param name: the graph's name (``"a2b"``).
    :param net: the generator.
    :param source: the input's ONNX name.
    :param target: the output's ONNX name.
    :param channels: image channels.
    :param image_size: the training side; examples use at most 64 px of it, as only the channels are fixed.
    :param stride: the least multiple of the spatial sizes the network accepts.
    :returns: the graph, checked on a second batch size and height.
    """
    side = -(-min(image_size, 64) // stride) * stride
    gen = torch.Generator().manual_seed(0)
    example = torch.rand(1, channels, side, side, generator=gen) * 2 - 1
    other = torch.rand(2, channels, side + stride, side, generator=gen) * 2 - 1
    axes = {0: "batch", 2: "height", 3: "width"}
    return InferenceGraph(
        name,
        InferenceNet(lambda nets, x: nets.G(x), G=net),
        (example,),
        (source,),
        (target,),
        {source: axes, target: axes},
        check_inputs=(other,),
        description=f"{source}: (B, {channels}, H, W) in [-1, 1], H and W multiples of {stride} -> {target}: the "
        "same shape",
        metadata={"stride": str(stride)},
    )


def require_onnx() -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, imported.

    :raises ConfigError: naming the extra to install when either is missing.
    """
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise ConfigError(f"ONNX export needs onnx and onnxruntime ({e.name} is missing): {INSTALL_HINT}") from None
    return onnx, onnxruntime


def plain_copy(module: nn.Module) -> nn.Module:
    """A CPU fp32 copy of ``module`` in eval mode, contiguous, with every layer that declares a
    ``reference_class`` (ganzoo's CPU fast paths, :mod:`ganzoo.nn.fast`) turned back into that torch layer (the
    same parameters and keys), whose operators every ONNX runtime has."""
    copied = copy.deepcopy(module).to("cpu", torch.float32).to(memory_format=torch.contiguous_format).eval()
    for m in copied.modules():
        ref = getattr(type(m), "reference_class", None)
        if ref is not None:
            m.__class__ = ref
    return copied


def _cpu(inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
    return tuple(x.detach().to("cpu", torch.float32 if x.is_floating_point() else x.dtype) for x in inputs)


def _outputs(out: Any) -> list[Tensor]:
    return [out] if isinstance(out, Tensor) else list(out)


def export_graph(graph: InferenceGraph, metadata: dict[str, str] | None = None) -> bytes:
    """``graph`` as an ONNX model, serialized (unchecked: :func:`check_onnx`), with ``graph.description`` as its
    ``doc_string`` and its name and metadata in its ``metadata_props``.

    :param graph: the graph; its module is copied with :func:`plain_copy` first, so the variant is left as it was.
    :param metadata: strings stored in ``metadata_props`` besides ``ganzoo.graph`` and ``graph.metadata``.
    :returns: the model's bytes, as an ``.onnx`` file holds them.
    """
    onnx, _ = require_onnx()
    module = plain_copy(graph.module)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter warns that it is deprecated, and the tracer about every shape it reads (which
        # the check at a second size covers); neither is something the user can act on.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            _cpu(graph.inputs),
            buffer,
            input_names=list(graph.input_names),
            output_names=list(graph.output_names),
            dynamic_axes={k: dict(v) for k, v in graph.dynamic_axes.items()},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    model.doc_string = graph.description
    props = {"ganzoo.graph": graph.name, **(metadata or {}), **graph.metadata}
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def run_onnx(model: bytes | str | Path, inputs: Sequence[Tensor], names: Sequence[str]) -> list[Tensor]:
    """Run an ONNX model in onnxruntime on the CPU.

    :param model: the ``.onnx`` file, or its bytes.
    :param inputs: the inputs, in the order of ``names``.
    :param names: the model's input names.
    :returns: its outputs as CPU tensors, in the model's output order.
    """
    return _run(_session(model), inputs, names)


def _session(model: bytes | str | Path) -> Any:
    _, ort = require_onnx()
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), providers=["CPUExecutionProvider"])


def _run(session: Any, inputs: Sequence[Tensor], names: Sequence[str]) -> list[Tensor]:
    feeds = {n: x.numpy() for n, x in zip(names, _cpu(inputs))}
    return [torch.from_numpy(o) for o in session.run(None, feeds)]


def check_onnx(graph: InferenceGraph, model: bytes | str | Path) -> float:
    """Run the ONNX model made of ``graph`` in onnxruntime on :attr:`InferenceGraph.inputs` and on its
    :meth:`~InferenceGraph.second_inputs`, and compare with the PyTorch module's outputs.

    :param graph: the graph the model was exported from.
    :param model: the model's bytes (:func:`export_graph`) or its file.
    :returns: the largest absolute difference seen.
    :raises ExportError: when a difference exceeds ``graph.atol`` or a shape differs.
    """
    module = plain_copy(graph.module)
    session = _session(model)
    worst = 0.0
    for inputs in (graph.inputs, graph.second_inputs()):
        cpu = _cpu(inputs)
        with torch.no_grad():
            want = _outputs(module(*cpu))
        sizes = ", ".join(f"{n} {tuple(x.shape)}" for n, x in zip(graph.input_names, cpu))
        try:
            got = _run(session, cpu, graph.input_names)
        except Exception as e:  # onnxruntime's own exception types: a graph that cannot take these sizes
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ExportError(f"graph {graph.name!r}: onnxruntime cannot run it on inputs {sizes}: {first}") from None
        for name, g, w in zip(graph.output_names, got, want):
            if tuple(g.shape) != tuple(w.shape):
                raise ExportError(
                    f"graph {graph.name!r}: output {name!r} has shape {tuple(g.shape)} in onnxruntime, "
                    f"{tuple(w.shape)} in PyTorch (inputs {sizes})"
                )
            diff = float((g.double() - w.double()).abs().max()) if g.numel() else 0.0
            if not diff <= graph.atol:
                raise ExportError(
                    f"graph {graph.name!r}: output {name!r} differs from PyTorch by {diff:.3g} (tolerance "
                    f"{graph.atol:g}; inputs {sizes})"
                )
            worst = max(worst, diff)
    return worst


def graph_paths(output: str | Path, names: Sequence[str]) -> list[Path]:
    """The files for graphs ``names`` exported to ``output``: ``output`` itself for one graph, else
    ``OUT.<name>.onnx`` beside it for each.

    :raises ConfigError: when ``output`` does not end in ``.onnx``.
    """
    output = Path(output)
    if output.suffix != ".onnx":
        raise ConfigError(f"ONNX files end in .onnx; got {str(output)!r}")
    if len(names) == 1:
        return [output]
    return [output.with_name(f"{output.stem}.{n}.onnx") for n in names]


def export_onnx(variant: Any, output: str | Path, check: bool = True) -> list[tuple[Path, float]]:
    """Export every inference graph of ``variant`` (:meth:`ganzoo.GANVariant.inference_graphs`) to ONNX.

    :param variant: a built or loaded variant; it is not changed (each graph's module is copied).
    :param output: the ``.onnx`` file; a variant with several graphs writes ``OUT.<name>.onnx`` for each instead.
    :param check: run every model in onnxruntime and compare it with PyTorch (:func:`check_onnx`) before writing
        any file.
    :returns: ``(path, largest difference from PyTorch)`` per file (the difference is ``nan`` without ``check``).
    :raises ConfigError: when onnx/onnxruntime are missing, the path does not end in ``.onnx`` or is not a regular
        file, or the variant has no inference graphs.
    :raises ExportError: when a model does not reproduce the PyTorch output; then no file is written.
    """
    require_onnx()
    graphs = variant.inference_graphs()
    paths = graph_paths(output, [g.name for g in graphs])
    meta = {
        "ganzoo.variant": str(getattr(variant, "registered_name", variant.name)),
        "ganzoo.config": json.dumps(variant.config_dict(), sort_keys=True, default=str),
    }
    models = [export_graph(graph, meta) for graph in graphs]
    diffs = [check_onnx(g, m) if check else float("nan") for g, m in zip(graphs, models)]
    # Written only once every graph passed: a model is exported whole or not at all.
    for path, model in zip(paths, models):
        atomic_write_bytes(path, model)
    return list(zip(paths, diffs))
