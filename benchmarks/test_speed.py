"""Speed suite (opt-in: `make bench`, not part of `make test`).

For every registered variant: one full training step and one inference batch at its standard and small size (its
``bench_sizes``), over precision x channels_last (x compile unless --quick); and, side by side in the same process,
ganzoo's default step against the plain-PyTorch baselines of ``benchmarks/baselines.py``.
"""

from __future__ import annotations

import pytest

import ganzoo
from benchmarks.baselines import BASELINES, baseline_ratio
from ganzoo import bench


def _variants(config):
    chosen = config.getoption("--variants")
    names = ganzoo.list_variants(tags=False)
    return [n for n in names if chosen is None or n in chosen.split(",")]


def pytest_generate_tests(metafunc):
    if "combo" in metafunc.fixturenames:
        device = metafunc.config.getoption("--device")
        quick = metafunc.config.getoption("--quick")
        cases = []
        for name in _variants(metafunc.config):
            for size in ("small",) if quick else ("small", "standard"):
                for combo in bench.grid(device, quick):
                    tag = "-".join(f"{k}={v}" for k, v in combo.items())
                    cases.append(pytest.param(name, size, combo, id=f"{name}-{size}-{tag}"))
        metafunc.parametrize("name,size,combo", cases)
    if "baseline" in metafunc.fixturenames:
        metafunc.parametrize("baseline", [n for n in BASELINES if n in _variants(metafunc.config)])


def test_train_step(benchmark, name, size, combo, device, quick):
    trainer, batch = bench.prepare(name, size, device, **combo)
    dev = trainer.device
    warm = 2 + (3 if combo.get("compile") else 0)
    for _ in range(warm):
        trainer.train_step(batch)

    def step():
        trainer.train_step(batch)
        bench.sync(dev)

    benchmark.pedantic(step, rounds=3 if quick else 5, iterations=1)
    benchmark.extra_info.update(
        precision=str(trainer.dtype), channels_last=trainer.channels_last, batch_size=trainer.batch_size
    )


def test_baseline_ratio(benchmark, baseline, device, quick):
    """ganzoo's default settings vs the straightforward loop on the same networks, alternating rounds."""
    size = "small" if quick else "standard"
    r = baseline_ratio(baseline, size, device, rounds=3 if quick else 5)
    benchmark.extra_info.update(r)
    print(
        f"\n{baseline} {size}: baseline {r['baseline_ms']:.1f} ms, ganzoo {r['ganzoo_ms']:.1f} ms, {r['speedup']:.2f}x"
    )
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert r["speedup"] > 0
