"""The benchmark machinery runs (timings themselves live in benchmarks/, never in unit tests)."""

from ganzoo import bench
from ganzoo.cli import main


def test_measure_and_tables(tmp_path):
    r = bench.measure("vanilla", "small", precision="fp32", rounds=1, warmup=0)
    assert r.ms_per_step > 0 and r.gflop_per_step > 0 and r.batch_size == 16
    assert "vanilla" in bench.markdown_table([r])
    ratio = bench.baseline_ratio("dcgan", "small", rounds=1)
    assert ratio["params"]["G"] > 0 and ratio["speedup"] > 0
    assert "dcgan" in bench.ratio_table([ratio])


def test_bench_command_writes_results(tmp_path, capsys):
    assert main(["bench", "vanilla", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".json", ".md"]
    assert "ms/step" in capsys.readouterr().out


def test_a_failing_case_is_recorded_and_the_others_are_kept(tmp_path, monkeypatch):
    import json

    real = bench.measure

    def flaky(name, size, device, **kw):
        if kw.get("precision") == "fp32":
            raise RuntimeError("compiler exploded\nlong trace")
        return real(name, size, device, **kw)

    monkeypatch.setattr(bench, "measure", flaky)
    path, md = bench.run(["vanilla"], quick=True, out=tmp_path, progress=False)
    data = json.loads(path.read_text())
    assert len(data["results"]) == 1 and data["results"][0]["precision"] != "float32"
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
