"""The quality suite's runner (``python -m benchmarks.quality``), smoke-tested at its ``tiny`` budget: real training
and scoring, a few steps long. The numbers of the real budgets live in docs/benchmarks/."""

from __future__ import annotations

import json

from benchmarks.quality.__main__ import main


def test_mode2d_trains_the_recipe_by_name_and_writes_table_numbers_and_picture(tmp_path):
    from benchmarks.quality import mode2d

    md = mode2d.run("tiny", 1, tmp_path, ("ring8",)).read_text()
    assert "### ring8" in md and "`vanilla.ring8` (ganzoo recipe)" in md and "published" in md
    assert "Target:" in md and "real test points" in md
    raw = json.loads((tmp_path / "mode2d.json").read_text())
    (run,) = raw["ring8"]
    assert 0 <= run["modes"] <= 8 and 0.0 <= run["high_quality"] <= 1.0
    assert run["command"] == "OMP_NUM_THREADS=1 ganzoo train vanilla.ring8 --seed 0 --no-progress --steps 20"
    assert run["train_seconds"] > 0 and run["real_test_points"]["modes"] == 8
    assert (tmp_path / "mode2d.png").stat().st_size > 0


def test_bad_arguments_and_missing_data(tmp_path, monkeypatch, capsys):
    assert main(["nope"]) == 2
    assert "valid: mode2d" in capsys.readouterr().err
    assert main(["mode2d", "--seeds", "0"]) == 2
    import benchmarks.quality.common as common

    monkeypatch.setattr(common, "DATA", tmp_path / "absent")
    assert main(["stacked_mnist", "--budget", "tiny", "--out", str(tmp_path)]) == 0
    assert "skipped" in capsys.readouterr().out and not (tmp_path / "stacked_mnist.md").exists()


def test_stacked_recipe_trains_the_tag_by_name_and_scores_it_beside_real_data(tmp_path, monkeypatch, capsys):
    import pytest

    from benchmarks.quality import common, stacked_recipe

    if not (common.DATA / "mnist").exists():
        pytest.skip(f"{common.DATA / 'mnist'} is absent (the shared MNIST files)")
    md = stacked_recipe.run("tiny", 1, tmp_path).read_text()
    assert "`dcgan.stacked` (ganzoo recipe)" in md and "real stacked MNIST" in md and "Target:" in md
    raw = json.loads((tmp_path / "stacked_recipe.json").read_text())
    (run,) = raw["runs"]
    command = "ganzoo train dcgan.stacked --data stacked-mnist:MNIST_DIR --seed 0 --no-progress --steps 20"
    assert run["command"] == command
    assert 0 < run["modes"] <= 1000 and run["kl"] >= raw["real"]["kl"] > 0 and run["train_seconds"] > 0
    assert (tmp_path / "stacked_recipe.png").stat().st_size > 0
    # Skipped with the reason where the data is absent.
    monkeypatch.setattr(common, "DATA", tmp_path / "absent")
    assert main(["stacked_recipe", "--budget", "tiny", "--out", str(tmp_path / "x")]) == 0
    assert "skipped" in capsys.readouterr().out and not (tmp_path / "x" / "stacked_recipe.md").exists()
