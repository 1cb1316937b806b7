"""Feature extraction at CPU speed: images/s of the FID Inception and the domain classifier under each setting, and
whether each setting's FID (FD-dom) stays within 1 % of the fp32 result on real data.

Settings: precision (fp32, bf16 autocast) x memory format (contiguous, channels_last) x batch size x torch threads.
Timing rounds alternate the settings in one process, so a machine whose load changes during the run slows every
setting alike; the median of the rounds is reported. The agreement check extracts two disjoint real sets (N test
images against N train images) under each precision and memory format and compares the Fréchet distance with
fp32's. ``ganzoo eval --feature-precision auto`` uses the fastest setting that agrees
(``ganzoo.metrics.evaluate.AUTO_PRECISION``); docs/metrics.md holds the table.

    python -m benchmarks.feature_speed                                # MNIST from ../shared/data, both extractors
    python -m benchmarks.feature_speed --extractors domain -n 2000 --rounds 5 --json out.json
    python -m benchmarks.feature_speed --no-timing -n 1000           # agreement only
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Extractor:
    """One extractor under one memory format: ``features(images, precision)`` of uint8 images."""

    def __init__(self, name: str, spec: str, image_size: int, channels: int) -> None:
        self.name = name
        if name == "inception":
            from ganzoo.metrics.inception import InceptionFeatures

            self.module: Any = InceptionFeatures(download=False)
            self.clf = None
        else:
            from ganzoo.metrics.domain import get_domain_classifier

            self.clf = get_domain_classifier(spec, image_size, channels, min_accuracy=None, log=_say)
            self.module = self.clf.net
        self.channels_last = False

    def set_channels_last(self, on: bool) -> None:
        # The same switch `ganzoo eval` flips: weights and network inputs in channels_last.
        (self.clf if self.clf is not None else self.module).set_channels_last(on)
        self.channels_last = on

    @torch.no_grad()
    def features(self, images: Tensor, precision: str) -> Tensor:
        with _autocast(precision):
            if self.clf is not None:
                return self.clf.features_and_probs(images)[0].float()
            return self.module(images).float()


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _real_sets(spec: str, n: int, image_size: int, channels: int) -> tuple[Tensor, Tensor]:
    """N test images (seed 1) and N train images (seed 0) as uint8 tensors."""
    from ganzoo import registry
    from ganzoo.data.base import DataRequest, get_items
    from ganzoo.metrics.evaluate import subset
    from ganzoo.train.data import parse_data_spec

    name, arg = parse_data_spec(spec)
    out = []
    for split, seed in (("test", 1), ("train", 0)):
        ds = registry.get("dataset", name).obj(
            arg, DataRequest(task="unconditional", split=split, image_size=image_size, channels=channels)
        )
        idx = subset(len(ds), n, seed)
        out.append(torch.stack([it["image"] for it in get_items(ds, idx)]))
    return out[0], out[1]


def _batches(x: Tensor, batch_size: int) -> Iterator[Tensor]:
    for i in range(0, x.shape[0], batch_size):
        yield x[i : i + batch_size]


def _fd(a: Tensor, b: Tensor) -> float:
    from ganzoo.metrics.frechet import FeatureStats, frechet_distance

    sa, sb = FeatureStats(), FeatureStats()
    sa.update(a)
    sb.update(b)
    return frechet_distance(sa.mean(), sa.cov(), sb.mean(), sb.cov())


SETTINGS = ("fp32", "bf16", "fp32+cl", "bf16+cl")


def _parse_setting(s: str) -> tuple[bool, str]:
    precision, _, cl = s.partition("+")
    if precision not in ("fp32", "bf16") or cl not in ("", "cl"):
        raise SystemExit(f"setting {s!r} is not one of {', '.join(SETTINGS)}")
    return cl == "cl", precision


def agreement(
    ex: Extractor, a: Tensor, b: Tensor, batch_size: int, settings: tuple[str, ...] = SETTINGS
) -> list[dict[str, Any]]:
    """FID (FD-dom) of ``a`` against ``b`` under each setting (``fp32`` first: the reference), relative to fp32."""
    rows = []
    ref = None
    for channels_last, precision in (_parse_setting(s) for s in settings):
        ex.set_channels_last(channels_last)
        t0 = time.perf_counter()
        fa = torch.cat([ex.features(x, precision) for x in _batches(a, batch_size)])
        fb = torch.cat([ex.features(x, precision) for x in _batches(b, batch_size)])
        fd = _fd(fa, fb)
        ref = fd if ref is None else ref
        rows.append(
            {
                "extractor": ex.name,
                "precision": precision,
                "channels_last": channels_last,
                "fd": fd,
                "rel_diff": (fd - ref) / ref,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        _say(f"  {ex.name} {precision} channels_last={channels_last}: FD {fd:.4f} ({rows[-1]['rel_diff']:+.3%})")
    ex.set_channels_last(False)
    return rows


def timing(
    ex: Extractor, images: Tensor, batch_sizes: list[int], threads: list[int], rounds: int
) -> list[dict[str, Any]]:
    """Median images/s of every setting over ``rounds`` rounds that alternate the settings."""
    settings = list(itertools.product(("fp32", "bf16"), (False, True), batch_sizes, threads))
    times: dict[tuple, list[float]] = {s: [] for s in settings}
    before = torch.get_num_threads()
    try:
        for r in range(rounds + 1):  # round 0 warms every setting up (oneDNN primitives, allocator)
            for s in settings:
                precision, channels_last, batch_size, n_threads = s
                torch.set_num_threads(n_threads)
                ex.set_channels_last(channels_last)
                t0 = time.perf_counter()
                for x in _batches(images[: max(batch_size, images.shape[0] // batch_size * batch_size)], batch_size):
                    ex.features(x, precision)
                if r:
                    times[s].append(images.shape[0] / (time.perf_counter() - t0))
            if r:
                _say(f"  {ex.name}: round {r}/{rounds} done")
    finally:
        torch.set_num_threads(before)
        ex.set_channels_last(False)
    return [
        {
            "extractor": ex.name,
            "precision": s[0],
            "channels_last": s[1],
            "batch_size": s[2],
            "threads": s[3],
            "img_per_s": round(statistics.median(v), 2),
        }
        for s, v in times.items()
    ]


def choose(agree: list[dict[str, Any]], speed: list[dict[str, Any]], tolerance: float = 0.01) -> dict[str, Any]:
    """The fastest timed setting whose (precision, channels_last) stayed within ``tolerance`` of fp32's FD."""
    ok = {(r["precision"], r["channels_last"]) for r in agree if abs(r["rel_diff"]) <= tolerance}
    fit = [r for r in speed if (r["precision"], r["channels_last"]) in ok]
    return max(fit, key=lambda r: r["img_per_s"]) if fit else {}


def markdown(agree: list[dict[str, Any]], speed: list[dict[str, Any]], n: int) -> str:
    lines = [f"| extractor | precision | channels_last | FD (N={n}, test vs train) | vs fp32 |", "| --- " * 5 + "|"]
    for r in agree:
        lines.append(
            f"| {r['extractor']} | {r['precision']} | {r['channels_last']} | {r['fd']:.4f} | {r['rel_diff']:+.3%} |"
        )
    if speed:
        lines += ["", "| extractor | precision | channels_last | batch | threads | images/s |", "| --- " * 6 + "|"]
        for r in sorted(speed, key=lambda r: (r["extractor"], -r["img_per_s"])):
            lines.append(
                f"| {r['extractor']} | {r['precision']} | {r['channels_last']} | {r['batch_size']} | {r['threads']} "
                f"| {r['img_per_s']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.feature_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=f"mnist:{DEFAULT_DATA}", help="real data spec (default: MNIST in ../shared)")
    p.add_argument("--image-size", dest="image_size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("-n", type=int, default=1000, help="images per real set in the agreement check")
    p.add_argument("--extractors", default="inception,domain")
    p.add_argument("--batch-sizes", dest="batch_sizes", default="16,64")
    p.add_argument("--threads", default=",".join(str(t) for t in sorted({1, torch.get_num_threads()})))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timing-images", dest="timing_images", type=int, default=128, help="images per timed round")
    p.add_argument("--no-timing", dest="no_timing", action="store_true", help="agreement only")
    p.add_argument("--no-agreement", dest="no_agreement", action="store_true", help="timing only")
    p.add_argument(
        "--agreement-settings",
        dest="agreement_settings",
        default=",".join(SETTINGS),
        help="settings of the agreement check, fp32 first (cl: channels_last)",
    )
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    _, _, arg = args.data.partition(":")
    if arg and not Path(arg).exists():
        _say(f"data {args.data!r} is absent on this machine (see ../shared/data/README.md); nothing to measure")
        return 2
    a, b = _real_sets(args.data, args.n, args.image_size, args.channels)
    result: dict[str, Any] = {"data": args.data, "n": args.n, "agreement": [], "timing": [], "chosen": {}}
    for name in args.extractors.split(","):
        ex = Extractor(name, args.data, args.image_size, args.channels)
        settings = tuple(args.agreement_settings.split(","))
        if settings[0] != "fp32":
            raise SystemExit("--agreement-settings must start with fp32, the reference")
        agree = [] if args.no_agreement else agreement(ex, a, b, 64, settings)
        speed = (
            []
            if args.no_timing
            else timing(
                ex,
                b[: args.timing_images],
                [int(x) for x in args.batch_sizes.split(",")],
                [int(x) for x in args.threads.split(",")],
                args.rounds,
            )
        )
        result["agreement"] += agree
        result["timing"] += speed
        if agree and speed:
            result["chosen"][name] = choose(agree, speed)
    print(markdown(result["agreement"], result["timing"], args.n))
    for name, row in result["chosen"].items():
        print(f"fastest within 1 % of fp32 ({name}): {row}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
