"""Run the quality experiments of PROTOCOLS.md at a budget and write their tables under docs/benchmarks/.

    python -m benchmarks.quality [EXPERIMENT ...] --budget small --seeds 2 --out docs/benchmarks

Experiments: mode2d, stacked_mnist, stacked_recipe, sr, anomaly, pix2pix, cyclegan, attngan, recipes (default: all but
recipes, which trains every recipe by name for hours).
``recipes`` takes ``--only NAME`` (repeatable: pix2pix, cyclegan, mnist, attngan, srgan, anomaly) and
``--runs-from DIR`` (score runs made by hand instead of training; the layout is in ``benchmarks/quality/recipes.py``;
with ``--times-only`` the reports already written keep their scores and take DIR's wall times anew).
``small`` fits a 2-core CPU in minutes per experiment; ``medium`` and ``paper`` are the longer schedules for a GPU.
Experiments whose reference data is absent are skipped with the reason.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from .common import BUDGETS, Skip

EXPERIMENTS = (
    "mode2d",
    "stacked_mnist",
    "stacked_recipe",
    "sr",
    "anomaly",
    "pix2pix",
    "cyclegan",
    "attngan",
    "recipes",
)
# Run only when named: every recipe's whole command over seeds takes hours on a CPU.
DEFAULT_EXPERIMENTS = tuple(e for e in EXPERIMENTS if e != "recipes")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0])
    ap.add_argument("experiments", nargs="*", help=f"which to run: {', '.join(EXPERIMENTS)} (default: all but recipes)")
    ap.add_argument("--budget", choices=BUDGETS, default="small", metavar="{small,medium,paper}")
    ap.add_argument("--seeds", type=int, default=2, help="training seeds per configuration")
    ap.add_argument("--out", default="docs/benchmarks", help="folder for <experiment>.md/.json/.png")
    ap.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: torch's); 1 to run several at once"
    )
    ap.add_argument("--only", action="append", metavar="NAME", help="recipes: run only this recipe (repeatable)")
    ap.add_argument("--runs-from", dest="runs_from", metavar="DIR", help="recipes: score the runs in DIR, no training")
    ap.add_argument(
        "--times-only",
        action="store_true",
        help="recipes with --runs-from: keep the scores of the reports in --out, read only DIR's wall times anew",
    )
    args = ap.parse_args(argv)
    unknown = [e for e in args.experiments if e not in EXPERIMENTS]
    if unknown:
        print(f"unknown experiment {unknown[0]!r}; valid: {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print(f"--seeds must be at least 1, got {args.seeds}", file=sys.stderr)
        return 2
    recipe_options = {
        "only": args.only,
        "runs_from": Path(args.runs_from) if args.runs_from else None,
        "times_only": args.times_only,
    }
    if (args.only or args.runs_from or args.times_only) and "recipes" not in args.experiments:
        print("--only, --runs-from and --times-only are options of the recipes experiment", file=sys.stderr)
        return 2
    if args.times_only and not args.runs_from:
        print("--times-only needs --runs-from DIR (the folder whose times.json files to read)", file=sys.stderr)
        return 2
    if args.only:
        from .recipes import RECIPES

        bad = [n for n in args.only if n not in RECIPES]
        if bad:
            print(f"unknown recipe {bad[0]!r}; valid: {', '.join(RECIPES)}", file=sys.stderr)
            return 2
    if args.runs_from and not Path(args.runs_from).is_dir():
        print(f"--runs-from {args.runs_from}: no such folder", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    failed = 0
    for name in args.experiments or DEFAULT_EXPERIMENTS:
        t0 = time.time()
        module = importlib.import_module(f"benchmarks.quality.{name}")
        try:
            extra = recipe_options if name == "recipes" else {}
            path = module.run(args.budget, args.seeds, Path(args.out), **extra)
        except Skip as e:
            print(f"{name}: skipped: {e}")
            continue
        except Exception as e:  # one experiment's failure must not lose the others' results
            failed += 1
            traceback.print_exc()
            print(f"{name}: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        print(f"{name}: {path} ({time.time() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
