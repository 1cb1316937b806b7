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
