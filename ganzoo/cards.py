"""Model cards: what an exported model is, how it was trained and how good it is, beside the weights and inside them.

``ganzoo export`` writes, next to the model file, a ``README.md`` whose YAML front matter follows the model-card
metadata that model hubs read (``library_name``, ``license``, ``tags``, ``datasets``, ``pipeline_tag``,
``model-index`` with the scores of ``ganzoo eval``) and whose body states the variant, task, configuration, data,
training length, the metrics with their provenance, a sample picture and how to load the model. The same facts (a
JSON object, :func:`card_facts`) are stored in the model file's header as ``ganzoo.card``, covered by the file's
digest, so ``ganzoo info MODEL.safetensors`` prints them from the file alone (:func:`read_card_facts`).

The front matter is written with PyYAML, not through ``huggingface_hub``'s ``ModelCardData``: the card is then the
same whether or not that package is installed, and a hub reads it the same way (the tests parse it back with
``huggingface_hub`` when it is available).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ._version import versions
from .errors import ConfigError
from .train import checkpoint as ckpt
from .utils.files import atomic_write_bytes

__all__ = [
    "CARD_FORMAT",
    "CARD_NAME",
    "DEFAULT_LICENSE",
    "SAMPLE_NAME",
    "card_facts",
    "export_card",
    "format_facts",
    "front_matter",
    "read_card_facts",
    "render_card",
    "run_folder",
    "write_card",
]

CARD_FORMAT = "ganzoo.card/1"
CARD_NAME = "README.md"
SAMPLE_NAME = "samples.png"
DEFAULT_LICENSE = "unspecified"
"""The license a card states unless told otherwise: a model's terms follow from its training data's, which ganzoo
cannot know, so it claims none (the front matter says ``license: other`` with ``license_name: unspecified``)."""

# The hub's pipeline tag per task; anomaly scoring has none, nor has generation of 2D points.
_PIPELINE = {
    "unconditional": "unconditional-image-generation",
    "paired": "image-to-image",
    "unpaired": "image-to-image",
    "super_resolution": "image-to-image",
    "text_to_image": "text-to-image",
}
_TASK_TEXT = {
    "unconditional": "unconditional generation (images from noise)",
    "paired": "paired image-to-image translation",
    "unpaired": "unpaired image-to-image translation",
    "super_resolution": "single-image super-resolution",
    "text_to_image": "text-to-image generation",
    "anomaly": "anomaly detection (a score per image)",
}
_LICENSE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$")
_FRONT_RE = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_GRID_RE = re.compile(r"^step-(\d+)\.png$")


# ---- gathering the facts ---------------------------------------------------------------------------------------------


def run_folder(source: str | Path) -> Path | None:
    """The run folder a model comes from: ``source`` itself when it is a folder, ``RUN`` for ``RUN/model.safetensors``
    and ``RUN/checkpoints/step-N.safetensors``; ``None`` for a file outside a run (no ``run.json`` beside or above).

    :param source: a run folder or a model or checkpoint file.
    """
    p = Path(source)
    if p.is_dir():
        return p
    for folder in (p.parent, p.parent.parent):
        if (folder / "run.json").is_file():
            return folder
    return None


def _source_file(source: Path, ema: bool) -> Path | None:
    """The file :func:`ganzoo.load` reads for ``source`` (the same choice: a run's model.safetensors with EMA,
    else its newest checkpoint)."""
    if source.is_file():
        return source
    if not source.is_dir():
        return None
    if ema and (source / "model.safetensors").is_file():
        return source / "model.safetensors"
    found = ckpt.list_checkpoints(source / "checkpoints")
    return found[0][1] if found else None


def _header(path: Path) -> dict[str, Any]:
    """The metadata of a safetensors file without reading its tensors, values decoded from JSON where they are JSON.
    Only for facts about a file that :func:`ganzoo.load` has already verified."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return _decode(meta) if isinstance(meta, dict) else {}


def _decode(meta: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in meta.items():
        try:
            out[k] = json.loads(v) if isinstance(v, str) else v
        except json.JSONDecodeError:
            out[k] = v
    return out


def _step_of(meta: dict[str, Any]) -> int | None:
    """The training step a model or checkpoint file holds (``ganzoo.info`` of a model, ``ganzoo.state`` of a
    checkpoint)."""
    for key in ("ganzoo.info", "ganzoo.state"):
        block = meta.get(key)
        if isinstance(block, dict) and isinstance(block.get("step"), int):
            return block["step"]
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _log_records(run: Path) -> list[dict[str, Any]]:
    from .utils.plots import read_log

    try:
        return read_log(run / "log.jsonl")
    except OSError:
        return []


def _wall_seconds(run_json: dict[str, Any], step: int | None) -> float | None:
    """The training loop's wall time up to ``step`` from ``run.json``'s sessions; ``None`` when no session ended
    there (killed, an intermediate checkpoint, or a run from before sessions were recorded)."""
    sessions = [s for s in run_json.get("sessions") or [] if isinstance(s, dict)]
    if step is None or not any(s.get("to") == step for s in sessions):
        return None
    return round(sum(float(s.get("seconds", 0.0)) for s in sessions if s.get("to", step + 1) <= step), 2)


def _training_eval(records: list[dict[str, Any]], step: int | None) -> dict[str, Any] | None:
    """The last training-time evaluation (``--eval-every``) at or before ``step``."""
    from .utils.plots import training_evals

    found = [e for e in training_evals(records) if step is None or e["step"] <= step]
    return found[-1] if found else None


def _metrics(source_file: Path | None, ema: bool) -> tuple[dict[str, Any] | None, str | None]:
    """The result of ``ganzoo eval`` on exactly these weights, or ``(None, why not)``."""
    from .metrics.evaluate import metrics_path

    if source_file is None:
        return None, None
    path = metrics_path(source_file)
    if not path.is_file():
        return None, None
    if not ema and ckpt.CKPT_RE.match(source_file.name):
        return None, f"{path.name} scores the EMA weights; these are the raw weights (--no-ema)"
    if path.stat().st_mtime < source_file.stat().st_mtime:
        return None, f"{path.name} is older than {source_file.name} (written again since); run `ganzoo eval` again"
    res = _read_json(path)
    if res is None or not isinstance(res.get("scores"), dict):
        return None, f"{path.name} is not a `ganzoo eval` result"
    res = {k: v for k, v in res.items() if k != "model_path"}  # a path on the machine that scored it
    return res, None


def card_facts(
    model: Any, source: str | Path | None = None, *, license: str | None = None, ema: bool = True
) -> dict[str, Any]:
    """Gather the facts of a model card: what the model is and, from its run folder, how it was trained and scored.

    :param model: the loaded variant (:func:`ganzoo.load`).
    :param source: the run folder or file the model was loaded from (what ``ganzoo export RUN`` was given);
        ``None`` when it has neither (a model made in Python): the card then holds what the model itself knows.
    :param license: the license of the weights, a hub license identifier such as ``mit`` or ``cc-by-4.0``;
        default: the one the source's own card states, else :data:`DEFAULT_LICENSE`.
    :param ema: whether the model was loaded with its EMA weights (``ganzoo export --no-ema`` says no); scores of
        ``ganzoo eval`` are only reported for the weights they measured.
    :returns: a JSON-serialisable dict: ``format``, ``variant`` (registered name), ``family``, ``tag``, ``task``,
        ``plugin``, ``description`` (the family's), ``tag_description``, ``config``, ``data`` (``{"spec",
        "digest"}`` or ``None``), ``training`` (``steps``, ``wall_seconds``, ``device``, ``precision``,
        ``batch_size``, ``seed``, ``stages``, or ``None``), ``metrics`` (the ``ganzoo eval`` result with its
        provenance, or ``None``), ``metrics_note`` (why a result beside the model was not used), ``training_eval``
        (the last ``--eval-every`` record), ``license``, ``exported_utc`` and ``versions``.
    :raises ConfigError: for a license that is not a plain identifier.
    """
    from . import registry

    if license is not None and not _LICENSE_RE.match(license.strip()):
        raise ConfigError(
            f"license {license!r} is not a license identifier; give one such as mit, apache-2.0, cc-by-4.0 or other"
        )
    name = getattr(model, "registered_name", None) or model.name
    family, _, tag = name.partition(".")
    plugin = description = tag_description = None
    try:
        spec = registry.variants()[family]
        plugin, description = spec.plugin, spec.description
        tag_description = getattr(spec.cls, "tag_descriptions", {}).get(tag) if tag else None
    except KeyError:
        pass
    src = Path(source) if source is not None else None
    source_file = _source_file(src, ema) if src is not None else None
    meta = _header(source_file) if source_file is not None else {}
    earlier = meta.get(ckpt.CARD_KEY) if isinstance(meta.get(ckpt.CARD_KEY), dict) else {}
    # A model exported again keeps the license its card stated unless a new one is given.
    lic = license.strip() if license is not None else str(earlier.get("license") or DEFAULT_LICENSE)
    run = run_folder(src) if src is not None else None
    run_json = _read_json(run / "run.json") if run is not None else None
    records = _log_records(run) if run is not None else []
    step = _step_of(meta)
    if step is None and records:
        step = records[-1]["step"]

    data = earlier.get("data")
    training = earlier.get("training")
    if run_json is not None:
        data = {"spec": run_json.get("data"), "digest": run_json.get("data_digest")}
        train = run_json.get("train") if isinstance(run_json.get("train"), dict) else {}
        training = {
            "steps": step,
            "wall_seconds": _wall_seconds(run_json, step),
            "device": run_json.get("device"),
            "precision": run_json.get("precision"),
            "batch_size": run_json.get("batch_size"),
            "seed": train.get("seed"),
            "stages": run_json.get("stages"),
        }
    metrics, note = _metrics(source_file, ema)
    facts = {
        "format": CARD_FORMAT,
        "variant": name,
        "family": family,
        "tag": tag or None,
        "task": str(model.task),
        "plugin": plugin,
        "description": description,
        "tag_description": tag_description,
        "config": model.config_dict(),
        "data": data,
        "training": training,
        "metrics": metrics if metrics is not None else (earlier.get("metrics") if not note else None),
        "metrics_note": note,
        "training_eval": _training_eval(records, step) if records else earlier.get("training_eval"),
        "license": lic,
        "exported_utc": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "versions": versions(),
    }
    # Only JSON types, as they will read back from the file's header and the YAML.
    return json.loads(json.dumps(facts, default=str))


# ---- the card --------------------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Plain YAML: a value used twice (the provenance of every metric) is written twice, not as an anchor."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _dataset_name(spec: str | None) -> str | None:
    return spec.partition(":")[0].partition("@")[0].strip().lower() or None if spec else None


def _pipeline_tag(facts: dict[str, Any]) -> str | None:
    if facts["task"] == "unconditional" and facts.get("config", {}).get("image_size") == 0:
        return None  # 2D points, not images
    return _PIPELINE.get(facts["task"])


def front_matter(facts: dict[str, Any]) -> dict[str, Any]:
    """The card's YAML front matter in the model-card metadata format of model hubs.

    :param facts: from :func:`card_facts`.
    :returns: ``library_name``, ``license`` (``other`` with ``license_name`` when none was given), ``pipeline_tag``
        where the task has one, ``tags``, ``datasets``, ``model-index`` (the ``ganzoo eval`` scores, each with its
        sample count, seed, feature extractor, date and ganzoo version) when the model was scored, and ``ganzoo``:
        every fact.
    """
    fm: dict[str, Any] = {"library_name": "ganzoo"}
    if facts["license"] == DEFAULT_LICENSE:
        fm["license"], fm["license_name"] = "other", DEFAULT_LICENSE
    else:
        fm["license"] = facts["license"]
    pipeline = _pipeline_tag(facts)
    if pipeline:
        fm["pipeline_tag"] = pipeline
    tags = ["ganzoo", "gan", facts["family"], facts["task"].replace("_", "-")]
    if facts.get("tag"):
        tags.append(facts["variant"])
    fm["tags"] = list(dict.fromkeys(tags))
    data = facts.get("data") or {}
    res = facts.get("metrics")
    names = [n for n in (_dataset_name(data.get("spec")), _dataset_name(res.get("data") if res else None)) if n]
    if names:
        fm["datasets"] = list(dict.fromkeys(names))
    if res:
        fm["model-index"] = [_model_index(facts, res, pipeline)]
    fm["ganzoo"] = facts
    return fm


def _extractors(res: dict[str, Any]) -> list[str]:
    prov = res.get("provenance") or {}
    return [
        str(p["extractor"]) for k, p in prov.items() if k != "common" and isinstance(p, dict) and p.get("extractor")
    ]


def _model_index(facts: dict[str, Any], res: dict[str, Any], pipeline: str | None) -> dict[str, Any]:
    common = (res.get("provenance") or {}).get("common") or {}
    args = {
        "n": res.get("n"),
        "seed": res.get("seed"),
        "extractor": ", ".join(_extractors(res)) or None,
        "date_utc": common.get("date_utc"),
        "ganzoo_version": (common.get("versions") or {}).get("ganzoo"),
    }
    args = {k: v for k, v in args.items() if v is not None}
    dataset: dict[str, Any] = {"name": res.get("data"), "type": _dataset_name(res.get("data"))}
    ref = res.get("reference") or {}
    if ref.get("reference_split"):
        dataset["split"] = str(ref["reference_split"])
    metrics = [
        {"type": k.lower(), "name": k, "value": v, "args": args, "verified": False}
        for k, v in res["scores"].items()
        if _finite(v)
    ]
    task = {"type": pipeline or facts["task"].replace("_", "-"), "name": _TASK_TEXT.get(facts["task"], facts["task"])}
    return {"name": facts["variant"], "results": [{"task": task, "dataset": dataset, "metrics": metrics}]}


def _num(v: Any) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    return "" if v is None else str(v)


def _seconds(s: float | None) -> str:
    if s is None:
        return "not recorded"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.2f} h"


def _metrics_section(facts: dict[str, Any], weights_name: str) -> list[str]:
    res = facts.get("metrics")
    lines = ["## Evaluation", ""]
    if not res:
        lines += [f"Not evaluated — run `ganzoo eval {weights_name}` (or `ganzoo eval RUN` before exporting).", ""]
        if facts.get("metrics_note"):
            lines += [f"The run's scores were not used: {facts['metrics_note']}.", ""]
        return lines + _training_eval_lines(facts)
    baselines = res.get("baselines") or {}
    head = ["metric", "model", *[b.replace("_", " ") for b in baselines]]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, v in res["scores"].items():
        row = [k, _num(v), *[_num(baselines[b].get(k)) for b in baselines]]
        lines.append("| " + " | ".join(row) + " |")
    common = (res.get("provenance") or {}).get("common") or {}
    vers = common.get("versions") or {}
    ref = res.get("reference") or {}
    refs = f" (reference split {ref['reference_split']}, floor split {ref['floor_split']})" if ref else ""
    lines += [
        "",
        f"Scored by `ganzoo eval` on `{res.get('data')}`{refs}, N = {res.get('n')}, seed {res.get('seed')}, on "
        f"{common.get('device', 'an unrecorded device')}, {common.get('date_utc', 'at an unrecorded date')}, with "
        f"ganzoo {vers.get('ganzoo', '?')} and torch {vers.get('torch', '?')}.",
        "",
    ]
    # Each evaluator's provenance: its feature extractor and weights digest, resizer, reference set, protocol.
    for key, p in (res.get("provenance") or {}).items():
        if key == "common" or not isinstance(p, dict):
            continue
        shown = [f"{k.replace('_', ' ')}: {v}" for k, v in p.items() if isinstance(v, (str, int, float))]
        if shown:
            lines.append(f"- {key}: " + "; ".join(shown))
    lines += [f"- note: {note}" for note in res.get("notes") or []]
    return lines + [""] + _training_eval_lines(facts)


def _training_eval_lines(facts: dict[str, Any]) -> list[str]:
    te = facts.get("training_eval")
    if not te:
        return []
    scores = ", ".join(f"{k} {_num(v)}" for k, v in te["scores"].items())
    return [f"During training (`--eval-every`), at step {te['step']} with N = {te['n']}: {scores}.", ""]


def _usage(facts: dict[str, Any], weights_name: str) -> list[str]:
    from . import registry

    task = facts["task"]
    if not weights_name.endswith(".safetensors"):
        return [
            "## Use",
            "",
            f"`{weights_name}` is the inference network alone, for runtimes other than PyTorch; the ganzoo model "
            "is the `.safetensors` file exported beside it (`ganzoo export RUN -o MODEL.safetensors`).",
            "",
        ]
    calls = {
        "unconditional": "images = model.generate(16, seed=0)  # (16, C, H, W) in [-1, 1]",
        "paired": "out = model.translate(images)  # (B, C, H, W) uint8 or [-1, 1] floats -> [-1, 1]",
        "unpaired": "out = model.translate(images, direction='a2b')  # (B, C, H, W) -> [-1, 1]",
        "super_resolution": "hr = model.upscale(lr)  # (B, C, h, w) in [-1, 1] -> (B, C, s*h, s*w)",
        "text_to_image": "images = model.generate_from_captions(['a caption in the data's words'], seed=0)",
        "anomaly": "scores = model.score(images)  # (B,) higher = more anomalous",
    }
    if task == "unconditional" and (facts.get("config") or {}).get("image_size") == 0:
        calls[task] = "points = model.generate(1000, seed=0)  # (1000, 2)"
    if task == "unconditional" and (facts.get("config") or {}).get("num_classes"):
        calls[task] += "\nimages = model.generate(16, seed=0, labels=torch.arange(16) % model.num_classes)"
    lines = [
        "## Use",
        "",
        "```python",
        "import ganzoo",
        "",
        f'model = ganzoo.load("{weights_name}")  # verifies the file\'s digest; no pickle',
        calls.get(task, "# see the task protocols in the ganzoo API reference"),
        "```",
        "",
        "```",
    ]
    if task == "unconditional":
        lines.append(f"ganzoo sample {weights_name} -n 64 -o samples.png")
    try:
        commands = registry.commands_for(task)
    except ValueError:
        commands = []
    lines += [f"ganzoo {e.name} {weights_name} ...    # {e.help}" for e in commands]
    lines += [f"ganzoo info {weights_name}    # these facts, read from the file", "```", ""]
    return lines


def render_card(facts: dict[str, Any], weights_name: str = "model.safetensors", sample_name: str | None = None) -> str:
    """The card as Markdown: YAML front matter (:func:`front_matter`), then the variant, task, sample picture,
    evaluation, training, configuration, how to use it and the license.

    :param facts: from :func:`card_facts`.
    :param weights_name: the model file's name, beside the card.
    :param sample_name: the sample picture's name beside the card, if there is one.
    :returns: the text of ``README.md``.
    """
    fm = yaml.dump(front_matter(facts), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    tag = f" (tag `{facts['tag']}`)" if facts.get("tag") else ""
    plugin = f", from the plugin `{facts['plugin']}`" if facts.get("plugin") else ""
    lines = [
        f"---\n{fm}---",
        "",
        f"# {facts['variant']}",
        "",
        f"A ganzoo **{facts['family']}** model{tag}{plugin}"
        + (f": {facts['description'].rstrip('.')}." if facts.get("description") else ".")
        + (f" This tag: {facts['tag_description'].rstrip('.')}." if facts.get("tag_description") else ""),
        f"Task: {_TASK_TEXT.get(facts['task'], facts['task'])}. Exported {facts['exported_utc']} with ganzoo "
        f"{facts['versions'].get('ganzoo')} (torch {facts['versions'].get('torch')}).",
        "",
    ]
    if sample_name:
        tr = facts.get("training") or {}
        when = f" at step {tr['steps']}" if tr.get("steps") is not None else ""
        lines += [f"![samples]({sample_name})", "", f"*Samples{when}.*", ""]
    lines += _metrics_section(facts, weights_name)
    lines += ["## Training", ""]
    data, tr = facts.get("data"), facts.get("training")
    if not data and not tr:
        lines += ["Not recorded: the model was exported without its run folder.", ""]
    else:
        rows = []
        if data:
            rows.append(("data", f"`{data.get('spec')}`"))
            rows.append(("data digest", f"`{data['digest']}`" if data.get("digest") else "not recorded"))
        if tr:
            stages = ", ".join(f"{s['name']} {s['steps']}" for s in tr.get("stages") or [] if isinstance(s, dict))
            rows += [
                ("steps", _num(tr.get("steps")) or "not recorded"),
                ("wall time", _seconds(tr.get("wall_seconds"))),
                ("device, precision", f"{tr.get('device')}, {tr.get('precision')}"),
                ("batch size", _num(tr.get("batch_size"))),
                ("seed", _num(tr.get("seed"))),
            ]
            if stages:
                rows.append(("stages (steps)", stages))
        lines += ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]
    lines += [
        "## Configuration",
        "",
        "The variant's config as the model file stores it (what `ganzoo.load` rebuilds); where training overrode a "
        "setting (batch size, data), the table above shows what ran.",
        "",
        "```yaml",
        yaml.safe_dump(facts.get("config") or {}, sort_keys=False).rstrip(),
        "```",
        "",
    ]
    lines += _usage(facts, weights_name)
    if facts["license"] == DEFAULT_LICENSE:
        lic = (
            "Not specified. The weights' terms follow from the training data's license; state one with "
            "`ganzoo export --license ID`."
        )
    else:
        lic = f"`{facts['license']}`."
    lines += ["## License", "", lic, ""]
    return "\n".join(lines)


def _is_ganzoo_card(path: Path) -> bool:
    try:
        m = _FRONT_RE.match(path.read_text())
        fm = yaml.safe_load(m.group(1)) if m else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(fm, dict) and fm.get("library_name") == "ganzoo"


def _check_card_target(folder: Path) -> None:
    card = folder / CARD_NAME
    if os.path.lexists(card) and not (card.is_file() and _is_ganzoo_card(card)):
        raise ConfigError(
            f"{str(card)!r} exists and is not a ganzoo model card; export into a folder of its own "
            "(-o DIR/model.safetensors) so the card does not replace it"
        )


def write_card(
    facts: dict[str, Any],
    folder: str | Path,
    sample_png: str | Path | None = None,
    weights_name: str = "model.safetensors",
) -> Path:
    """Write ``README.md`` (and the sample picture, as ``samples.png``) into ``folder``.

    :param facts: from :func:`card_facts`.
    :param folder: the folder of the model file.
    :param sample_png: a PNG to show on the card (copied beside it).
    :param weights_name: the model file's name in ``folder``.
    :returns: the card's path.
    :raises ConfigError: when ``folder`` holds a ``README.md`` that is not a ganzoo card (it is never replaced).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _check_card_target(folder)
    sample_name = None
    if sample_png is not None:
        target = folder / SAMPLE_NAME
        if Path(sample_png).resolve() != target.resolve():
            atomic_write_bytes(target, Path(sample_png).read_bytes())
        sample_name = SAMPLE_NAME
    card = folder / CARD_NAME
    atomic_write_bytes(card, render_card(facts, weights_name, sample_name).encode())
    return card


def _sample_picture(model: Any, facts: dict[str, Any], source: Path | None, scratch: Path) -> Path | None:
    """The run's sample grid at the exported step (else its last one before it); for a noise model without one, a
    grid drawn from the model (seed 0)."""
    run = run_folder(source) if source is not None else None
    step = (facts.get("training") or {}).get("steps")
    if run is not None:
        found = ((_GRID_RE.match(g.name), g) for g in (run / "samples").glob("step-*.png"))
        grids = sorted((int(m.group(1)), g) for m, g in found if m)
        usable = [g for s, g in grids if step is None or s <= step]
        if usable:
            return usable[-1]
    from .tasks import NoiseGenerator

    if facts["task"] != "unconditional" or not isinstance(model, NoiseGenerator):
        return None
    import torch

    from .utils.images import save_grid, scatter_image

    with torch.no_grad():
        images = model.generate(64 if facts["config"].get("image_size") == 0 else 16, seed=0)
    if images.dim() == 2:  # 2D points: a scatter picture
        images = scatter_image(images, float(images.abs().max()) * 1.25)[None]
    return save_grid(images.cpu(), scratch)


def export_card(
    model: Any, source: str | Path | None, weights_path: str | Path, *, license: str | None = None, ema: bool = True
) -> Path:
    """What ``ganzoo export`` writes about a model: the card's facts into the model file's header (the file is
    written, or written again, through :func:`ganzoo.save_model` with them), and ``README.md`` plus ``samples.png``
    beside it. For a file that is not ``.safetensors`` (an ONNX export, written before) only the card is written.

    :param model: the loaded variant (as exported).
    :param source: the run folder or file it was loaded from (``None``: none).
    :param weights_path: the exported model file.
    :param license: the weights' license identifier (default: as :func:`card_facts`).
    :param ema: whether ``model`` holds the EMA weights.
    :returns: the card's path.
    :raises ConfigError: for a bad license, a missing file that is not ``.safetensors``, or a ``README.md``
        beside the weights that is not a ganzoo card (all checked before anything is written).
    """
    weights = Path(weights_path)
    if weights.suffix != ".safetensors" and not weights.is_file():
        raise ConfigError(f"model files are .safetensors; got {str(weights)!r}")
    folder = weights.parent
    _check_card_target(folder)
    facts = card_facts(model, source, license=license, ema=ema)
    if weights.suffix == ".safetensors":
        step = (facts.get("training") or {}).get("steps")
        ckpt.save_model(model, weights, extra={"step": step} if step is not None else None, card=facts)
    scratch = folder / f".{SAMPLE_NAME}.tmp.png"
    try:
        sample = _sample_picture(model, facts, Path(source) if source is not None else None, scratch)
        return write_card(facts, folder, sample, weights.name)
    finally:
        scratch.unlink(missing_ok=True)


# ---- reading the facts back ------------------------------------------------------------------------------------------


def read_card_facts(path: str | Path, *, trust_unverified: bool = False) -> dict[str, Any]:
    """The card facts of a model file, a run folder or a card.

    - a ``.safetensors`` model or checkpoint: verified like :func:`ganzoo.load` does, then its ``ganzoo.card``
      (written by ``ganzoo export``); a file without one (the trainer's own ``model.safetensors``, a checkpoint, an
      export from before cards) gives what its header holds (variant, config, step, versions) with ``card: false``;
    - a run folder: gathered from the folder as ``ganzoo export`` would (its model is loaded);
    - a ``README.md`` card: its front matter's ``ganzoo`` block.

    Every result carries ``source`` (the path) and ``card`` (whether full card facts were found); a file's also
    carries ``file_format`` and ``digest``, and one without a card ``run`` (its run folder, or ``None``).

    :param path: the file or folder.
    :param trust_unverified: accept a ganzoo file without a digest (with a warning), as ``--trust-unverified``.
    :returns: the facts (see :func:`card_facts`).
    :raises CheckpointError: for a missing, unverifiable or tampered file.
    :raises ConfigError: for a Markdown file without ganzoo card front matter.
    """
    p = Path(path)
    if p.is_dir():
        from .api import load

        model = load(p, trust_unverified=trust_unverified)
        facts = card_facts(model, p)
        facts.pop("exported_utc", None)  # nothing was exported
        return {"source": str(p), "card": True, **facts}
    if p.suffix.lower() == ".md":
        try:
            m = _FRONT_RE.match(p.read_text())
            fm = yaml.safe_load(m.group(1)) if m else None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ConfigError(f"{str(p)!r} is not a readable model card: {e}") from None
        if not isinstance(fm, dict) or not isinstance(fm.get("ganzoo"), dict):
            raise ConfigError(f"{str(p)!r} has no ganzoo model-card front matter (written by `ganzoo export`)")
        return {"source": str(p), "card": True, **fm["ganzoo"]}
    _, meta = ckpt.load_tensors(p, trust_unverified=trust_unverified)
    head = {"source": str(p), "file_format": meta.get("ganzoo.format"), "digest": meta.get(ckpt.DIGEST_KEY)}
    if isinstance(meta.get(ckpt.CARD_KEY), dict):
        return {**head, "card": True, **meta[ckpt.CARD_KEY]}
    name = str(meta.get("ganzoo.variant", ""))
    run = run_folder(p)
    return {
        **head,
        "card": False,
        "run": str(run) if run is not None else None,
        "variant": name,
        "family": name.partition(".")[0],
        "tag": name.partition(".")[2] or None,
        "config": meta.get("ganzoo.config"),
        "training": {"steps": _step_of(meta)},
        "versions": meta.get("ganzoo.versions"),
    }


def format_facts(facts: dict[str, Any]) -> str:
    """The facts as the lines ``ganzoo info FILE`` prints.

    :param facts: from :func:`read_card_facts`.
    """
    lines = [f"{facts['source']}: {facts.get('variant')}" + (f" ({facts['task']})" if facts.get("task") else "")]
    if facts.get("digest"):
        lines.append(f"  file: {facts.get('file_format')}, verified, digest {facts['digest']}")
    if not facts.get("card"):
        hint = f"; `ganzoo info {facts['run']}` gathers its run's" if facts.get("run") else ""
        lines.append(f"  no model card in this file (`ganzoo export RUN -o FILE` writes one{hint})")
    if facts.get("description"):
        lines.append(f"  description: {facts['description']}")
    if facts.get("tag_description"):
        lines.append(f"  this tag: {facts['tag_description']}")
    vers = facts.get("versions") or {}
    if vers:
        lines.append("  versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    data = facts.get("data")
    if data:
        lines.append(f"  data: {data.get('spec')} (digest {data.get('digest') or 'not recorded'})")
    tr = facts.get("training") or {}
    if tr:
        parts = [f"{tr['steps']} steps" if tr.get("steps") is not None else "steps not recorded"]
        if facts.get("card"):
            parts.append(f"wall time {_seconds(tr.get('wall_seconds'))}")
        if tr.get("device"):
            parts.append(f"{tr['device']} {tr.get('precision')}, batch {tr.get('batch_size')}, seed {tr.get('seed')}")
        lines.append("  training: " + "; ".join(parts))
    res = facts.get("metrics")
    if res:
        common = (res.get("provenance") or {}).get("common") or {}
        extractors = ", ".join(_extractors(res))
        lines.append(
            f"  metrics (ganzoo eval on {res.get('data')}, N={res.get('n')}, seed {res.get('seed')}, "
            f"{common.get('date_utc', '?')}, ganzoo {(common.get('versions') or {}).get('ganzoo', '?')}"
            + (f", {extractors}" if extractors else "")
            + "): "
            + ", ".join(f"{k} {_num(v)}" for k, v in res["scores"].items())
        )
    elif facts.get("card"):
        lines.append("  metrics: not evaluated" + (f" ({facts['metrics_note']})" if facts.get("metrics_note") else ""))
    te = facts.get("training_eval")
    if te:
        lines.append(
            f"  training-time eval (step {te['step']}, N={te['n']}): "
            + ", ".join(f"{k} {_num(v)}" for k, v in te["scores"].items())
        )
    if facts.get("license"):
        lines.append(f"  license: {facts['license']}")
    if facts.get("exported_utc"):
        lines.append(f"  exported: {facts['exported_utc']}")
    cfg = facts.get("config") or {}
    if cfg:
        lines.append("  config: " + " ".join(f"{k}={v}" for k, v in cfg.items()))
    return "\n".join(lines)
