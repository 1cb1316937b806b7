"""Layers with fast paths for the CPU and channels_last memory, each the torch layer it subclasses (same
parameters, same ``state_dict`` keys) and each exact: convolutions of few-pixel inputs as one matrix product,
instance norm that keeps channels_last, and a gradient hook for channel concatenations.

**Matrix-product convolutions.**

oneDNN's convolution kernels are built for inputs with many pixels. Deep in an encoder-decoder at batch 1 (the
1x1 to 8x8 levels of Isola et al.'s U-Net, 512-1024 channels), a convolution has a few dozen output positions and a
weight of millions of elements, and oneDNN runs it at a fraction of the machine's speed. Written as what it is there,
one 2-D matrix product of the weight with the (unfolded) input, followed for the transposed convolution by ``fold``
(col2im), the same layer is about 2-4x faster forward and backward on a 2-core CPU with bf16 autocast
(``python -m benchmarks.layers``; docs/benchmarks/layers.md has the table, and its one loss: a single output position).
The modules switch to the matrix product only on the CPU, outside ``torch.compile``, and only when the product has at
most ``GEMM_MAX_POSITIONS`` columns (batch x output or input positions); otherwise they run the torch layer unchanged.
``reference_class`` names the torch layer, which the plain-PyTorch benchmark baselines run instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GEMM_MAX_POSITIONS = 64


def _channels_last(t: Tensor) -> bool:
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def _plain(m: nn.Module, x: Tensor) -> bool:
    # Under torch.compile the compiler generates its own kernels (and these shape tests would be symbolic).
    return (
        not torch.compiler.is_compiling()
        and x.device.type == "cpu"
        and x.dim() == 4
        and m.groups == 1
        and tuple(m.dilation) == (1, 1)
        and m.padding_mode == "zeros"
        and not isinstance(m.padding, str)
    )


def _like_torch(out: Tensor, x: Tensor, weight: Tensor) -> Tensor:
    # The torch layer's output is channels_last when its input or its weight is (a 1x1 input is both formats).
    cl = _channels_last(x) or _channels_last(weight)
    return out.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


def _compute_weight(weight: Tensor, x: Tensor) -> Tensor:
    """The weight in the dtype the product will run in, cast before it is reshaped: under autocast the cast (and
    its backward) then acts on the parameter's own dense layout."""
    if torch.is_autocast_enabled(x.device.type):
        return weight.to(torch.get_autocast_dtype(x.device.type))
    return weight


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` computed as ``weight @ unfold(x)`` on the CPU when the output has few positions."""

    reference_class = nn.Conv2d

    def forward(self, x: Tensor) -> Tensor:
        if not _plain(self, x):
            return super().forward(x)
        n, cin, h, w = x.shape
        w_ = self.weight
        cout, (kh, kw), (sh, sw), (ph, pw) = w_.shape[0], self.kernel_size, self.stride, self.padding
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if n * ho * wo > GEMM_MAX_POSITIONS:
            return super().forward(x)
        w_ = _compute_weight(w_, x)
        cols = F.unfold(x.to(w_.dtype), (kh, kw), padding=(ph, pw), stride=(sh, sw))  # n, cin*kh*kw, positions
        if _channels_last(w_):
            # channels_last memory is (cout, kh, kw, cin): multiply in that order, reordering the small unfolded input
            mat = w_.permute(0, 2, 3, 1).reshape(cout, -1)
            cols = cols.view(n, cin, kh, kw, -1).permute(2, 3, 1, 0, 4).reshape(kh * kw * cin, -1)
        else:
            mat = w_.reshape(cout, -1)
            cols = cols.transpose(0, 1).reshape(cin * kh * kw, -1)
        # One 2-D product over every image's positions (a batched product with a broadcast weight would sum the
        # weight's gradient over a materialised batch dimension).
        out = (mat @ cols).view(cout, n, ho, wo).transpose(0, 1)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype).view(1, -1, 1, 1)
        return _like_torch(out, x, self.weight)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` computed as ``fold(weight^T @ x)`` on the CPU when the input has few positions."""

    reference_class = nn.ConvTranspose2d

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is not None or not _plain(self, x) or tuple(self.output_padding) != (0, 0):
            return super().forward(x, output_size)
        n, cin, h, w = x.shape
        if n * h * w > GEMM_MAX_POSITIONS:
            return super().forward(x)
        w_ = self.weight
        cout, (kh, kw), (sh, sw), (ph, pw) = w_.shape[1], self.kernel_size, self.stride, self.padding
        w_ = _compute_weight(w_, x)
        x2d = x.to(w_.dtype).reshape(n, cin, h * w).transpose(0, 1).reshape(cin, n * h * w)  # one 2-D product
        if _channels_last(w_):
            # channels_last memory is (cin, kh, kw, cout): multiply in that order, then reorder the small product
            # to fold's (cout, kh, kw)
            cols = w_.permute(0, 2, 3, 1).reshape(cin, -1).t() @ x2d
            cols = cols.view(kh, kw, cout, n, h * w).permute(3, 2, 0, 1, 4).reshape(n, cout * kh * kw, h * w)
        else:
            cols = (w_.reshape(cin, -1).t() @ x2d).view(cout * kh * kw, n, h * w).transpose(0, 1)
        size = ((h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw)
        out = F.fold(cols, size, (kh, kw), stride=(sh, sw), padding=(ph, pw))
        if self.bias is not None:
            out = out + self.bias.to(out.dtype).view(1, -1, 1, 1)
        return _like_torch(out, x, self.weight)


def _dense_cl(grad: Tensor) -> Tensor:
    return grad.contiguous(memory_format=torch.channels_last)


def dense_grad(x: Tensor) -> Tensor:
    """``x``, whose gradient is made dense channels_last memory when ``x`` is channels_last.

    The gradient of one part of a channel concatenation is a channel slice of the concatenated gradient, strided in
    channels_last memory; a BatchNorm backward that receives it takes a slow path (16x slower at 64 x 128 x 128 on
    a 2-core CPU in bf16). Wrap the part before concatenating: ``torch.cat([x, dense_grad(block(x))], 1)``."""
    if x.requires_grad and _channels_last(x) and not torch.compiler.is_compiling():
        x.register_hook(_dense_cl)
    return x


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that keeps channels_last memory. torch's instance norm views its input as one image of
    ``N x C`` channels, which channels_last memory cannot express, so it returns a contiguous tensor and every
    layer around it converts back and forth. Per image, instance statistics are batch statistics of a batch of one,
    so a channels_last input is normalised image by image with ``batch_norm``, which keeps the format: the same
    values. In isolation the per-image loop can be slower than torch's kernel (docs/benchmarks/layers.md); inside a
    channels_last network it removes the conversions around it (a training step of Zhu et al.'s
    unpaired translation: 800 -> 756 ms in a profile)."""

    def forward(self, x: Tensor) -> Tensor:
        if not _channels_last(x) or self.affine or self.track_running_stats or torch.compiler.is_compiling():
            return super().forward(x)
        # (split, not slicing: its backward concatenates, which keeps the gradient channels_last)
        return torch.cat([F.batch_norm(xi, None, None, training=True, eps=self.eps) for xi in x.split(1)])
