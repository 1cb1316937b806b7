"""The ``ganzoo`` command line. User mistakes print one line and exit with status 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

from .cliargs import (
    bounded_int,
    device_arg,
    finite_float,
    image_file,
    output_dir,
    output_file,
    positive_int,
    run_yaml,
    seed_int,
)
from .errors import TRUST_HELP, GanzooError


class UsageError(GanzooError):
    pass


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter that appends ``(default: X)`` to an option's help when X says something: not for
    ``None``, ``False``, an empty value or a suppressed default, and not when the help already states its default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            not text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or (isinstance(default, (str, list, tuple, dict)) and not default)
            or "default" in text.lower()
            # A required positional always gets a value from the command line: a default there would never apply.
            or (not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))
        ):
            return action.help
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """The parser of ``ganzoo`` and of every subcommand (plugin commands included): one-line errors, defaults shown."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

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
        family, _, tag = n.partition(".")
        spec = specs[family]
        rows.append({"name": n, "task": str(spec.task), "plugin": spec.plugin, "description": _description(spec, tag)})
    if args.json:
        _print_json(rows)
    elif not rows:
        print("no variants match" + (f" {args.pattern!r}" if args.pattern else ""))
    else:
        w = max(len(r["name"]) for r in rows)
        for r in rows:
            print(f"{r['name']:<{w}}  {r['task']:<16}  {r['description']}")
    return 0


def _description(spec: Any, tag: str) -> str:
    """The one line ``ganzoo list`` shows for a family (its description) or one of its tags (the tag's own; a
    plugin that gives none falls back to the family's, marked as such)."""
    if not tag:
        return spec.description
    own = spec.cls.tag_descriptions.get(tag)
    return own if own else f"{spec.description} (tag {tag!r} has no description)"


def _model_source(name: str) -> Path | None:
    """``name`` as a model file or run folder for ``ganzoo info``, or ``None`` when it is a variant name."""
    p = Path(name)
    if p.suffix.lower() in (".safetensors", ".md"):
        if not p.exists():
            raise UsageError(f"ganzoo info: {name!r} does not exist; give a model file, a run folder or a variant name")
        return p
    markers = ("run.json", "model.safetensors", "checkpoints")
    return p if p.is_dir() and any((p / m).exists() for m in markers) else None


def _info_model(args: argparse.Namespace, path: Path) -> int:
    from .cards import format_facts, read_card_facts

    facts = read_card_facts(path, trust_unverified=args.trust_unverified)
    if args.json:
        _print_json(facts)
    else:
        print(format_facts(facts))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import dataclasses
    import typing

    from . import registry
    from .config import field_help

    source = _model_source(args.name)
    if source is not None:
        return _info_model(args, source)
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
        "tag_descriptions": {f"{spec.name}.{t}": _description(spec, t) for t in sorted(spec.tags)},
        "preset": preset,
        "stages": stages,
        "config": fields,
    }
    if args.json:
        _print_json(info)
        return 0
    print(f"{args.name}: {spec.description}")
    if tag:
        print(f"  this tag: {_description(spec, tag)}")
    print(f"  task: {spec.task}    plugin: {spec.plugin}")
    if info["tags"]:
        print("  tags:")
        tw = max(len(t) for t in info["tags"])
        for t, d in info["tag_descriptions"].items():
            print(f"    {t:<{tw}}  {d}")
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
    if args.action == "list":
        from . import registry

        for e in sorted(registry.downloads().values(), key=lambda e: e.name):
            print(f"{e.name:<24} {e.extra['reader']:<10} {e.obj}    ({e.plugin}: {e.help})")
        return 0
    if args.action == "download":
        from .data import download as dl

        folder = dl.download(args.name, args.root, args.base_url, args.sha256)
        print(f"{args.name} is in {folder}; train on it with --data {dl.spec_for(args.name, folder)}")
        return 0
    from .config import parse_assignments
    from .data import export

    options = {k: export.parse_option_value(v) for k, v in parse_assignments(args.set).items()}
    if args.action == "export":
        export.check_target(args.folder, args.force)  # before any data is read
    dataset, task = export.open_dataset(args.spec, args.split, args.size, args.channels, args.seed, options)
    items = export.take(dataset, args.n, args.spread)
    if args.action == "show":
        title = f"{args.spec}, {args.split} split"
        pic = export.preview(items, task, title, getattr(dataset, "class_names", None))
        path = pic.grid.save(args.output)
        print(f"wrote {len(items)} {task} items of {args.spec} ({args.split} split) to {path}")
        print(pic.legend)
        for note in pic.notes:
            print(f"  {note}")
        return 0
    done = export.export_items(items, task, args.folder, args.force, getattr(dataset, "class_names", None))
    print(f"exported {len(items)} {task} items of {args.spec} ({args.split} split) to {done.folder}: {done.layout}")
    hints = export.next_commands(done, task, items)
    if hints:
        print("next (MODEL: a trained model of this task):")
        for hint in hints:
            print(f"  {hint}")
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
    for key in (*keys, "eval_every", "eval_n", "max_minutes"):
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


# Training settings a resume takes from the run unless given again; the display switches are this invocation's.
_NOT_RESTORED = ("progress", "tensorboard")


def _recorded_run(out: Path, name: str) -> dict[str, Any]:
    """The settings the run in ``out`` was trained with, from its newest checkpoint whose header reads (the model
    config, the training config with the batch size that ran, the data spec; older checkpoints without a data
    spec: ``run.json``'s). Empty when there is no such run, or it is of another family (resume then says why).
    The header is not verified here: the trainer verifies the checkpoint before it uses any of it."""
    import dataclasses

    from .errors import CheckpointError
    from .train import TrainConfig
    from .train import checkpoint as ckpt

    for _, path in ckpt.list_checkpoints(out / "checkpoints"):
        try:
            meta = ckpt.read_metadata(path)
        except CheckpointError:
            continue
        state, config, train = meta.get("ganzoo.state"), meta.get("ganzoo.config"), meta.get("ganzoo.train")
        if not (isinstance(state, dict) and isinstance(config, dict) and isinstance(train, dict)):
            continue
        if str(meta.get("ganzoo.variant", "")).split(".")[0] != name.split(".")[0]:
            return {}
        fields = {f.name for f in dataclasses.fields(TrainConfig)} - set(_NOT_RESTORED)
        restored = {k: v for k, v in train.items() if k in fields and v is not None}
        if isinstance(state.get("batch_size"), int):
            restored["batch_size"] = state["batch_size"]
        data = meta.get("ganzoo.data")
        if not isinstance(data, str):
            try:
                run = json.loads((out / "run.json").read_text(encoding="utf-8"))
                data = run.get("data") if isinstance(run, dict) and isinstance(run.get("data"), str) else None
            except (OSError, ValueError):
                data = None
        return {"config": config, "train": restored, "data": data}
    return {}


def _resume_command(args: argparse.Namespace, out: Path) -> str:
    """The exact command that continues this run (the run's settings come back from its checkpoint)."""
    import shlex

    nproc = f" --nproc {args.nproc}" if (args.nproc or 1) > 1 else ""
    return f"ganzoo train {shlex.quote(args.name)} --out {shlex.quote(str(out))} --resume{nproc}"


def cmd_train(args: argparse.Namespace) -> int:
    from . import registry
    from .api import create
    from .config import load_yaml, parse_assignments
    from .train import Trainer, TrainingDiverged
    from .train import checkpoint as ckpt

    yaml_cfg = load_yaml(args.config) if args.config else {}
    unknown = set(yaml_cfg) - {"model", "train", "data"}
    if unknown:
        raise UsageError(f"config file keys {sorted(unknown)} are not valid; use model:, train: and data:")
    registry.resolve(args.name)  # a clear error for an unknown name before anything else
    out = Path(args.out or f"runs/{args.name}")
    # --resume continues the run as it was trained: its data, batch size, steps, seed and model settings, each
    # unless given again (precedence: the run's < YAML < options).
    recorded = _recorded_run(out, args.name) if args.resume else {}
    yaml_train = yaml_cfg.get("train") or {}
    overrides = {**recorded.get("config", {}), **(yaml_cfg.get("model") or {}), **parse_assignments(args.set)}
    tcfg = _train_config(args, {**recorded.get("train", {}), **yaml_train})
    import torch

    torch.manual_seed(tcfg.seed)  # the initial weights too follow --seed
    variant = create(args.name, **overrides)
    given_steps = args.steps is not None or "steps" in yaml_train or "steps" in recorded.get("train", {})
    if variant.default_steps and not given_steps:
        tcfg.steps = variant.default_steps  # the recipe's length (e.g. vanilla.ring8's), unless one is given
    variant.stage_plan(tcfg.steps)  # a stage left with 0 steps is refused here, before anything is written
    stages = _stage_rows(variant, tcfg.steps)
    if not args.resume and ckpt.list_checkpoints(out / "checkpoints"):
        raise UsageError(f"{out} already holds a run; continue it with --resume, or choose another --out")
    data = args.data or yaml_cfg.get("data") or recorded.get("data")
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
        resume_command=_resume_command(args, out),
    )
    if recorded:
        print(f"resuming the run in {out} with its settings (give an option again to change one)")
    print(
        f"training {args.name} on {trainer.data_spec} | device {trainer.device} | "
        f"precision {str(trainer.dtype).replace('torch.', '')} | batch {trainer.batch_size} | {tcfg.steps} steps"
    )
    if len(stages) > 1:
        print(f"stages: {_stage_text(stages)}")
    result = trainer.fit()
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result["losses"].items() if k.endswith("/loss"))
    print(f"\ndone: {result['step']} steps ({losses})")
    # Only files that exist are named: a checkpoint or model refused as non-finite is not.
    for key in ("samples", "checkpoint", "model"):
        if result[key]:
            kept = (
                " (kept from before: this run's weights are not finite)"
                if key == "model" and result["nonfinite"]
                else ""
            )
            print(f"  {key + ':':<11} {result[key]}{kept}")
    if (Path(result["out"]) / "losses.png").exists():
        print(f"  losses:     {Path(result['out']) / 'losses.png'}")
    if result["nonfinite"]:
        raise TrainingDiverged(f"{result['nonfinite']}; lower the learning rate, try another loss or precision fp32")
    print("next:")
    model = result["model"]
    for hint in _next_steps(str(variant.task), model):
        print(f"  {hint}")
    print(f"  ganzoo eval {model}    # the task's metrics, with provenance")
    # Stages sized by fraction keep their boundaries only when pinned: a resume that would move one is refused.
    pins = "".join(f" --set {r['setting']}={r['steps']}" for r in stages[:-1] if r["setting"] and not r["explicit"])
    if result["step"] < tcfg.steps:  # stopped by --max-minutes: the planned run is not over
        print(f"  {_resume_command(args, out)}    # continue to the planned {tcfg.steps:,} steps")
    else:
        print(f"  {_resume_command(args, out)} --steps {tcfg.steps * 2}{pins}    # keep training")
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


MAX_SAMPLES = 4096
"""The most samples (or latent walks) one ``ganzoo sample`` draws: a 64 x 64 grid, and room for the 2,500 points
of a 2D scatter."""
MAX_FRAMES = 120
"""The most frames of one ``ganzoo sample --interpolate`` walk."""
_DECODE_CHUNK = 256  # latents per generator call: bounds memory, and the chunking is fixed, so results are too


def _sample_classes(values: list[str] | None) -> list[int] | None:
    """``--class 3 --class 0,2`` -> ``[3, 0, 2]`` (first occurrence order, no repeats)."""
    if values is None:
        return None
    out: list[int] = []
    for value in values:
        for part in value.split(","):
            try:
                k = int(part.strip())
            except ValueError:
                raise UsageError(
                    f"ganzoo sample: --class takes class indices (--class 3 or --class 0,2), got {value!r}"
                ) from None
            if k not in out:
                out.append(k)
    return out


def _decode(model: Any, z: Any, labels: Any) -> Any:
    """``model.generate`` over ``z`` in fixed chunks, with class ``labels`` when given."""
    import torch

    parts = []
    for start in range(0, z.shape[0], _DECODE_CHUNK):
        zc = z[start : start + _DECODE_CHUNK]
        if labels is None:
            parts.append(model.generate(z=zc).float().cpu())
        else:
            parts.append(model.generate(z=zc, labels=labels[start : start + _DECODE_CHUNK]).float().cpu())
    return torch.cat(parts)


def cmd_sample(args: argparse.Namespace) -> int:
    import math

    import torch

    from .api import load
    from .tasks import (
        ClassConditionalGenerator,
        LatentGenerator,
        NoiseGenerator,
        check_truncation,
        latent_walk,
        require,
    )
    from .utils.images import ANIMATION_SUFFIXES, SampleGrid, class_rows, save_animation, scatter_image

    walk = args.interpolate
    n = args.n if args.n is not None else (4 if walk else 64)
    what = "latent walks" if walk else "samples"
    if not 1 <= n <= MAX_SAMPLES:
        raise UsageError(f"ganzoo sample: -n ({what}) must be in 1..{MAX_SAMPLES}, got {n}")
    if walk is not None and not 2 <= walk <= MAX_FRAMES:
        raise UsageError(f"ganzoo sample: --interpolate (frames per walk) must be in 2..{MAX_FRAMES}, got {walk}")
    if walk and n * walk > MAX_SAMPLES:
        raise UsageError(
            f"ganzoo sample: {n} walks of {walk} frames are {n * walk} images; at most {MAX_SAMPLES} in all"
        )
    psi = check_truncation(args.truncation) if args.truncation is not None else None
    animated = Path(args.output).suffix.lower() in ANIMATION_SUFFIXES
    if animated and not walk:
        raise UsageError(f"ganzoo sample: {args.output} is an animation; add --interpolate K, or write a .png")
    wanted = _sample_classes(args.classes)
    model = require(
        load(args.model, device=args.device, trust_unverified=args.trust_unverified),
        NoiseGenerator,
        purpose="`ganzoo sample`",
    )
    classes: list[int] | None = None
    if wanted is not None:
        k = require(model, ClassConditionalGenerator, purpose="`ganzoo sample --class`").num_classes
        bad = [c for c in wanted if not 0 <= c < k]
        if bad:
            name = getattr(model, "registered_name", None) or model.name
            raise UsageError(f"ganzoo sample: class {bad[0]} is out of range; {name} has classes 0..{k - 1}")
        if not walk and n < len(wanted):
            raise UsageError(f"ganzoo sample: -n {n} is fewer than the {len(wanted)} classes asked for")
        classes = wanted
    elif int(getattr(model, "num_classes", 0) or 0) > 0:
        classes = list(range(min(int(model.num_classes), n)))  # every class in turn, one row each
    if psi is not None or walk:
        option = "--interpolate" if walk else "--truncation"
        require(model, LatentGenerator, purpose=f"`ganzoo sample {option}`")
    latent = isinstance(model, LatentGenerator) and callable(getattr(model, "noise", None))

    settings = [f"seed {args.seed}"] + ([f"truncation {psi:g}"] if psi is not None else [])
    if classes is not None:
        settings.append(f"class{'es' if len(classes) > 1 else ''} {', '.join(map(str, classes))}")
    if walk:
        ends = model.noise(n + 1, seed=args.seed, truncation=psi)  # walk r goes from latent r to latent r + 1
        z = latent_walk(ends[:-1], ends[1:], walk).flatten(0, 1)
        walk_classes = [classes[r % len(classes)] for r in range(n)] if classes else None
        labels = torch.tensor(walk_classes).repeat_interleave(walk) if walk_classes else None
        imgs = _decode(model, z, labels)
        if imgs.dim() != 4:
            name = getattr(model, "registered_name", None) or model.name
            raise UsageError(f"ganzoo sample: --interpolate needs an image model; {name} draws 2D points")
        frames = imgs.view(n, walk, *imgs.shape[1:])
        rows = [f"class {c}" for c in walk_classes] if walk_classes else ()
        if animated:
            pictures = [SampleGrid(frames[:, t], captions=rows).render() for t in range(walk)]
            path = save_animation(pictures, args.output)
        else:
            path = SampleGrid(imgs, ncol=walk, rows=rows).save(args.output)
        print(f"wrote {n} {what} of {walk} frames ({'; '.join(settings)}) to {path}")
        return 0
    labels = None
    if classes:
        per_row = math.ceil(n / len(classes))
        labels = torch.tensor(classes)[torch.arange(n) // per_row]
    if latent:
        imgs = _decode(model, model.noise(n, seed=args.seed, truncation=psi), labels)
    elif labels is not None:
        imgs = model.generate(n=n, seed=args.seed, labels=labels).float().cpu()
    else:
        imgs = model.generate(n=n, seed=args.seed).float().cpu()
    if imgs.dim() == 2:  # 2D points: a scatter picture
        grid = SampleGrid(scatter_image(imgs, float(imgs.abs().max()) * 1.25)[None])
    elif labels is not None:
        grid = class_rows(imgs, labels)
    else:
        grid = SampleGrid(imgs)
    path = grid.save(args.output)
    print(f"wrote {n} {what} ({'; '.join(settings)}) to {path}")
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
    from .api import load
    from .cards import export_card

    if args.format == "onnx":
        from .export_onnx import export_onnx, require_onnx

        require_onnx()  # a missing extra is said before the model is read
        model = load(args.run, ema=not args.no_ema, trust_unverified=args.trust_unverified)
        written = export_onnx(model, args.output)
        for path, diff in written:
            print(f"exported {model.registered_name} to {path} (onnxruntime matches PyTorch to {diff:.1e})")
        card = export_card(model, args.run, written[0][0], license=args.license, ema=not args.no_ema)
        print(f"model card: {card}")
        return 0
    model = load(args.run, ema=not args.no_ema, trust_unverified=args.trust_unverified)
    card = export_card(model, args.run, args.output, license=args.license, ema=not args.no_ema)
    print(f"exported {model.registered_name} to {args.output}; model card: {card}")
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
    s.add_argument("--json", action="store_true", help="print a JSON list of name, task, plugin and description")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser(
        "info", help="a variant's task, plugin, tags and config fields; a model file's or run's card facts"
    )
    s.add_argument("name", help="variant name[.tag], model file (.safetensors), run folder or model card (README.md)")
    s.add_argument("--json", action="store_true", help="print the same facts as JSON")
    s.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("plugins", help="installed plugins and what each registered")
    s.add_argument("--json", action="store_true", help="print the plugins and their registrations as JSON")
    s.set_defaults(func=cmd_plugins)

    s = sub.add_parser("datasets", help="registered datasets and the tasks they serve")
    s.add_argument("--json", action="store_true", help="print the datasets as JSON")
    s.set_defaults(func=cmd_datasets)

    s = sub.add_parser("data", help="list, download, preview or export datasets (show, export: any data spec)")
    s.set_defaults(func=cmd_data)
    actions = s.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    a = actions.add_parser("list", help="the public datasets that plugins register for download")
    a = actions.add_parser("download", help="download and extract a public dataset")
    a.add_argument("name", help="its name (see `ganzoo data list`)")
    a.add_argument(
        "--root",
        help="where to keep archives and extracted data (default: $GANZOO_DATA, else the data folder of the cache)",
    )
    a.add_argument("--base-url", help="download from this mirror instead of the authors' host")
    a.add_argument("--sha256", help="expected sha256 of the archive")
    for action, helptext in (
        ("show", "draw the first N items of a dataset into one PNG"),
        ("export", "write the first N items of a dataset as files the inference commands read"),
    ):
        a = actions.add_parser(action, help=helptext)
        a.add_argument("spec", metavar="SPEC", help="data spec NAME[:ARG] (see `ganzoo datasets`)")
        if action == "export":
            a.add_argument("folder", metavar="DIR", help="a new or empty folder to write into")
            a.add_argument("--force", action="store_true", help="write into a folder that is not empty")
        else:
            a.add_argument("-o", "--output", type=image_file, default="data.png", help="PNG grid to write")
        a.add_argument("-n", type=int, default=16, help="items to take, from the first")
        a.add_argument(
            "--spread", action="store_true", help="N items spread evenly over the split instead of the first N"
        )
        a.add_argument(
            "--split", default="test", choices=["train", "val", "test"], help="split to read; test is held out"
        )
        a.add_argument(
            "--size",
            type=bounded_int(0, 8192),
            help="image side; for super-resolution the HR crop, 0 = whole images (default: 64; 96 for "
            "super-resolution)",
        )
        a.add_argument("--channels", type=int, default=3, choices=[1, 3], help="1 for grayscale, 3 for RGB")
        a.add_argument("--seed", type=seed_int, default=0, help="seed of procedural data and augmentation")
        a.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="a task option a model would pass: scale=2 (super-resolution), anomaly_class=3 (one-class MNIST)",
        )

    s = sub.add_parser(
        "train",
        help="train a variant",
        description="Train a variant. With --resume, the run's own settings (data, batch size, steps, seed, model "
        "config ...) are used for every option not given again.",
    )
    from .config import field_help
    from .train import TrainConfig

    tc, th = TrainConfig(), field_help(TrainConfig)

    def train_help(key: str) -> str:
        """A TrainConfig field's help with its default, so --help and the config reference agree."""
        value = getattr(tc, key)
        return f"{th[key]} (default: {({True: 'on', False: 'off'}[value]) if isinstance(value, bool) else value})"

    s.add_argument("name", help="variant name, family or family.tag (see `ganzoo list`)")
    s.add_argument(
        "--data",
        help="data spec NAME[:ARG], e.g. shapes, mnist:/path/to/mnist, folder:/path (default: the variant's own, "
        "see `ganzoo info NAME`)",
    )
    s.add_argument(
        "--steps",
        type=int,
        help=f"total training steps, all stages together (default: the recipe's length when it has one, else "
        f"{tc.steps})",
    )
    s.add_argument(
        "--batch-size", dest="batch_size", type=int, help="batch size per process (default: the variant's paper value)"
    )
    s.add_argument("--out", type=output_dir, help="run directory (default: runs/NAME)")
    s.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a variant config field, repeatable; `ganzoo info NAME` lists them (default: none)",
    )
    s.add_argument(
        "--config",
        type=run_yaml,
        metavar="FILE.yaml",
        help="YAML with model:, train: and data: sections; options given here win (default: none)",
    )
    s.add_argument("--device", type=device_arg, help=train_help("device"))
    s.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help=train_help("precision"))
    s.add_argument("--compile", action="store_true", help=train_help("compile"))
    s.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint, with the run's settings for every option not "
        "given again (default: off)",
    )
    s.add_argument(
        "--trust-unverified",
        action="store_true",
        help="with --resume: accept checkpoints that carry no ganzoo digest (from an older ganzoo), with a warning "
        "(default: off)",
    )
    s.add_argument("--seed", type=seed_int, help=train_help("seed"))
    s.add_argument("--log-every", dest="log_every", type=int, help=train_help("log_every"))
    s.add_argument("--sample-every", dest="sample_every", type=int, help=train_help("sample_every"))
    s.add_argument("--ckpt-every", dest="ckpt_every", type=int, help=train_help("ckpt_every"))
    s.add_argument("--eval-every", dest="eval_every", type=int, help=train_help("eval_every"))
    s.add_argument("--eval-n", dest="eval_n", type=int, help=train_help("eval_n"))
    s.add_argument("--max-minutes", dest="max_minutes", type=finite_float, help=train_help("max_minutes"))
    s.add_argument("--no-progress", action="store_true", help="no progress bar (default: a progress bar)")
    s.add_argument(
        "--nproc",
        type=positive_int,
        help="data-parallel processes on this machine, relaunched through torchrun (default: 1)",
    )
    s.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "sample", help="draw samples (or latent walks) from a trained noise model into a PNG grid, GIF or WebP"
    )
    s.add_argument("model", help="run directory or exported .safetensors file")
    s.add_argument(
        "-n",
        type=int,
        help=f"samples, at most {MAX_SAMPLES} (default: 64; with --interpolate, walks: 4)",
    )
    s.add_argument(
        "-o",
        "--output",
        type=image_file,
        default="samples.png",
        help="PNG grid; .gif or .webp with --interpolate: an animation",
    )
    s.add_argument("--seed", type=seed_int, default=0, help="the noise's seed: same seed and options, same images")
    s.add_argument(
        "--class",
        dest="classes",
        action="append",
        metavar="K",
        help="class-conditional models: classes to draw, one row each (repeatable or 0,2,5; default: all)",
    )
    s.add_argument(
        "--truncation",
        type=float,
        metavar="PSI",
        help="truncation trick: redraw latent values beyond +-PSI (> 0; smaller: less variety, typical images)",
    )
    s.add_argument(
        "--interpolate",
        type=int,
        metavar="K",
        help="latent walks of K frames (spherical interpolation between random latents), one per row",
    )
    s.add_argument("--device", type=device_arg, default="cpu", help="where the model runs: auto, cpu, cuda or cuda:N")
    s.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser(
        "plot",
        help="draw a run's training curves (its log.jsonl) into a PNG: a panel per network, stage changes marked, "
        "evaluation scores; works while it trains",
    )
    s.add_argument("run", help="run folder or log.jsonl file")
    s.add_argument("-o", "--output", type=image_file, default=None, help="PNG path (default: RUN/losses.png)")
    s.set_defaults(func=cmd_plot)

    s = sub.add_parser(
        "export", help="export a run as one self-describing .safetensors model file, or its inference networks as ONNX"
    )
    s.add_argument("run", help="run folder (its model.safetensors) or a .safetensors model file")
    s.add_argument(
        "-o",
        "--output",
        type=output_file,
        required=True,
        help="the .safetensors file, or with --format onnx the .onnx file (a model with several networks writes "
        "OUT.<name>.onnx for each)",
    )
    s.add_argument(
        "--format",
        choices=("safetensors", "onnx"),
        default="safetensors",
        help="safetensors: the model for ganzoo (default); onnx: its inference networks for any ONNX runtime, "
        "checked in onnxruntime (needs pip install 'ganzoo[onnx]')",
    )
    s.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")
    s.add_argument(
        "--license",
        help="license identifier of the weights for the model card (mit, apache-2.0, cc-by-4.0 ...; "
        "default: unspecified, or what the model's card already states)",
    )
    s.add_argument("--trust-unverified", action="store_true", help=TRUST_HELP)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser(
        "import-weights",
        help="turn a plain safetensors state_dict from elsewhere into a verified ganzoo model file",
    )
    s.add_argument("variant", help="the variant (name[.tag]) whose architecture the weights follow")
    s.add_argument("file", help="the .safetensors file (the variant's state_dict keys, optionally prefixed model/)")
    s.add_argument(
        "-o", "--output", type=output_file, required=True, help="the ganzoo model file to write (.safetensors)"
    )
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override of the architecture")
    s.set_defaults(func=cmd_import_weights)

    s = sub.add_parser(
        "bench",
        help="time training steps and inference over precision/compile/memory format "
        "(python -m benchmarks.speed adds the plain-PyTorch baselines)",
    )
    s.add_argument("names", nargs="*", help="variants (default: all)")
    s.add_argument("--device", type=device_arg, default="cpu", help="where to time: auto, cpu, cuda or cuda:N")
    s.add_argument("--quick", action="store_true", help="small sizes, fewer combinations and rounds")
    s.add_argument("--out", type=output_dir, default="benchmarks/results", help="folder for <machine>.json and .md")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("install", help="pip-install plugin packages into ganzoo's environment")
    s.add_argument(
        "packages", nargs="+", metavar="PACKAGE", help="what pip install accepts: a name, a wheel, a folder, a URL"
    )
    s.add_argument("-U", "--upgrade", action="store_true", help="upgrade packages that are already installed")
    s.add_argument(
        "-e",
        "--editable",
        action="store_true",
        help="pip -e: install the first PACKAGE, a source folder, in editable mode",
    )
    s.set_defaults(func=cmd_install)

    s = sub.add_parser("uninstall", help="pip-uninstall plugins by the names `ganzoo plugins` shows")
    s.add_argument("packages", nargs="+", metavar="NAME", help="plugin or distribution name")
    s.add_argument("-y", "--yes", action="store_true", help="do not ask pip for confirmation")
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
    entry = argv is None  # the process's entry point (`ganzoo ...`, `python -m ganzoo ...`), not a call from Python
    argv = sys.argv[1:] if argv is None else argv
    with warnings.catch_warnings():
        # A warning (a disabled plugin ...) is one line for a person, not a file name and a line of ganzoo's source.
        warnings.showwarning = _show_warning
        code = _main(argv)
    if entry and "WORLD_SIZE" in os.environ:
        from .train import distributed

        if distributed.env_world_size() > 1:  # a torchrun worker: no interpreter teardown, where gloo can abort it
            distributed.exit_worker(code)
    return code


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
    except (MemoryError, RuntimeError) as e:
        # Sizes past the config limits can still outgrow this machine (a large -n, image or batch): one line.
        short = _allocation_failure(e)
        if short is None:
            raise
        print(f"ganzoo: error: {short}", file=sys.stderr)
        return 2


def _allocation_failure(e: BaseException) -> str | None:
    """One line for an exception that is an allocation failure (CPU or GPU), else ``None``."""
    import re

    text = str(e)
    markers = ("DefaultCPUAllocator", "not enough memory", "out of memory", "can't allocate memory")
    if not (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError" or any(m in text for m in markers)):
        return None
    size = re.search(r"allocate (\d+) bytes", text) or re.search(r"allocate ([\d.]+ [KMGTP]iB)", text)
    amount = ""
    if size:
        raw = size.group(1)
        amount = f" ({int(raw) / 2**30:,.1f} GiB asked for)" if raw.isdigit() else f" ({raw} asked for)"
    return (
        f"not enough memory{amount}; lower the sizes (image_size, widths, batch size, -n) or use a device with more "
        "memory"
    )


if __name__ == "__main__":
    sys.exit(main())
