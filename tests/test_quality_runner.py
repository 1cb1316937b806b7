"""The quality suite's runner (``python -m benchmarks.quality``), smoke-tested at its ``tiny`` budget: real training
and scoring, a few steps long. The numbers of the real budgets live in docs/benchmarks/."""

from __future__ import annotations

import json

from benchmarks.quality.__main__ import main


def test_mode2d_writes_its_table_numbers_and_pictures(tmp_path):
    assert main(["mode2d", "--budget", "tiny", "--seeds", "1", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "mode2d.md").read_text()
    assert "### ring8" in md and "### grid25" in md and "PacGAN2 (ganzoo)" in md and "published" in md
    raw = json.loads((tmp_path / "mode2d.json").read_text())
    stats = raw["ring8/GAN"][0]
    assert 0 <= stats["modes"] <= 8 and 0.0 <= stats["high_quality"] <= 1.0
    assert (tmp_path / "mode2d.png").stat().st_size > 0
    assert (tmp_path / "mode2d_losses_ring8_GAN.png").stat().st_size > 0


def test_bad_arguments_and_missing_data(tmp_path, monkeypatch, capsys):
    assert main(["nope"]) == 2
    assert "valid: mode2d" in capsys.readouterr().err
    assert main(["mode2d", "--seeds", "0"]) == 2
    import benchmarks.quality.common as common

    monkeypatch.setattr(common, "DATA", tmp_path / "absent")
    assert main(["stacked_mnist", "--budget", "tiny", "--out", str(tmp_path)]) == 0
    assert "skipped" in capsys.readouterr().out and not (tmp_path / "stacked_mnist.md").exists()
