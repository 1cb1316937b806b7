"""Side-by-side timings of ganzoo's CPU fast paths against the torch layers they replace (``ganzoo.nn.fast``,
``ganzoo.train.optim``): forward + backward, bf16 autocast, channels_last, median of repeated rounds, run in
alternation in one process.

    python -m benchmarks.layers [--rounds 15] [--out docs/benchmarks/layers.md]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ganzoo.bench import machine_name
from ganzoo.nn import Conv2d, ConvTranspose2d, InstanceNorm2d
from ganzoo.train.optim import DenseFusedAdam

CL = torch.channels_last


def _layer_case(fast: nn.Module, x_shape: tuple[int, ...]) -> tuple[Callable[[], None], Callable[[], None]]:
    ref = copy.deepcopy(fast)
    ref.__class__ = type(fast).__mro__[1]  # the torch layer it subclasses
    fast, ref = fast.to(memory_format=CL), ref.to(memory_format=CL)
    x = torch.randn(x_shape).to(memory_format=CL).requires_grad_()

    def step(m: nn.Module) -> Callable[[], None]:
        def f() -> None:
            for p in m.parameters():
                p.grad = None
            x.grad = None
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = m(x)
            y.float().sum().backward()

        return f

    return step(fast), step(ref)


def _adam_case(shapes: list[tuple[int, ...]]) -> tuple[Callable[[], None], Callable[[], None]]:
    def make(cls: type, **kw) -> Callable[[], None]:
        params = [nn.Parameter(torch.randn(s).to(memory_format=CL)) for s in shapes]
        for p in params:
            p.grad = torch.randn_like(p)
        opt = cls(params, lr=1e-4, **kw)
        return opt.step

    return make(DenseFusedAdam), make(torch.optim.Adam, fused=True)


CASES: dict[str, Callable[[], tuple[Callable[[], None], Callable[[], None]]]] = {
    "Conv2d 512->512 k4 s2, 2x2 input": lambda: _layer_case(Conv2d(512, 512, 4, 2, 1, bias=False), (1, 512, 2, 2)),
    "Conv2d 512->512 k4 s2, 8x8 input": lambda: _layer_case(Conv2d(512, 512, 4, 2, 1, bias=False), (1, 512, 8, 8)),
    "Conv2d 512->512 k4 s2, 16x16 input": lambda: _layer_case(Conv2d(512, 512, 4, 2, 1, bias=False), (1, 512, 16, 16)),
    "ConvTranspose2d 1024->512 k4 s2, 2x2 input": lambda: _layer_case(
        ConvTranspose2d(1024, 512, 4, 2, 1, bias=False), (1, 1024, 2, 2)
    ),
    "ConvTranspose2d 1024->512 k4 s2, 4x4 input": lambda: _layer_case(
        ConvTranspose2d(1024, 512, 4, 2, 1, bias=False), (1, 1024, 4, 4)
    ),
    "ConvTranspose2d 1024->512 k4 s2, 8x8 input": lambda: _layer_case(
        ConvTranspose2d(1024, 512, 4, 2, 1, bias=False), (1, 1024, 8, 8)
    ),
    "InstanceNorm2d 64 ch, 3 x 128x128": lambda: _layer_case(InstanceNorm2d(64), (3, 64, 128, 128)),
    "InstanceNorm2d 256 ch, 3 x 32x32": lambda: _layer_case(InstanceNorm2d(256), (3, 256, 32, 32)),
    "Adam step, pix2pix unet_256 G shapes (54M, channels_last)": lambda: _adam_case(
        [(512, 512, 4, 4)] * 8 + [(1024, 512, 4, 4)] * 3 + [(1024, 256, 4, 4), (512, 128, 4, 4), (256, 64, 4, 4)]
    ),
}


def time_ms(f: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    f()
    return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", default=None, help="write the markdown table here too")
    args = ap.parse_args(argv)
    rows = [
        f"Machine: {machine_name()}, torch {torch.__version__}; forward + backward (Adam: one step), bf16 autocast, "
        f"channels_last, median of {args.rounds} alternating rounds after 3 warm-up rounds.",
        "",
        "| case | torch ms | ganzoo ms | speedup |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, make in CASES.items():
        fast, ref = make()
        for _ in range(3):
            fast()
            ref()
        t_fast, t_ref = [], []
        for _ in range(args.rounds):
            t_ref.append(time_ms(ref))
            t_fast.append(time_ms(fast))
        a, b = statistics.median(t_ref), statistics.median(t_fast)
        rows.append(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")
        print(rows[-1], flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
