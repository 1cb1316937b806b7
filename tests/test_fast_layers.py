"""The CPU fast paths: matrix-product convolutions, dense channels_last gradients, and Adam on channels_last
parameters, each against the plain torch computation it replaces."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ganzoo.nn import (
    Conv2d,
    ConvTranspose2d,
    InstanceNorm2d,
    build_generator,
    dense_grad,
    fast,
    generator_stride,
    run_padded,
)
from ganzoo.train.optim import DenseFusedAdam

CASES = [  # (layer, torch layer, kwargs, input channels, input size)
    (Conv2d, nn.Conv2d, dict(kernel_size=4, stride=2, padding=1), 6, (4, 5)),
    (Conv2d, nn.Conv2d, dict(kernel_size=3, stride=1, padding=1), 6, (2, 2)),
    (Conv2d, nn.Conv2d, dict(kernel_size=4, stride=2, padding=1), 6, (2, 2)),
    (ConvTranspose2d, nn.ConvTranspose2d, dict(kernel_size=4, stride=2, padding=1), 6, (1, 1)),
    (ConvTranspose2d, nn.ConvTranspose2d, dict(kernel_size=4, stride=2, padding=1), 6, (3, 4)),
    (ConvTranspose2d, nn.ConvTranspose2d, dict(kernel_size=3, stride=1, padding=0), 6, (2, 2)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_matrix_product_convolutions_match_torch(case, channels_last, bias):
    fast_cls, torch_cls, kw, cin, (h, w) = CASES[case]
    torch.manual_seed(0)
    fast = fast_cls(cin, 5, bias=bias, **kw).double()
    ref = torch_cls(cin, 5, bias=bias, **kw).double()
    ref.load_state_dict(fast.state_dict())
    assert list(fast.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, cin, h, w, dtype=torch.double)
    if channels_last:
        fast, x = fast.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = fast(xa), ref(xb)
    assert ya.shape == yb.shape
    torch.testing.assert_close(ya, yb)
    # The output keeps the torch layer's memory format, so the layers after it see what they would have.
    assert ya.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    g = torch.randn_like(yb)
    (ya * g).sum().backward()
    (yb * g).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad)
    if bias:
        torch.testing.assert_close(fast.bias.grad, ref.bias.grad)


def test_gemm_path_is_taken_only_for_small_cpu_inputs(monkeypatch):
    calls = []
    unfold = torch.nn.functional.unfold
    monkeypatch.setattr(fast.F, "unfold", lambda *a, **k: calls.append(1) or unfold(*a, **k))
    conv = Conv2d(3, 4, 4, 2, 1)
    conv(torch.randn(1, 3, 16, 16))  # 8x8 = 64 output positions: the matrix product
    assert calls == [1]
    conv(torch.randn(2, 3, 16, 16))  # 128 positions: torch's kernel
    assert calls == [1]


def test_gemm_path_under_bf16_autocast_is_close_to_fp32():
    torch.manual_seed(0)
    up = ConvTranspose2d(64, 32, 4, 2, 1).to(memory_format=torch.channels_last)
    x = torch.randn(1, 64, 4, 4).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = up(x)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
    ref = nn.functional.conv_transpose2d(x, up.weight, up.bias, 2, 1)
    torch.testing.assert_close(y.float(), ref, atol=0.05, rtol=0.02)


def test_dense_grad_hands_back_a_dense_channels_last_gradient():
    x = torch.randn(1, 4, 5, 5).to(memory_format=torch.channels_last).requires_grad_()
    part = x * 2
    y = torch.cat([x, dense_grad(part)], 1)
    seen = []
    part.register_hook(seen.append)  # tensor hooks run in registration order: this one sees dense_grad's result
    (y * torch.randn_like(y)).sum().backward()
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    plain = torch.randn(1, 4, 5, 5, requires_grad=True)
    assert dense_grad(plain) is plain


def test_dense_fused_adam_matches_fused_adam_on_channels_last_parameters():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 3)).to(memory_format=torch.channels_last)
    ref_net = copy.deepcopy(net)
    ours = DenseFusedAdam(net.parameters(), lr=1e-2, betas=(0.5, 0.999))
    ref = torch.optim.Adam(ref_net.parameters(), lr=1e-2, betas=(0.5, 0.999), fused=True)
    for _ in range(3):
        x = torch.randn(2, 3, 9, 9).to(memory_format=torch.channels_last)
        for n, opt in ((net, ours), (ref_net, ref)):
            opt.zero_grad(set_to_none=True)
            n(x).square().mean().backward()
            opt.step()
    for p, q in zip(net.parameters(), ref_net.parameters(), strict=True):
        assert p.is_contiguous(memory_format=torch.channels_last) or p.dim() != 4
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    for p in net.parameters():
        assert ours.state[p]["exp_avg"].stride() == p.stride()


@pytest.mark.parametrize("n", [1, 3])
def test_instance_norm_keeps_channels_last_and_matches_torch(n):
    torch.manual_seed(0)
    x = (torch.randn(n, 5, 6, 7, dtype=torch.double) * 3 + 1).to(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.contiguous().requires_grad_()
    ya, yb = InstanceNorm2d(5)(xa), nn.InstanceNorm2d(5)(xb)
    assert ya.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ya, yb)
    g = torch.randn_like(yb)
    (ya * g).sum().backward()
    (yb * g).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)


@pytest.mark.parametrize("name", ["unet_32", "resnet_6blocks"])
def test_run_padded_any_size_and_exact_on_multiples(name):
    torch.manual_seed(0)
    net = build_generator(name, 3, 3, 4, norm="instance").eval()
    stride = generator_stride(name)
    assert stride == (32 if name == "unet_32" else 4) and net.stride == stride
    x = torch.rand(2, 3, 2 * stride, 2 * stride) * 2 - 1
    torch.testing.assert_close(run_padded(net, x, stride), net(x), rtol=0, atol=0)
    for h, w in ((stride + 3, 2 * stride - 1), (5, 7)):  # reflection padding, then edge replication (too small)
        y = run_padded(net, x[..., :h, :w], stride)
        assert y.shape == (2, 3, h, w) and torch.isfinite(y).all()
    # Padding goes bottom and right, so the top-left output pixel sees the same receptive field inside the image.
    small = x[..., : stride + 1, : stride + 1]
    padded = torch.nn.functional.pad(small, (0, stride - 1, 0, stride - 1), mode="reflect")
    torch.testing.assert_close(run_padded(net, small, stride), net(padded)[..., : stride + 1, : stride + 1])
