"""The speed suite from the command line: ``python -m benchmarks.speed [NAMES...] [--device cuda] [--quick]``.

What ``ganzoo bench`` measures (every variant at its ``bench_sizes`` over precision x channels_last x compile), plus
ganzoo's default step against the plain-PyTorch loops of :mod:`benchmarks.baselines` on the same networks, written to
``<out>/<machine>.json`` and ``.md`` (the JSON's ``baselines`` list, the markdown's ratio table).
"""

from __future__ import annotations

import argparse
import functools
import sys

from ganzoo import bench, registry
from ganzoo.errors import GanzooError

from .baselines import BASELINES, baseline_ratio


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="variants (default: all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="small sizes, fewer combinations and rounds")
    p.add_argument("--out", default="benchmarks/results", help="folder for <machine>.json and .md")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        for n in args.names:
            registry.resolve(n)
        compare = {n: functools.partial(baseline_ratio, n) for n in BASELINES}
        path, md = bench.run(
            args.names or None,
            device=args.device,
            quick=args.quick,
            out=args.out,
            progress=not args.no_progress,
            baselines=compare,
        )
    except GanzooError as e:
        print(f"benchmarks.speed: error: {e}", file=sys.stderr)
        return 2
    print(md)
    print(f"\nwrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
