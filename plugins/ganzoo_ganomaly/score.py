"""``ganzoo score``: anomaly scores and verdicts of image files, or AUROC/AUPRC of a model on a dataset."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

import torch

from ganzoo.cliargs import device_arg, finite_float, output_dir, output_file, positive_int
from ganzoo.data.files import image_inputs
from ganzoo.errors import TRUST_HELP, ConfigError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="run directory or exported .safetensors file of an anomaly model")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders (searched recursively)")
    parser.add_argument("--csv", type=output_file, metavar="FILE", help="also write path,score,verdict rows to FILE")
    parser.add_argument(
        "--threshold", type=finite_float, help="anomalous when score >= T (default: the model's calibrated)"
    )
    parser.add_argument(
        "--pictures", type=output_dir, metavar="DIR", help="write input | reconstruction | difference per image"
    )
    parser.add_argument("--data", metavar="SPEC", help="evaluate on a labelled dataset, e.g. mnist-anomaly:DIR")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"], help="split of --data to score")
    parser.add_argument(
        "--max-items",
        dest="max_items",
        type=positive_int,
        help="score at most this many items of --data (default: all)",
    )
    parser.add_argument(
        "--calibrate", action="store_true", help="first calibrate on the val split of --data and save the model"
    )
    parser.add_argument(
        "--save", type=output_file, metavar="FILE", help="where --calibrate saves (default: MODEL itself)"
    )
    parser.add_argument(
        "--device", type=device_arg, default="cpu", help="where the model runs: auto, cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--batch-size", dest="batch_size", type=positive_int, default=256, help="images per forward pass"
    )
    parser.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)


def _picture(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Input, reconstruction and |difference| (black = equal, white = off by the full range) side by side, enlarged
    to at least 96 pixels so small images can be seen."""
    diff = (x - recon).abs().clamp(0, 1) * 2 - 1
    row = torch.cat([x, recon, diff], dim=2)
    factor = max(1, -(-96 // x.shape[1]))
    return row.repeat_interleave(factor, 1).repeat_interleave(factor, 2)


def _score_files(model: Any, args: argparse.Namespace, threshold: float | None) -> None:
    from ganzoo.data.files import load_image
    from ganzoo.utils.files import atomic_write_bytes, refuse_overwriting_inputs
    from ganzoo.utils.images import save_image

    files = image_inputs(args.inputs)
    pictures = [Path(args.pictures) / f"{i:04d}_{f.stem}.png" for i, f in enumerate(files)] if args.pictures else []
    refuse_overwriting_inputs(files, pictures, "--pictures")
    refuse_overwriting_inputs(files, [args.csv] if args.csv else [], "--csv")
    c = model.config
    images = torch.stack([load_image(f, c.channels, c.image_size) for f in files])
    scores = model.score(images, args.batch_size)
    verdicts = [
        "-" if threshold is None else ("anomalous" if float(s) >= threshold else "normal") for s in scores.tolist()
    ]
    rows = [(str(f), float(s), v) for f, s, v in zip(files, scores.tolist(), verdicts)]
    width = max(len(p) for p, _, _ in rows)
    for p, s, v in rows:
        print(f"{p:<{width}}  {s:10.5f}  {v}")
    if threshold is None:
        why = (model.calibration or {}).get("warning") or "model not calibrated"
        print(f"ganzoo: no threshold ({why}); pass --threshold for verdicts", file=sys.stderr)
    if args.csv:
        buf = io.StringIO(newline="")
        w = csv.writer(buf)
        w.writerow(["path", "score", "verdict"])
        w.writerows([(p, f"{s:.6g}", v) for p, s, v in rows])
        atomic_write_bytes(args.csv, buf.getvalue().encode())
    if args.pictures:
        out = Path(args.pictures)
        x = images.float().div(127.5).sub(1.0)
        r = model.reconstruct(images, args.batch_size)
        for i, dest in enumerate(pictures):
            save_image(_picture(x[i], r["recon"][i]), dest)
        print(f"wrote {len(files)} pictures (input | reconstruction | difference) to {out}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ganzoo.api import load, save_model
    from ganzoo.tasks import AnomalyScorer, require
    from ganzoo.train.data import build_dataset

    from .variant import GANomaly, calibrate, evaluate

    if not args.inputs and not args.data:
        raise ConfigError("nothing to score: give INPUT files/folders, or --data SPEC to evaluate on a dataset")
    if args.calibrate and not args.data:
        raise ConfigError("--calibrate needs --data SPEC (it calibrates on that dataset's val split)")
    model = require(
        load(args.model, device=args.device, trust_unverified=args.trust_unverified),
        AnomalyScorer,
        purpose="`ganzoo score`",
    )
    if not isinstance(model, GANomaly):
        # Calibration, verdicts and pictures use GANomaly's reconstructions; `ganzoo eval` scores any AnomalyScorer.
        raise ConfigError(f"`ganzoo score` needs a ganomaly model, {args.model} holds {model.name}")
    if args.calibrate:
        record = calibrate(model, build_dataset(args.data, model, split="val"))
        target = Path(args.save) if args.save else Path(args.model)
        if target.is_dir():
            target = target / "model.safetensors"
        save_model(model, target)
        shown = {k: round(v, 5) if isinstance(v, float) else v for k, v in record.items() if k != "warning"}
        print(f"calibrated on the val split of {args.data}: {shown}; saved to {target}")
        if record.get("warning"):
            print(f"ganzoo: warning: {record['warning']}", file=sys.stderr)
    threshold = args.threshold if args.threshold is not None else model.threshold
    if args.inputs:
        _score_files(model, args, threshold)
    if args.data:
        ds = build_dataset(args.data, model, split=args.split)
        res = evaluate(model, ds, args.max_items, threshold)
        print(f"{args.data} [{args.split}]: {res['n']} items, {res['n_anomalous']} anomalous")
        for key in ("auroc", "auprc", "f1", "accuracy", "threshold"):
            if key in res:
                print(f"  {key:<9} {res[key]:.4f}")
    return 0
