"""Fused Adam that updates channels_last (or any dense, non-contiguous) parameters in place.

The fused CPU kernel wants contiguous tensors and otherwise clones every non-contiguous parameter, gradient and
moment on each step and copies the results back: on a channels_last U-Net generator of 54M parameters that costs
more than the update itself. A dense tensor's memory is one contiguous run whatever its strides, so when a
parameter, its gradient and both moments share the same strides the update is exactly the same elementwise
computation on flat views of that memory, which the kernel takes as they are.
"""

from __future__ import annotations

import torch


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.as_strided((t.numel(),), (1,), t.storage_offset())


def _dense(t: torch.Tensor) -> bool:
    # Non-overlapping and dense: the strides, sorted, are the running products of the sizes.
    expected = 1
    for size, stride in sorted(zip(t.shape, t.stride(), strict=True), key=lambda p: p[1]):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


class DenseFusedAdam(torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` whose per-step lists hold flat views of non-contiguous dense tensors.

    State (``step``, ``exp_avg``, ``exp_avg_sq``) is the ordinary Adam state of the ordinary parameters, so
    ``state_dict``/``load_state_dict`` and checkpoints are unchanged."""

    def __init__(self, params, **kw):
        super().__init__(params, fused=True, **kw)

    def _init_group(self, group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps):
        has_complex = super()._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps)
        lists = [params, grads, exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if group["amsgrad"] else [])
        for i, p in enumerate(params):
            if p.is_contiguous() or not _dense(p):
                continue
            tensors = [lst[i] for lst in lists]
            if all(t.stride() == p.stride() and t.shape == p.shape for t in tensors):
                for lst, t in zip(lists, tensors, strict=True):
                    lst[i] = _flat(t)
        return has_complex
