"""The inference contract of each task, as typed protocols.

A variant's ``task`` names what it learns; the protocol of that task names how a trained model is used. Commands
and evaluators call only these methods, so a variant that implements its task's protocol works with ``ganzoo eval``,
``ganzoo sample`` and the task's other commands without further registration. Every protocol is
``runtime_checkable``; :func:`require` checks a model against one (the methods and the parameter names they must
accept) and raises a one-line error otherwise.

All images are ``B x C x H x W`` tensors on the model's device; inputs may be uint8 ``0..255`` or floats in
``[-1, 1]``, outputs are floats in ``[-1, 1]``.

| task | protocol | methods and attributes |
| --- | --- | --- |
| ``unconditional`` | :class:`NoiseGenerator` | ``generate(n=None, *, z=None, seed=None)`` |
| (with classes) | :class:`ClassConditionalGenerator` | ``num_classes``, ``generate(..., labels=None)`` |
| (with a latent prior) | :class:`LatentGenerator` | ``noise(n, *, seed=None, truncation=None)`` |
| ``paired`` | :class:`Translator` | ``directions``, ``translate(images, direction="a2b")`` |
| ``unpaired`` | :class:`Translator` | ``directions`` is ``("a2b", "b2a")`` |
| ``super_resolution`` | :class:`Upscaler` | ``scale``, ``upscale(lr, tile=0, overlap=None)`` |
| ``text_to_image`` | :class:`TextToImageGenerator` | ``generate_from_captions(captions, *, seed=None)`` |
| ``anomaly`` | :class:`AnomalyScorer` | ``score(images)`` |
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor

from .errors import ConfigError, PluginError
from .variant import Task

__all__ = [
    "AnomalyScorer",
    "ClassConditionalGenerator",
    "LatentGenerator",
    "NoiseGenerator",
    "TASK_PROTOCOLS",
    "TextToImageGenerator",
    "Translator",
    "Upscaler",
    "check_truncation",
    "conformance_problems",
    "gaussian_noise",
    "latent_walk",
    "protocol_of",
    "require",
]

P = TypeVar("P")


@runtime_checkable
class NoiseGenerator(Protocol):
    """Unconditional generation: samples from noise (task ``unconditional``)."""

    def generate(self, n: int | None = None, *, z: Tensor | None = None, seed: int | None = None) -> Tensor:
        """Draw samples.

        :param n: how many samples, drawn from fresh noise (ignored when ``z`` is given).
        :param z: the noise to decode, ``(n, ...)`` in the variant's latent shape.
        :param seed: makes the fresh noise reproducible; ``None`` draws from the global generator.
        :returns: ``(n, C, H, W)`` images in ``[-1, 1]``, or ``(n, 2)`` points for 2D toy data.
        """
        ...


@runtime_checkable
class ClassConditionalGenerator(NoiseGenerator, Protocol):
    """Class-conditional generation: a :class:`NoiseGenerator` that also takes class labels. A variant whose
    conditioning is optional reports ``num_classes == 0`` when it was built without it."""

    num_classes: int
    """Number of classes the generator is conditioned on (0: unconditional)."""

    def generate(
        self,
        n: int | None = None,
        *,
        z: Tensor | None = None,
        seed: int | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Draw samples of given classes.

        :param n: how many samples, drawn from fresh noise (ignored when ``z`` is given).
        :param z: the noise to decode.
        :param seed: makes the fresh noise reproducible.
        :param labels: ``(n,)`` int64 class indices in ``[0, num_classes)``; default: the classes in turn.
        :returns: ``(n, C, H, W)`` images in ``[-1, 1]``.
        """
        ...


@runtime_checkable
class LatentGenerator(NoiseGenerator, Protocol):
    """A :class:`NoiseGenerator` whose noise can be drawn apart from decoding it, which the truncation trick and
    latent walks (``ganzoo sample --truncation``, ``--interpolate``) need. ``generate(n=n, seed=s)`` must equal
    ``generate(z=noise(n, seed=s))``."""

    def noise(self, n: int, *, seed: int | None = None, truncation: float | None = None) -> Tensor:
        """Latents from the generator's prior, on the CPU.

        :param n: how many.
        :param seed: makes the draw reproducible; ``None`` draws from the global generator.
        :param truncation: the truncation trick's threshold psi > 0: values of magnitude above psi are redrawn
            (:func:`gaussian_noise`); ``None`` for none.
        :returns: ``(n, ...)`` latents in the shape ``generate(z=...)`` takes.
        """
        ...


@runtime_checkable
class Translator(Protocol):
    """Image-to-image translation (tasks ``paired`` and ``unpaired``)."""

    directions: tuple[str, ...]
    """The directions the model translates: ``("a2b",)`` for a one-way model, ``("a2b", "b2a")`` for a cycle."""

    def translate(self, images: Tensor, direction: str = "a2b") -> Tensor:
        """Translate images of any size.

        :param images: ``(B, C, H, W)`` or ``(C, H, W)``, uint8 or floats in ``[-1, 1]``.
        :param direction: one of :attr:`directions`; anything else raises :class:`ganzoo.ConfigError`.
        :returns: floats in ``[-1, 1]`` of the input's shape.
        """
        ...


@runtime_checkable
class Upscaler(Protocol):
    """Single-image super-resolution (task ``super_resolution``)."""

    scale: int
    """The upscaling factor: outputs are ``scale`` times the input's height and width."""

    def upscale(self, lr: Tensor, tile: int = 0, overlap: int | None = None) -> Tensor:
        """Super-resolve low-resolution images.

        :param lr: ``(B, C, h, w)`` or ``(C, h, w)`` floats in ``[-1, 1]``.
        :param tile: process ``tile x tile`` LR tiles to bound memory on large images (0: the whole image).
        :param overlap: LR pixels of context around each tile (default: the variant's choice, seamless).
        :returns: ``(B, C, scale * h, scale * w)`` (or without ``B``) floats in ``[-1, 1]``.
        """
        ...


@runtime_checkable
class TextToImageGenerator(Protocol):
    """Text-to-image generation (task ``text_to_image``)."""

    def generate_from_captions(self, captions: Sequence[str], *, seed: int | None = None) -> Tensor:
        """Draw one image per caption.

        :param captions: the captions, in the words of the model's training data.
        :param seed: makes the noise reproducible.
        :returns: ``(len(captions), C, H, W)`` images in ``[-1, 1]``.
        """
        ...


@runtime_checkable
class AnomalyScorer(Protocol):
    """Anomaly detection (task ``anomaly``)."""

    def score(self, images: Tensor) -> Tensor:
        """Anomaly scores.

        :param images: ``(B, C, H, W)`` uint8 or floats in ``[-1, 1]``.
        :returns: ``(B,)`` float scores on the CPU, higher = more anomalous.
        """
        ...


TASK_PROTOCOLS: dict[Task, type] = {
    Task.UNCONDITIONAL: NoiseGenerator,
    Task.PAIRED: Translator,
    Task.UNPAIRED: Translator,
    Task.SUPER_RESOLUTION: Upscaler,
    Task.TEXT_TO_IMAGE: TextToImageGenerator,
    Task.ANOMALY: AnomalyScorer,
}
"""The protocol every variant of a task implements."""


def gaussian_noise(shape: Sequence[int], *, seed: int | None = None, truncation: float | None = None) -> Tensor:
    """Standard normal latents on the CPU, optionally truncated: the prior of the built-in generators.

    The truncation trick (Brock et al. 2019, BigGAN) trades variety for fidelity by drawing each value from the
    normal distribution truncated to ``[-psi, psi]``: values within it are kept and those outside are redrawn (here
    in one pass, by inverting the CDF on the truncated range), so a large psi leaves the latents of a seed as they
    are, and a smaller psi gives samples closer to the average image. (StyleGAN's variant scales an intermediate
    latent toward its mean; these generators have no mapping network, so the BigGAN form is the standard one.)

    :param shape: the latents' shape, ``(n, ...)``.
    :param seed: makes the draw reproducible; ``None`` draws from the global generator.
    :param truncation: psi > 0, or ``None`` for untruncated noise.
    :returns: float32 latents of ``shape``.
    :raises ganzoo.ConfigError: for a psi that is not a positive number.
    """
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(*shape, generator=gen)
    if truncation is None:
        return z
    psi = check_truncation(truncation)
    outside = z.abs() > psi
    count = int(outside.sum())
    if count:
        lo = torch.special.ndtr(torch.tensor(-psi, dtype=torch.float64))
        u = torch.rand(count, generator=gen, dtype=torch.float64)
        z[outside] = torch.special.ndtri(lo + u * (1 - 2 * lo)).clamp(-psi, psi).float()
    return z


def check_truncation(truncation: float) -> float:
    """``truncation`` as a float, checked.

    :param truncation: the truncation threshold psi.
    :returns: psi.
    :raises ganzoo.ConfigError: unless psi is a finite number > 0.
    """
    psi = float(truncation)
    if not (math.isfinite(psi) and psi > 0):
        raise ConfigError(f"truncation must be a number > 0 (about 0.5 to 2 for normal noise), got {truncation}")
    return psi


def latent_walk(start: Tensor, end: Tensor, frames: int) -> Tensor:
    """Spherical interpolation (slerp) from ``start`` to ``end``, the walk of latent-space videos: it keeps the
    latents' norm near that of the prior's samples, where a straight line passes through improbable short vectors
    near the origin.

    :param start: ``(n, ...)`` latents.
    :param end: ``(n, ...)`` latents of the same shape.
    :param frames: points per walk, both ends included (>= 2).
    :returns: ``(n, frames, ...)``: for each of the ``n`` walks its ``frames`` latents in order.
    :raises ganzoo.ConfigError: for fewer than 2 frames.
    """
    if frames < 2:
        raise ConfigError(f"a latent walk needs at least 2 frames (its two ends), got {frames}")
    a, b = start.flatten(1).double(), end.flatten(1).double()
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    omega = cos.clamp(-1, 1).acos()[:, None]  # (n, 1)
    t = torch.linspace(0, 1, frames, dtype=torch.float64)[None, :]  # (1, frames)
    sin = omega.sin()
    near = sin.abs() < 1e-6  # (anti)parallel ends: the sphere gives no direction, so walk straight
    wa = torch.where(near, 1 - t, ((1 - t) * omega).sin() / sin.where(~near, torch.ones_like(sin)))
    wb = torch.where(near, t, (t * omega).sin() / sin.where(~near, torch.ones_like(sin)))
    path = wa[..., None] * a[:, None] + wb[..., None] * b[:, None]
    return path.to(start.dtype).reshape(start.shape[0], frames, *start.shape[1:])


def protocol_of(task: Task | str) -> type:
    """The protocol of ``task``.

    :param task: a :class:`ganzoo.Task` or its value.
    :returns: the protocol class, e.g. :class:`Translator` for ``"paired"``.
    :raises ganzoo.UnknownNameError: for an unknown task.
    """
    from .errors import UnknownNameError

    try:
        return TASK_PROTOCOLS[Task(task)]
    except ValueError:
        raise UnknownNameError("task", str(task), [t.value for t in Task]) from None


def _members(protocol: type) -> list[str]:
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass in (Protocol, object) or not getattr(klass, "_is_protocol", False):
            continue
        names.update(getattr(klass, "__annotations__", {}))
        names.update(k for k, v in vars(klass).items() if callable(v) and not k.startswith("_"))
    return sorted(names)


def conformance_problems(model: Any, protocol: type) -> list[str]:
    """What ``model`` lacks to implement ``protocol``: missing attributes and methods, and protocol parameters the
    model's methods do not accept. Empty when it conforms.

    :param model: the object to check (a variant instance).
    :param protocol: one of this module's protocols.
    :returns: one short phrase per problem.
    """
    problems = []
    for name in _members(protocol):
        if not hasattr(model, name):
            problems.append(f"no {name!r}")
            continue
        want = getattr(protocol, name, None)
        have = getattr(model, name)
        if not (inspect.isfunction(want) and callable(have)):
            continue
        try:
            params = inspect.signature(have).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            problems.append(f"{name}() takes **kwargs instead of its protocol's named parameters")
            continue
        for pname in list(inspect.signature(want).parameters)[1:]:
            if pname not in params:
                problems.append(f"{name}() has no parameter {pname!r}")
    return problems


def require(model: Any, protocol: type[P], *, purpose: str) -> P:
    """``model`` as an implementation of ``protocol``, for ``purpose`` (a command or evaluator name).

    :param model: a variant instance.
    :param protocol: the protocol ``purpose`` calls.
    :param purpose: what needs it, for the error message (``"ganzoo sample"``).
    :returns: ``model`` itself, typed as ``protocol``.
    :raises ganzoo.ConfigError: when the model's task is not one served by ``protocol`` (the user chose a model of
        the wrong task), or it is a class-conditional need and the model has no classes, or a
        :class:`LatentGenerator` need and the model has no ``noise()``.
    :raises ganzoo.PluginError: when the model's task is served by ``protocol`` but its variant does not implement
        it (a plugin bug).
    """
    name = getattr(model, "name", type(model).__name__)
    task = getattr(model, "task", None)
    serving = [str(t) for t, p in TASK_PROTOCOLS.items() if p in protocol.__mro__]
    if task is None or str(task) not in serving:
        raise ConfigError(f"{name} is a {task} model; {purpose} needs a model of task {' or '.join(serving)}")
    # Classes and a separate noise draw are options of a noise model, not duties: lacking one is the user's choice
    # of model, not a plugin bug.
    if protocol is ClassConditionalGenerator and not int(getattr(model, "num_classes", 0) or 0):
        raise ConfigError(f"{name} was trained without classes; {purpose} needs a class-conditional model")
    if protocol is LatentGenerator and not callable(getattr(model, "noise", None)):
        raise ConfigError(
            f"{name} does not draw its noise apart from generating (no noise() of ganzoo.tasks.LatentGenerator); "
            f"{purpose} needs it"
        )
    problems = conformance_problems(model, protocol)
    if problems:
        raise PluginError(
            f"variant {name!r} ({task}) does not implement ganzoo.tasks.{protocol.__name__}, which {purpose} "
            f"calls: {'; '.join(problems)}"
        )
    return model  # type: ignore[return-value]
