"""Speed measurement shared by ``ganzoo bench`` and the speed suite in ``benchmarks/`` (which adds the comparison
with plain-PyTorch training loops: ``python -m benchmarks.speed``).

A measurement builds a variant at a named size (the variant's ``bench_sizes``), runs the trainer's real
``train_step`` (every phase, EMA, the chosen precision/compile/memory format) on a fixed batch already on the device,
excludes warm-up (compilation, cuDNN autotune), synchronizes the device around every timed call and reports the
median.
"""

from __future__ import annotations

import contextlib
import json
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import registry
from .api import create
from .train import TrainConfig, Trainer, resolve_device
from .train.data import build_dataset, first_items, to_device
from .variant import GANVariant

# Peak dense bf16 throughput (FLOP/s) of known accelerators, for MFU.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


@dataclass
class Result:
    name: str
    size: str
    device: str
    precision: str
    compile: bool
    channels_last: bool
    batch_size: int
    ms_per_step: float
    img_per_s: float
    infer_ms: float | None = None
    peak_mem_mb: float | None = None
    gflop_per_step: float | None = None
    mfu: float | None = None
    rounds: int = 0
    samples_ms: list[float] = field(default_factory=list)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(name: str, size: str = "standard", **overrides: Any) -> GANVariant:
    """The variant ``name`` at ``size``.

    :param name: a variant name (``family`` or ``family.tag``).
    :param size: a key of the variant's ``bench_sizes`` (``"standard"`` or ``"small"``); a size it does not list
        means its defaults.
    :param overrides: config overrides applied last.
    :returns: the variant.
    """
    spec, _, _ = registry.resolve(name)
    return create(name, **{**spec.cls.bench_sizes.get(size, {}), **overrides})


def prepare(
    name: str,
    size: str = "standard",
    device: str = "cpu",
    precision: str = "auto",
    compile: bool = False,
    channels_last: bool | None = None,
    batch_size: int | None = None,
    **overrides: Any,
) -> tuple[Trainer, dict[str, Any]]:
    """A trainer set up for ``name`` and one batch on its device, ready for ``trainer.train_step(batch)``."""
    torch.manual_seed(0)
    if compile:
        # Each compiled measurement starts from an empty compile cache: shapes seen by earlier cases would otherwise
        # turn on dynamic shapes for the layers the variants share.
        torch._dynamo.reset()
    variant = build(name, size, **overrides)
    cfg = TrainConfig(
        steps=10**9,
        device=device,
        precision=precision,
        compile=compile,
        channels_last=channels_last,
        batch_size=batch_size,
        progress=False,
        tensorboard=False,
    )
    trainer = Trainer(variant, cfg, out="/nonexistent-bench-dir")
    trainer._setup()
    ds = build_dataset(variant.default_data, variant, seed=0)
    variant.prepare_data(ds)  # the state a training run gives the variant before its first step
    batch = to_device(first_items(ds, trainer.batch_size), trainer.device, trainer.channels_last)
    # Skip pretraining stages so the timed step is the adversarial one (all phases) where a variant has stages.
    trainer.step = sum(s.steps or 0 for s in trainer.stages[:-1])
    return trainer, batch


def count_flops(fn: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def median_ms(fn: Callable[[], Any], device: torch.device, rounds: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(rounds):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def measure(
    name: str,
    size: str = "standard",
    device: str = "cpu",
    precision: str = "auto",
    compile: bool = False,
    channels_last: bool | None = None,
    rounds: int = 5,
    warmup: int = 2,
    flops: bool = True,
) -> Result:
    trainer, batch = prepare(name, size, device, precision, compile, channels_last)
    dev = trainer.device
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = median_ms(lambda: trainer.train_step(batch), dev, rounds, warmup + (3 if compile else 0))
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    gflop = count_flops(lambda: trainer.train_step(batch)) / 1e9 if flops and not compile else None
    v = trainer.variant
    gen = torch.Generator().manual_seed(0)
    inputs = v.sample_inputs(trainer.batch_size, gen, batch=batch)
    v.eval()
    with torch.no_grad(), trainer._autocast():
        infer = median_ms(lambda: v.sample_images(inputs), dev, max(3, rounds // 2), 1)
    v.train()
    med = statistics.median(times)
    mfu = None
    if gflop and dev.type == "cuda":
        card = torch.cuda.get_device_name(dev)
        peak_flops = next((p for k, p in PEAK_BF16.items() if k in card), None)
        if peak_flops:
            mfu = gflop * 1e9 / (med / 1000) / peak_flops
    return Result(
        name=name,
        size=size,
        device=str(dev),
        precision=str(trainer.dtype).replace("torch.", ""),
        compile=compile,
        channels_last=trainer.channels_last,
        batch_size=trainer.batch_size,
        ms_per_step=med,
        img_per_s=trainer.batch_size / (med / 1000),
        infer_ms=statistics.median(infer),
        peak_mem_mb=peak,
        gflop_per_step=gflop,
        mfu=mfu,
        rounds=rounds,
        samples_ms=times,
    )


def machine_name(device: str = "cpu") -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or "cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu} x{torch.get_num_threads()} threads"


def write_results(results: list[Result], path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine_name(results[0].device if results else "cpu"),
        "torch": torch.__version__,
        "results": [asdict(r) for r in results],
        **(extra or {}),
    }
    path.write_text(json.dumps(payload, indent=2))
    return path


def markdown_table(results: list[Result]) -> str:
    rows = [
        "| variant | size | batch | device | precision | compile | channels_last | ms/step (median) | img/s | "
        "inference ms | GFLOP/step | peak MB | MFU |",
        "| --- | --- | ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:

        def f(x, fmt):
            return "" if x is None else format(x, fmt)

        rows.append(
            f"| {r.name} | {r.size} | {r.batch_size} | {r.device} | {r.precision} | {r.compile} | {r.channels_last} | "
            f"{r.ms_per_step:.1f} | {r.img_per_s:.1f} | {f(r.infer_ms, '.1f')} | {f(r.gflop_per_step, '.1f')} | "
            f"{f(r.peak_mem_mb, '.0f')} | {f(r.mfu, '.1%')} |"
        )
    return "\n".join(rows)


def grid(device: str, quick: bool) -> list[dict[str, Any]]:
    """The option combinations measured per variant on ``device``."""
    dev = resolve_device(device)
    precisions = ["fp32", "bf16"] + (["fp16"] if dev.type == "cuda" else [])
    combos = [{"precision": p, "channels_last": cl} for p in precisions for cl in (False, True)]
    if not quick:
        combos += [{"precision": "auto", "compile": True, "channels_last": None}]
    if quick:
        combos = [{"precision": "fp32", "channels_last": False}, {"precision": "auto", "channels_last": None}]
    return combos


def run(
    names: list[str] | None = None,
    device: str = "cpu",
    quick: bool = False,
    out: str | Path = "benchmarks/results",
    progress: bool = True,
    baselines: Mapping[str, Callable[[str, str, int], dict[str, Any]]] | None = None,
) -> tuple[Path, str]:
    """Measure every variant over the option grid (and the comparisons with baselines given); write
    ``<out>/<machine>.json`` and ``.md`` after every case, so an interrupted run keeps what it measured.

    :param names: variants to measure (default: every registered family).
    :param device: ``cpu``, ``cuda`` ...
    :param quick: the small size only, fewer combinations and rounds.
    :param out: the results folder.
    :param progress: show a progress bar.
    :param baselines: variant name -> ``compare(size, device, rounds)`` returning a row of :func:`ratio_table`
        (``benchmarks/baselines.py`` has the plain-PyTorch loops); rows go to the JSON's ``baselines`` list.
    :returns: the JSON path and the markdown.
    """
    baselines = {n: f for n, f in (baselines or {}).items()}
    names = names or registry.list_variants(tags=False)
    sizes = ("small",) if quick else ("small", "standard")
    jobs = [(n, s, c) for n in names for s in sizes for c in grid(device, quick)]
    compared = [n for n in names if n in baselines]
    results: list[Result] = []
    ratios: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs) + len(compared), desc="bench", unit="case")
    machine = machine_name(device)
    slug = "".join(ch if ch.isalnum() else "-" for ch in machine).strip("-").lower()
    path = Path(out) / f"{slug}.json"
    failures: list[dict[str, Any]] = []

    def markdown() -> str:
        md = f"Machine: {machine}, torch {torch.__version__}\n\n" + markdown_table(results)
        if ratios:
            md += "\n\n" + ratio_table(ratios)
        if failures:
            md += "\n\nFailed cases:\n\n" + "\n".join(f"- {json.dumps(f)}" for f in failures)
        return md

    def save() -> None:  # after every case, so a crash, Ctrl-C or a timeout keeps what was measured
        write_results(results, path, {"baselines": ratios, "failures": failures, "quick": quick})
        path.with_suffix(".md").write_text(markdown() + "\n")

    for n, s, c in jobs:
        try:
            results.append(measure(n, s, device, rounds=3 if quick else 5, **c))
        except Exception as e:  # one failing case (e.g. a compiler error) must not lose the others
            failures.append({"name": n, "size": s, **c, "error": f"{type(e).__name__}: {str(e).splitlines()[0]}"})
        save()
        if bar:
            bar.update(1)
    for n in compared:
        try:
            ratios.append(baselines[n]("small" if quick else "standard", device, 3 if quick else 9))
        except Exception as e:
            failures.append({"name": n, "baseline": True, "error": f"{type(e).__name__}: {e}"})
        save()
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    save()
    return path, markdown()


def ratio_table(ratios: list[dict[str, Any]]) -> str:
    """A markdown table of baseline comparisons.

    :param ratios: rows with ``name``, ``size``, ``batch_size``, ``baseline_ms``, ``ganzoo_ms``,
        ``ganzoo_precision`` and ``speedup``.
    :returns: the table.
    """
    rows = [
        "| variant | size | batch | plain PyTorch (eager fp32) ms | ganzoo default ms | ganzoo precision | speedup |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in ratios:
        rows.append(
            f"| {r['name']} | {r['size']} | {r['batch_size']} | {r['baseline_ms']:.1f} | {r['ganzoo_ms']:.1f} | "
            f"{r['ganzoo_precision']} | {r['speedup']:.2f}x |"
        )
    return "\n".join(rows)
