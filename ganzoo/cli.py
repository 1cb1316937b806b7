"""The ``ganzoo`` command line. User mistakes print one line and exit with status 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

from .errors import TRUST_HELP, GanzooError


class UsageError(GanzooError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other user mistake
        raise UsageError(f"{self.prog}: {message}")


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# ---- list / info / plugins -------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from . import registry

    names = registry.list_variants(args.pattern, task=args.task)
    specs = registry.variants()
    rows = []
    for n in names:
        spec = specs[n.split(".")[0]]
        rows.append({"name": n, "task": str(spec.task), "plugin": spec.plugin, "description": spec.description})
    if args.json:
        _print_json(rows)
    elif not rows:
        print("no variants match" + (f" {args.pattern!r}" if args.pattern else ""))
    else:
        w = max(len(r["name"]) for r in rows)
        for r in rows:
            print(f"{r['name']:<{w}}  {r['task']:<16}  {r['description']}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import dataclasses
    import typing

    from . import registry
    from .config import field_help

    spec, tag, preset = registry.resolve(args.name)
    cfg = spec.cls.make_config(preset)
    hints = typing.get_type_hints(spec.cls.Config)
    helps = field_help(spec.cls.Config)
    fields = [
        {
            "name": f.name,
            "type": str(hints[f.name]).replace("typing.", "").replace("<class '", "").replace("'>", ""),
            "default": getattr(cfg, f.name),
            "help": helps[f.name],
        }
        for f in dataclasses.fields(cfg)
    ]
    import torch

    from .train import TrainConfig

    try:
        with torch.device("meta"):  # the stage plan needs the variant, not memory for its weights
            probe = spec.cls(cfg)
    except Exception:
        probe = spec.cls(cfg)
    steps = probe.default_steps or TrainConfig().steps
    stages = _stage_rows(probe, steps)
    info = {
        "name": args.name,
        "family": spec.name,
        "task": str(spec.task),
        "plugin": spec.plugin,
        "description": spec.description,
        "tags": sorted(f"{spec.name}.{t}" for t in spec.tags),
        "preset": preset,
        "stages": stages,
        "config": fields,
    }
    if args.json:
        _print_json(info)
        return 0
    print(f"{args.name}: {spec.description}")
    print(f"  task: {spec.task}    plugin: {spec.plugin}")
    if info["tags"]:
        print(f"  tags: {', '.join(info['tags'])}")
    if preset:
        print(f"  preset: {preset}")
    print(f"  stages (at --steps {steps}; --steps is the total): {_stage_text(stages)}")
    print("  config (--set key=value):")
    w = max(len(f["name"]) for f in fields)
    for f in fields:
        print(f"    {f['name']:<{w}} = {f['default']!r:<12}  {f['help']}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .api import list_plugins

    plugins = list_plugins()
    if args.json:
        _print_json(plugins)
        return 0
    for p in plugins:
        reg = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(p["registered"].items()) if v) or "nothing"
        # The distribution is what `ganzoo uninstall` and pip act on; several plugins may share one.
        dist = " ".join(x for x in (p["distribution"], p["version"]) if x) or "registered from code"
        print(f"{p['name']} ({dist}; module {p['module']}): {reg}")
        if p["error"]:
            print(f"  ERROR: {p['error']}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from . import registry

    rows = [
        {"name": e.name, "tasks": list(e.tasks), "plugin": e.plugin, "help": e.help}
        for e in registry.datasets().values()
    ]
    rows.sort(key=lambda r: r["name"])
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['name']:<16} {','.join(r['tasks']):<24} {r['help']}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .data import download as dl

    if args.action == "list":
        from . import registry

        for e in sorted(registry.downloads().values(), key=lambda e: e.name):
            print(f"{e.name:<24} {e.extra['reader']:<10} {e.obj}    ({e.plugin}: {e.help})")
        return 0
    if not args.name:
        raise UsageError("ganzoo data download: name the dataset (see `ganzoo data list`)")
    folder = dl.download(args.name, args.root, args.base_url, args.sha256)
    print(f"{args.name} is in {folder}; train on it with --data {dl.spec_for(args.name, folder)}")
    return 0


# ---- train -----------------------------------------------------------------------------------------------------------


def _stage_rows(variant: Any, total: int) -> list[dict[str, Any]]:
    """The variant's stages with the steps each gets in a run of ``total`` steps and where that number comes from;
    a plan that leaves a stage empty is shown with its error instead of steps."""
    from .errors import ConfigError

    raw = list(variant.stages())
    try:
        steps: list[int | None] = [st.steps for st in variant.stage_plan(total)]
        error = None
    except ConfigError as e:
        steps, error = [None] * len(raw), str(e)
    rows = []
    for i, (st, n) in enumerate(zip(raw, steps)):
        if i == len(raw) - 1:
            how = "the rest" if len(raw) > 1 else "all steps"
        elif st.steps is not None:
            how = f"set: {st.setting}={st.steps}" if st.setting else "fixed"
        else:
            how = f"{st.fraction:.3g} of --steps" + (f", or set {st.setting}" if st.setting else "")
        row = {"name": st.name, "steps": n, "explicit": st.steps is not None, "fraction": st.fraction}
        rows.append({**row, "setting": st.setting, "from": how})
    if error:
        rows[-1]["error"] = error
    return rows


def _stage_text(rows: list[dict[str, Any]]) -> str:
    """``"pretrain 833 (0.833 of --steps, or set pretrain_steps), gan 167 (the rest)"``."""
    if rows and rows[-1].get("error"):
        return rows[-1]["error"]
    return ", ".join(f"{r['name']} {r['steps']} ({r['from']})" for r in rows)


def _train_config(args: argparse.Namespace, yaml_train: dict[str, Any]) -> Any:
    from .config import apply_overrides
    from .train import TrainConfig

    over: dict[str, Any] = dict(yaml_train)
    keys = ("steps", "batch_size", "device", "precision", "seed", "log_every", "sample_every", "ckpt_every")
    for key in (*keys, "eval_every", "eval_n"):
        val = getattr(args, key, None)
        if val is not None:
            over[key] = val
    if args.compile:
        over["compile"] = True
    if args.no_progress:
        over["progress"] = False
    cfg = apply_overrides(TrainConfig(), over)
    cfg.validate()
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from . import registry
    from .api import create
    from .config import load_yaml, parse_assignments
    from .train import Trainer
    from .train import checkpoint as ckpt

    yaml_cfg = load_yaml(args.config) if args.config else {}
    unknown = set(yaml_cfg) - {"model", "train", "data"}
    if unknown:
        raise UsageError(f"config file keys {sorted(unknown)} are not valid; use model:, train: and data:")
    registry.resolve(args.name)  # a clear error for an unknown name before anything else
    overrides = {**(yaml_cfg.get("model") or {}), **parse_assignments(args.set)}
    tcfg = _train_config(args, yaml_cfg.get("train") or {})
    import torch

    torch.manual_seed(tcfg.seed)  # the initial weights too follow --seed
    variant = create(args.name, **overrides)
    if variant.default_steps and args.steps is None and "steps" not in (yaml_cfg.get("train") or {}):
        tcfg.steps = variant.default_steps  # the recipe's length (e.g. vanilla.ring8's), unless one is given
    variant.stage_plan(tcfg.steps)  # a stage left with 0 steps is refused here, before anything is written
    stages = _stage_rows(variant, tcfg.steps)
    out = Path(args.out or f"runs/{args.name}")
    if not args.resume and ckpt.list_checkpoints(out / "checkpoints"):
        raise UsageError(f"{out} already holds a run; continue it with --resume, or choose another --out")
    data = args.data or yaml_cfg.get("data")
    from .train import distributed

    if args.nproc is not None and args.nproc < 1:
        raise UsageError(f"--nproc must be >= 1, got {args.nproc}")
    if (args.nproc or 1) > 1 and distributed.env_world_size() == 1:
        # Checked above in this process (one-line errors); the workers run the same command under torchrun.
        return distributed.relaunch(distributed.strip_nproc(getattr(args, "argv", sys.argv[1:])), args.nproc)
    distributed.quiet_other_ranks()
    trainer = Trainer(
        variant,
        tcfg,
        data=data,
        out=out,
        resume=args.resume,
        variant_name=args.name,
        trust_unverified=args.trust_unverified,
    )
    print(
        f"training {args.name} on {trainer.data_spec} | device {trainer.device} | "
        f"precision {str(trainer.dtype).replace('torch.', '')} | batch {trainer.batch_size} | {tcfg.steps} steps"
    )
    if len(stages) > 1:
        print(f"stages: {_stage_text(stages)}")
    result = trainer.fit()
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result["losses"].items() if k.endswith("/loss"))
    print(f"\ndone: {result['step']} steps ({losses})")
    print(f"  samples:    {result['samples']}")
    print(f"  checkpoint: {result['checkpoint']}")
    print(f"  model:      {result['model']}")
    if (Path(result["out"]) / "losses.png").exists():
        print(f"  losses:     {Path(result['out']) / 'losses.png'}")
    print("next:")
    model = result["model"]
    for hint in _next_steps(str(variant.task), model):
        print(f"  {hint}")
    print(f"  ganzoo eval {model}    # the task's metrics, with provenance")
    # Stages sized by fraction keep their boundaries only when pinned: a resume that would move one is refused.
    pins = "".join(f" --set {r['setting']}={r['steps']}" for r in stages[:-1] if r["setting"] and not r["explicit"])
    print(f"  ganzoo train {args.name} --out {out} --resume --steps {tcfg.steps * 2}{pins}    # keep training")
    return 0


def _next_steps(task: str, model: str) -> list[str]:
    """What to do with a model of ``task`` just trained: the core's commands for the task, then the commands plugins
    registered for it."""
    from . import registry
    from .variant import Task

    hints = []
    if task == Task.UNCONDITIONAL:
        hints.append(f"ganzoo sample {model} -n 64 -o samples.png    # new samples from the trained model")
    for e in registry.commands_for(task):
        hints.append(f"ganzoo {e.name} {model} ...    # {e.help}")
    return hints


# ---- sample / export -------------------------------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    from .api import load
    from .tasks import NoiseGenerator, require
    from .utils.images import save_grid

    model = require(
        load(args.model, device=args.device, trust_unverified=args.trust_unverified),
        NoiseGenerator,
        purpose="`ganzoo sample`",
    )
    imgs = model.generate(n=args.n, seed=args.seed)
    if imgs.dim() == 2:  # 2D points: a scatter picture
        from .utils.images import scatter_image

        imgs = scatter_image(imgs, float(imgs.abs().max()) * 1.25)[None]
    path = save_grid(imgs, args.output)
    print(f"wrote {args.n} samples to {path}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .utils.plots import plot_losses

    run = Path(args.run)
    log = run / "log.jsonl" if run.is_dir() else run
    if not log.is_file():
        raise UsageError(f"no training log at {log}; give a run folder (holding log.jsonl) or a log.jsonl file")
    print(f"wrote {plot_losses(log, args.output)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .api import load, save_model

    model = load(args.run, ema=not args.no_ema, trust_unverified=args.trust_unverified)
    path = save_model(model, args.output)
    print(f"exported {model.registered_name} to {path}")
    return 0


def cmd_import_weights(args: argparse.Namespace) -> int:
    from .api import import_weights
    from .config import parse_assignments

    path = import_weights(args.variant, args.file, args.output, **parse_assignments(args.set))
    print(f"imported {args.file} as {args.variant} -> {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench, registry

    names = args.names or None
    for n in names or []:
        registry.resolve(n)
    path, md = bench.run(names, device=args.device, quick=args.quick, out=args.out, progress=not args.no_progress)
    print(md)
    print(f"\nwrote {path} and {path.with_suffix('.md')}")
    return 0


# ---- install / uninstall ---------------------------------------------------------------------------------------------


def _pip(*pip_args: str) -> int:
    return subprocess.call([sys.executable, "-m", "pip", *pip_args])


def _fresh_plugins() -> list[dict[str, Any]]:
    """``ganzoo plugins --json`` in a new interpreter. An install (an editable one above all: a ``.pth`` file read
    at start-up) is only visible to a process started after it, so that is where its registrations are read. The
    new process also gets this one's import path, which tests and notebooks may have extended."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*filter(None, env.get("PYTHONPATH", "").split(os.pathsep)), *sys.path])
    r = subprocess.run(
        [sys.executable, "-m", "ganzoo", "plugins", "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    if r.returncode:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"installed, but a new ganzoo process could not list its plugins: {last}")
    return json.loads(r.stdout)


def _registrations(plugins: list[dict[str, Any]]) -> dict[str, dict[str, set[str]]]:
    return {p["name"]: {k: set(v) for k, v in p["registered"].items()} for p in plugins}


def cmd_install(args: argparse.Namespace) -> int:
    from .api import list_plugins
    from .plugins import reset

    reset()
    before = _registrations(list_plugins())
    rc = _pip("install", *(["--upgrade"] if args.upgrade else []), *(["-e"] if args.editable else []), *args.packages)
    if rc:
        raise UsageError(f"pip install {' '.join(args.packages)} failed with exit code {rc}")
    reset()
    after = _fresh_plugins()
    reported = False
    for p in after:
        old = before.get(p["name"], {})
        new = {k: sorted(set(v) - old.get(k, set())) for k, v in p["registered"].items()}
        new = {k: v for k, v in new.items() if v}
        if new:
            dist = " ".join(x for x in (p["distribution"], p["version"]) if x)
            what = "; ".join(f"{k} {', '.join(v)}" for k, v in sorted(new.items()))
            print(f"plugin {p['name']} ({dist}): {what}")
            reported = True
        elif p["error"] and p["name"] not in before:
            print(f"plugin {p['name']} is installed but disabled: {p['error'].splitlines()[0]}")
            reported = True
    if not reported:
        print("installed; it registered no new ganzoo names")
    return 0


def _canonical(dist: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", dist).lower()


def _distributions_to_uninstall(names: list[str]) -> list[str]:
    """The distributions behind the names ``ganzoo plugins`` shows (plugin or distribution names)."""
    from .api import list_plugins
    from .errors import UnknownNameError
    from .plugins import reset

    reset()
    plugins = [p for p in list_plugins() if p["distribution"]]
    by_plugin = {p["name"]: p["distribution"] for p in plugins}
    by_dist = {_canonical(p["distribution"]): p["distribution"] for p in plugins}
    dists: list[str] = []
    for name in names:
        dist = by_plugin.get(name) or by_dist.get(_canonical(name))
        if dist is None:
            choices = [n for n in [*by_plugin, *by_dist.values()] if _canonical(by_plugin.get(n, n)) != "ganzoo"]
            raise UnknownNameError("installed plugin", name, choices)
        if _canonical(dist) == "ganzoo":
            raise UsageError(
                f"{name!r} is part of ganzoo itself, not a plugin package; leave it out with "
                f"GANZOO_PLUGINS (an allowlist) instead"
            )
        if dist not in dists:
            dists.append(dist)
    return dists


def cmd_uninstall(args: argparse.Namespace) -> int:
    import importlib
    import importlib.metadata

    dists = _distributions_to_uninstall(args.packages)
    rc = _pip("uninstall", *(["-y"] if args.yes else []), *dists)
    if rc:
        raise UsageError(f"pip uninstall {' '.join(dists)} failed with exit code {rc}")
    importlib.invalidate_caches()
    left = []
    for dist in dists:
        try:
            importlib.metadata.distribution(dist)
            left.append(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    if left:  # pip says "Skipping" and exits 0 when it removes nothing (another environment, a declined prompt)
        raise UsageError(f"nothing was uninstalled: {', '.join(left)} is still installed in {sys.prefix}")
    from .plugins import reset

    reset()
    print(f"uninstalled {', '.join(dists)}")
    return 0


# ---- the parser ------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import registry

    p = _Parser(prog="ganzoo", description="A plugin-based model zoo of GAN variants.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"ganzoo {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("list", help="list variants (name and name.tag)")
    s.add_argument("pattern", nargs="?", help="shell pattern, e.g. '*gan*'")
    s.add_argument("--task", help="only variants of this task")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="task, plugin, tags and config fields of a variant")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("plugins", help="installed plugins and what each registered")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_plugins)

    s = sub.add_parser("datasets", help="registered datasets and the tasks they serve")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_datasets)

    s = sub.add_parser("data", help="list or download the public datasets that plugins register")
    s.add_argument("action", choices=["list", "download"])
    s.add_argument("name", nargs="?")
    s.add_argument("--root", help="where to keep archives and extracted data (default $GANZOO_DATA or the cache)")
    s.add_argument("--base-url", help="download from this mirror instead of the authors' host")
    s.add_argument("--sha256", help="expected sha256 of the archive")
    s.set_defaults(func=cmd_data)

    s = sub.add_parser("train", help="train a variant")
    s.add_argument("name", help="variant name, family or family.tag (see `ganzoo list`)")
    s.add_argument("--data", help="data spec NAME[:ARG], e.g. shapes, mnist:/path/to/mnist, folder:/path")
    s.add_argument("--steps", type=int, help="total training steps (default: the recipe's length, else 1000)")
    s.add_argument("--batch-size", dest="batch_size", type=int)
    s.add_argument("--out", help="run directory (default runs/NAME)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    s.add_argument("--config", metavar="FILE.yaml", help="YAML with model:, train: and data: sections")
    s.add_argument("--device")
    s.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    s.add_argument("--compile", action="store_true")
    s.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    s.add_argument(
        "--trust-unverified",
        action="store_true",
        help="with --resume: accept checkpoints that carry no ganzoo digest (from an older ganzoo), with a warning",
    )
    s.add_argument("--seed", type=int)
    s.add_argument("--log-every", dest="log_every", type=int)
    s.add_argument("--sample-every", dest="sample_every", type=int)
    s.add_argument("--ckpt-every", dest="ckpt_every", type=int)
    s.add_argument(
        "--eval-every",
        dest="eval_every",
        type=int,
        help="record the task's headline metric (FID, FD-dom, modes, PSNR ...) every N steps and at the end",
    )
    s.add_argument("--eval-n", dest="eval_n", type=int, help="samples per training-time evaluation (default 500)")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--nproc", type=int, help="data-parallel processes on this machine (relaunches through torchrun)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained noise model into a PNG grid")
    s.add_argument("model", help="run directory or exported .safetensors file")
    s.add_argument("-n", type=int, default=64)
    s.add_argument("-o", "--output", default="samples.png")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("plot", help="draw a run's loss curves (its log.jsonl) into a PNG; works while it trains")
    s.add_argument("run", help="run folder or log.jsonl file")
    s.add_argument("-o", "--output", default=None, help="PNG path (default: RUN/losses.png)")
    s.set_defaults(func=cmd_plot)

    s = sub.add_parser("export", help="export a run as one self-describing .safetensors model file")
    s.add_argument("run")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")
    s.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser(
        "import-weights",
        help="turn a plain safetensors state_dict from elsewhere into a verified ganzoo model file",
    )
    s.add_argument("variant", help="the variant (name[.tag]) whose architecture the weights follow")
    s.add_argument("file", help="the .safetensors file (the variant's state_dict keys, optionally prefixed model/)")
    s.add_argument("-o", "--output", required=True, help="the ganzoo model file to write (.safetensors)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override of the architecture")
    s.set_defaults(func=cmd_import_weights)

    s = sub.add_parser(
        "bench",
        help="time training steps and inference over precision/compile/memory format "
        "(python -m benchmarks.speed adds the plain-PyTorch baselines)",
    )
    s.add_argument("names", nargs="*", help="variants (default: all)")
    s.add_argument("--device", default="cpu")
    s.add_argument("--quick", action="store_true", help="small sizes, fewer combinations and rounds")
    s.add_argument("--out", default="benchmarks/results", help="folder for <machine>.json and .md")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("install", help="pip-install plugin packages into ganzoo's environment")
    s.add_argument("packages", nargs="+")
    s.add_argument("-U", "--upgrade", action="store_true")
    s.add_argument("-e", "--editable", action="store_true")
    s.set_defaults(func=cmd_install)

    s = sub.add_parser("uninstall", help="pip-uninstall plugins by the names `ganzoo plugins` shows")
    s.add_argument("packages", nargs="+", metavar="NAME", help="plugin or distribution name")
    s.add_argument("-y", "--yes", action="store_true")
    s.set_defaults(func=cmd_uninstall)

    for entry in registry.commands().values():
        # A plugin command whose configure() raises is left out with a warning; every other command keeps working.
        try:
            entry.extra["configure"](argparse.ArgumentParser(prog=f"ganzoo {entry.name}", add_help=False))
        except Exception as e:  # noqa: BLE001 - any error in a plugin's code
            warnings.warn(
                f"command {entry.name!r} of plugin {entry.plugin!r} is left out: its configure() raised "
                f"{type(e).__name__}: {e}",
                stacklevel=2,
            )
            continue
        s = sub.add_parser(entry.name, help=entry.help)
        entry.extra["configure"](s)
        s.set_defaults(func=entry.obj)
    return p


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    print(f"ganzoo: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with warnings.catch_warnings():
        # A warning (a disabled plugin ...) is one line for a person, not a file name and a line of ganzoo's source.
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: list[str]) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(argv)  # `train --nproc N` relaunches itself with the same arguments
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except GanzooError as e:
        msg = str(e)
        print(msg if msg.startswith("ganzoo") else f"ganzoo: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
