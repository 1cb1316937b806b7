"""Learning-rate schedules: pure functions of the step, so that a checkpoint needs no scheduler state and a resumed
run follows the same rates (a variant's ``lr_factor`` returns one of them)."""

from __future__ import annotations

import math

__all__ = ["cosine_decay", "final_decay", "linear_decay"]


def linear_decay(step: int, total: int, start: int = -1, length: int = 0) -> float:
    """The ``linear`` policy of Isola et al.'s and Zhu et al.'s reference implementation (``n_epochs`` at the full
    rate, then ``n_epochs_decay`` linearly towards 0), counted in steps.

    Fix ``start`` and ``length`` when a run may be resumed with a different total: the defaults follow ``total``.

    :param step: the 0-based training step.
    :param total: the run's total steps.
    :param start: the first step of the decay; -1 means half of ``total``.
    :param length: steps of the decay; 0 means until ``total``.
    :returns: the factor of the base learning rate: 1 before ``start``, from there
        ``1 - (step + 1 - start) / (length + 1)``, never below 0.
    """
    start = start if start >= 0 else total // 2
    length = length if length > 0 else max(total - start, 1)
    return max(0.0, 1.0 - max(0, step + 1 - start) / (length + 1))


def final_decay(step: int, total: int, fraction: float) -> float:
    """Constant, then :func:`linear_decay` to 0 over the final ``fraction`` of a ``total``-step run (what a variant's
    ``lr_decay`` option usually means).

    :param step: the 0-based training step.
    :param total: the run's total steps.
    :param fraction: the decaying share of the run, in [0, 1]; one that rounds to no step keeps the rate constant.
    :returns: the factor of the base learning rate.
    """
    decay = round(fraction * total)
    if decay < 1:
        return 1.0
    return linear_decay(step, total, start=total - decay, length=decay)


def cosine_decay(step: int, length: int, start: int = 0) -> float:
    """A half cosine from 1 to 0 over ``length`` steps from ``start`` (Loshchilov & Hutter's annealing without
    restarts): the rate falls slowly at first, fastest mid-way, and slowly again as it nears 0.

    The curve reaches 0 at step ``start + length``, the first step after it, so every step of the span trains at a
    positive rate (the last at about ``(pi / (2 * length))^2``).

    :param step: the 0-based training step.
    :param length: steps of the decay (>= 1).
    :param start: the first step of the decay.
    :returns: the factor of the base learning rate: 1 up to ``start``, then ``(1 + cos(pi * (step - start) /
        length)) / 2``, and 0 from ``start + length`` on.
    :raises ValueError: when ``length`` is below 1.
    """
    if length < 1:
        raise ValueError(f"cosine decay needs a length of at least 1 step, got {length}")
    t = min(max(step - start, 0), length) / length
    return 0.5 * (1.0 + math.cos(math.pi * t))
