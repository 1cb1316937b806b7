"""Model cards: `ganzoo export`'s README.md beside the weights (hub front matter + body), the same facts in the model
file's verified header, `ganzoo info FILE|RUN|README.md`, and the run facts they come from (run.json sessions)."""

import json
import os
import re
from pathlib import Path

import pytest
import yaml

import ganzoo
from ganzoo.cards import DEFAULT_LICENSE, card_facts, export_card, read_card_facts
from ganzoo.cli import main
from ganzoo.errors import ConfigError
from ganzoo.train.runlog import RunLog
from tests.conftest import edit_safetensors_header

FAST = ["--device", "cpu", "--precision", "fp32", "--no-progress"]
TINY_DCGAN = ["--set", "ngf=8", "--set", "ndf=8", "--set", "nz=8", "--set", "image_size=32", "--batch-size", "4"]


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def front(card: Path) -> tuple[dict, str]:
    m = re.match(r"\A---\n(.*?)\n---\n(.*)\Z", card.read_text(), re.S)
    assert m, "the card starts with YAML front matter"
    return yaml.safe_load(m.group(1)), m.group(2)


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory) -> Path:
    """A 2D run trained in two sessions (20 steps, then resumed to 30) and scored by `ganzoo eval`."""
    out = tmp_path_factory.mktemp("ring") / "run"
    base = ["train", "vanilla.ring8", "--batch-size", "50", *FAST, "--out", str(out)]
    assert main([*base, "--steps", "20"]) == 0
    assert main([*base, "--steps", "30", "--resume"]) == 0
    assert main(["eval", str(out), "-n", "100", "--metrics", "modes-2d", "-q"]) == 0
    return out


def test_card_of_an_evaluated_run(evaluated_run, tmp_path, capsys):
    run_json = json.loads((evaluated_run / "run.json").read_text())
    assert [(s["from"], s["to"]) for s in run_json["sessions"]] == [(0, 20), (20, 30)]
    assert run_json["wall_seconds"] == pytest.approx(sum(s["seconds"] for s in run_json["sessions"]), abs=0.02)
    assert run_json["data_digest"] == "procedural:ring8"
    metrics = json.loads((evaluated_run / "metrics.json").read_text())

    weights = tmp_path / "ring8" / "model.safetensors"
    card = export_card(ganzoo.load(evaluated_run), evaluated_run, weights, license="mit")
    assert card == weights.parent / "README.md"
    fm, body = front(card)
    assert fm["library_name"] == "ganzoo" and fm["license"] == "mit"
    assert "pipeline_tag" not in fm  # 2D points are not images
    assert {"ganzoo", "vanilla", "vanilla.ring8"} <= set(fm["tags"]) and fm["datasets"] == ["ring8"]
    (index,) = fm["model-index"]
    assert index["name"] == "vanilla.ring8"
    (result,) = index["results"]
    scored = {m["type"]: m for m in result["metrics"]}
    assert scored["modes"]["value"] == metrics["scores"]["modes"]
    assert scored["high_quality"]["value"] == metrics["scores"]["high_quality"]
    assert scored["modes"]["args"]["n"] == 100 and scored["modes"]["args"]["seed"] == 0
    assert scored["modes"]["args"]["date_utc"] == metrics["provenance"]["common"]["date_utc"]
    assert scored["modes"]["args"]["ganzoo_version"] == ganzoo.__version__
    facts = fm["ganzoo"]
    assert facts["variant"] == "vanilla.ring8" and facts["tag"] == "ring8" and facts["task"] == "unconditional"
    assert facts["data"] == {"spec": "ring8", "digest": "procedural:ring8"}
    assert facts["training"]["steps"] == 30 and facts["training"]["batch_size"] == 50
    assert facts["training"]["wall_seconds"] == pytest.approx(run_json["wall_seconds"], abs=0.02)
    assert facts["metrics"]["n"] == 100 and "model_path" not in facts["metrics"]
    assert facts["config"]["arch"] == "pacgan2d"

    assert "| modes | 0 |" in body or f"| modes | {metrics['scores']['modes']} |" in body
    assert "N = 100" in body and "modes-2d" in body
    assert 'ganzoo.load("model.safetensors")' in body and "ganzoo sample model.safetensors" in body
    assert "`mit`" in body and "wall time" in body
    assert (weights.parent / "samples.png").read_bytes() == (evaluated_run / "samples/step-00000030.png").read_bytes()

    # A hub library reads the same scores out of the front matter.
    hub = pytest.importorskip("huggingface_hub")
    results = hub.ModelCard.load(card).data.eval_results
    assert {r.metric_type: r.metric_value for r in results} == {k: v for k, v in metrics["scores"].items() if v == v}

    # The facts live in the weights' header, under its digest: `ganzoo info` prints them from the file alone.
    rc, out, err = run(capsys, "info", weights, "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert info["card"] is True and info["digest"].startswith("sha256-v2:")
    from_file = {k: v for k, v in info.items() if k not in ("source", "card", "file_format", "digest")}
    assert json.dumps(from_file, sort_keys=True) == json.dumps(facts, sort_keys=True)  # NaN scores compare as text
    rc, out, _ = run(capsys, "info", weights)
    assert rc == 0 and "vanilla.ring8 (unconditional)" in out and "30 steps" in out and "N=100" in out
    assert "license: mit" in out and "data: ring8 (digest procedural:ring8)" in out
    rc, out, _ = run(capsys, "info", card, "--json")
    assert rc == 0 and json.loads(out)["training"] == facts["training"]
    assert ganzoo.load(weights).generate(4, seed=0).shape == (4, 2)

    tampered = tmp_path / "tampered" / "model.safetensors"
    tampered.parent.mkdir()
    tampered.write_bytes(weights.read_bytes())

    def relicense(header):
        card_meta = json.loads(header["__metadata__"]["ganzoo.card"])
        card_meta["license"] = "apache-2.0"
        header["__metadata__"]["ganzoo.card"] = json.dumps(card_meta)

    edit_safetensors_header(tampered, relicense)
    rc, out, err = run(capsys, "info", tampered)
    assert rc == 2 and "integrity" in err and len(err.strip().splitlines()) == 1 and not out


def test_scores_of_other_weights_are_not_claimed(evaluated_run):
    model = ganzoo.load(evaluated_run)
    assert card_facts(model, evaluated_run)["metrics"] is not None
    # The raw weights of the newest checkpoint were not what `ganzoo eval RUN` scored.
    raw = card_facts(ganzoo.load(evaluated_run, ema=False), evaluated_run, ema=False)
    assert raw["metrics"] is None and raw["training"]["steps"] == 30
    # A model written again after its evaluation (training went on) has stale scores.
    metrics, model_file = evaluated_run / "metrics.json", evaluated_run / "model.safetensors"
    old = os.stat(metrics)
    os.utime(metrics, (old.st_atime, model_file.stat().st_mtime - 60))
    try:
        stale = card_facts(model, evaluated_run)
    finally:
        os.utime(metrics, (old.st_atime, old.st_mtime))
    assert stale["metrics"] is None and "older than model.safetensors" in stale["metrics_note"]


def test_card_of_an_image_run_without_evaluation(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run(capsys, "train", "dcgan", *TINY_DCGAN, *FAST, "--steps", "2", "--out", out)
    assert rc == 0, err
    # The trainer's own model file has no card; info says where to get one.
    rc, text, _ = run(capsys, "info", out / "model.safetensors")
    assert rc == 0 and "no model card in this file" in text and f"ganzoo info {out}" in text
    rc, text, _ = run(capsys, "info", out, "--json")
    gathered = json.loads(text)
    assert rc == 0 and gathered["training"]["steps"] == 2 and gathered["metrics"] is None

    weights = tmp_path / "export" / "dcgan.safetensors"
    card = export_card(ganzoo.load(out), out, weights)
    fm, body = front(card)
    assert fm["license"] == "other" and fm["license_name"] == DEFAULT_LICENSE
    assert fm["pipeline_tag"] == "unconditional-image-generation" and "model-index" not in fm
    assert "Not evaluated — run `ganzoo eval dcgan.safetensors`" in body
    assert "ganzoo export --license" in body and 'ganzoo.load("dcgan.safetensors")' in body
    assert fm["ganzoo"]["config"]["ngf"] == 8 and fm["ganzoo"]["training"]["steps"] == 2
    assert (card.parent / "samples.png").read_bytes() == (out / "samples/step-00000002.png").read_bytes()
    # The card never replaces a README.md that is not a ganzoo card, and nothing is written then.
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "README.md").write_text("# my project\n")
    with pytest.raises(ConfigError, match="not a ganzoo model card"):
        export_card(ganzoo.load(out), out, foreign / "model.safetensors")
    assert sorted(p.name for p in foreign.iterdir()) == ["README.md"]
    # Exporting again into the same folder replaces the earlier card.
    assert export_card(ganzoo.load(out), out, weights, license="cc-by-4.0") == card
    assert front(card)[0]["license"] == "cc-by-4.0"


def test_card_without_a_run_draws_its_samples_and_keeps_facts_on_reexport(tmp_path, capsys):
    model = ganzoo.create("dcgan", ngf=8, ndf=8, nz=8, image_size=32)
    weights = tmp_path / "a" / "model.safetensors"
    card = export_card(model, None, weights, license="apache-2.0")
    fm, body = front(card)
    assert "Not recorded" in body and fm["ganzoo"]["training"] is None
    png = card.parent / "samples.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(card.parent.glob(".*tmp*"))
    # A model file that carries a card keeps its facts when exported again from it.
    again = export_card(ganzoo.load(weights), weights, tmp_path / "b" / "model.safetensors")
    assert front(again)[0]["ganzoo"]["license"] == "apache-2.0"
    assert read_card_facts(tmp_path / "b" / "model.safetensors")["variant"] == "dcgan"


def test_license_must_be_an_identifier():
    with pytest.raises(ConfigError, match="not a license identifier"):
        card_facts(ganzoo.create("dcgan", ngf=8, ndf=8, nz=8, image_size=32), None, license="my license; all rights")


def test_info_of_a_missing_model_file_is_one_line(capsys):
    rc, _, err = run(capsys, "info", "/does/not/exist.safetensors")
    assert rc == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_run_json_sessions_follow_resumes(tmp_path):
    def session(initial: int, last: int) -> list[tuple[int, int]]:
        log = RunLog(tmp_path, main=True, title="t", source=None, progress=False, tensorboard=False)
        log.write_run_json({"variant": "x", "data": "ring8"})
        log.open(total=100, initial=initial)
        log.advance(last)
        log.close()
        log.close()  # idempotent: one session each
        return [(s["from"], s["to"]) for s in json.loads((tmp_path / "run.json").read_text())["sessions"]]

    assert session(0, 5) == [(0, 5)]
    assert session(5, 8) == [(0, 5), (5, 8)]
    assert session(5, 6) == [(0, 5), (5, 6)]  # resumed from the step-5 checkpoint: steps 5-8 were discarded
    assert session(0, 2) == [(0, 2)]  # a fresh run into the folder
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["wall_seconds"] == pytest.approx(run["sessions"][0]["seconds"])


def test_card_beside_a_file_of_another_format(tmp_path):
    model = ganzoo.create("dcgan", ngf=8, ndf=8, nz=8, image_size=32)
    with pytest.raises(ConfigError, match="model files are .safetensors"):
        export_card(model, None, tmp_path / "model.pt")
    assert not list(tmp_path.iterdir())
    graph = tmp_path / "model.onnx"  # written by the ONNX export before its card
    graph.write_bytes(b"graph")
    card = export_card(model, None, graph)
    assert "`model.onnx` is the inference network alone" in front(card)[1]
    assert graph.read_bytes() == b"graph" and sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md",
        "model.onnx",
        "samples.png",
    ]


def test_export_command_writes_the_card_for_both_formats(evaluated_run, tmp_path, capsys):
    weights = tmp_path / "st" / "model.safetensors"
    weights.parent.mkdir()
    rc, out, err = run(capsys, "export", evaluated_run, "-o", weights, "--license", "mit")
    assert rc == 0, err
    card = weights.parent / "README.md"
    assert f"model card: {card}" in out
    fm, _ = front(card)
    assert fm["license"] == "mit"
    rc, text, _ = run(capsys, "info", weights, "--json")
    assert rc == 0 and json.loads(text)["license"] == "mit"
    pytest.importorskip("onnxruntime")
    onnx = tmp_path / "onnx" / "model.onnx"
    onnx.parent.mkdir()
    rc, out, err = run(capsys, "export", evaluated_run, "--format", "onnx", "-o", onnx)
    assert rc == 0, err
    # The ring recipe samples with rejection: the generator and the acceptance graph, one file each.
    written = sorted(p.name for p in onnx.parent.glob("*.onnx"))
    assert written == ["model.acceptance.onnx", "model.generator.onnx"] and (onnx.parent / "README.md").is_file()
    assert front(onnx.parent / "README.md")[0]["license"] == "other"
