"""The benchmark machinery runs (timings themselves live in benchmarks/, never in unit tests)."""

import json

import pytest

import ganzoo
from benchmarks import speed
from benchmarks.baselines import baseline_ratio
from ganzoo import bench, registry
from ganzoo.cli import main


@pytest.mark.parametrize("name", ganzoo.list_variants(tags=False))
def test_every_variant_declares_valid_bench_sizes(name):
    cls = registry.variants()[name].cls
    assert set(cls.bench_sizes) <= {"standard", "small"}
    for size in ("standard", "small"):
        cls.make_config(cls.bench_sizes.get(size, {})).validate()  # unknown keys or invalid values raise here
    small = {**cls.bench_sizes.get("small", {}), **cls.tiny}
    assert bench.build(name, "small", **cls.tiny).config == cls.make_config(small)


def test_measure_and_tables(tmp_path):
    r = bench.measure("vanilla", "small", precision="fp32", rounds=1, warmup=0)
    assert r.ms_per_step > 0 and r.gflop_per_step > 0 and r.batch_size == 16
    assert "vanilla" in bench.markdown_table([r])
    ratio = baseline_ratio("dcgan", "small", rounds=1)
    assert ratio["params"]["G"] > 0 and ratio["speedup"] > 0
    assert "dcgan" in bench.ratio_table([ratio])


def test_bench_command_writes_results(tmp_path, capsys):
    assert main(["bench", "vanilla", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".json", ".md"]
    assert "ms/step" in capsys.readouterr().out


def test_a_failing_case_is_recorded_and_the_others_are_kept(tmp_path, monkeypatch):
    real = bench.measure

    def flaky(name, size, device, **kw):
        if kw.get("precision") == "fp32":
            raise RuntimeError("compiler exploded\nlong trace")
        return real(name, size, device, **kw)

    monkeypatch.setattr(bench, "measure", flaky)
    path, md = bench.run(["vanilla"], quick=True, out=tmp_path, progress=False)
    data = json.loads(path.read_text())
    # The "auto" case is kept (for vanilla it resolves to fp32 too: its reduced_precision is False).
    assert len(data["results"]) == 1 and data["results"][0]["name"] == "vanilla"
    assert data["failures"] == [
        {
            "name": "vanilla",
            "size": "small",
            "precision": "fp32",
            "channels_last": False,
            "error": "RuntimeError: compiler exploded",
        }
    ]
    assert "Failed cases" in md and path.with_suffix(".md").read_text().strip() == md.strip()


def test_speed_suite_entry_compares_with_the_baselines(tmp_path, capsys):
    assert speed.main(["dcgan", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert [r["name"] for r in data["baselines"]] == ["dcgan"] and data["baselines"][0]["speedup"] > 0
    assert {r["size"] for r in data["results"]} == {"small"} and data["failures"] == []
    md = next(tmp_path.glob("*.md")).read_text()
    assert "plain PyTorch (eager fp32) ms" in md and "| dcgan | small |" in md
    assert speed.main(["dcgam", "--out", str(tmp_path)]) == 2
    assert "Did you mean 'dcgan'" in capsys.readouterr().err


def test_ganzoo_bench_has_no_baselines(tmp_path):
    path, md = bench.run(["vanilla"], quick=True, out=tmp_path, progress=False)
    assert json.loads(path.read_text())["baselines"] == [] and "plain PyTorch" not in md
