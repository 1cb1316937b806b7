"""Training curves: one panel per phase, distinct colours, stage changes marked, smoothed curves over faint raw
ones, evaluation scores in panels of their own; `ganzoo plot` and the end-of-training losses.png draw the same."""

import json
import math
import random

import pytest
from PIL import Image

from ganzoo.cli import main
from ganzoo.utils.plots import (
    COLOURS,
    plot_panels,
    plot_run,
    plot_series,
    read_log,
    smooth,
    stage_spans,
)


def _two_stage_log():
    rng = random.Random(0)
    records = []
    for step in range(2, 201, 2):
        stage = "pretrain" if step <= 100 else "gan"
        r = {"step": step, "stage": stage, "img_per_s": 50.0, "lr/g": 1e-4}
        if stage == "pretrain":
            r.update({"g_mse/loss": 0.5 - step / 1000 + rng.gauss(0, 0.02), "g_mse/psnr": 9 + step / 50})
        else:
            r.update({"d/loss": 1.3 + rng.gauss(0, 0.1), "d/real": 0.1, "d/fake": -0.2 + rng.gauss(0, 0.05)})
            r.update({"g/loss": 0.3 + rng.gauss(0, 0.05), "g/content": 0.29, "g/adv": 0.9})
        records.append(r)
        if step % 50 == 0:
            records.append(
                {"step": step, "eval/metric": "fid", "eval/n": 100, "eval/fid": 300 - step, "eval/fid_floor": 5}
            )
    return records


def test_panels_group_series_by_phase_and_put_evaluations_apart():
    panels = plot_panels(_two_stage_log())
    titles = [p.title for p in panels]
    assert titles[0] == "phase g_mse (stage pretrain)"
    # PSNR in dB is ~30x the MSE: a panel of its own, or the loss would be a flat line.
    assert titles[1] == "g_mse/psnr (stage pretrain)" and panels[1].ylabel == "psnr"
    assert set(panels[2].series) == {"d/loss", "d/real", "d/fake"}  # small logits stay with their loss
    assert set(panels[3].series) == {"g/loss", "g/content", "g/adv"}
    ev = panels[4]
    assert ev.evaluation and ev.ylabel == "fid" and set(ev.series) == {"fid", "fid_floor"}
    assert "floor: real vs real" in ev.title
    assert [x for x, _ in ev.series["fid"]] == [50.0, 100.0, 150.0, 200.0]
    assert len(panels) == 5


def test_stage_spans_follow_the_log():
    assert stage_spans(_two_stage_log()) == [("pretrain", 2.0, 100.0), ("gan", 102.0, 200.0)]
    assert stage_spans([{"step": 1}]) == []


def test_smoothing_removes_noise_without_start_up_bias():
    assert smooth([2.0] * 50) == pytest.approx([2.0] * 50)
    assert smooth([5.0, 1.0])[0] == 5.0  # debiased: the first value is the first point, not 5 * alpha
    rng = random.Random(1)
    raw = [rng.gauss(0, 1) for _ in range(300)]
    sm = smooth(raw)

    def var(xs):
        m = sum(xs) / len(xs)
        return sum((x - m) ** 2 for x in xs) / len(xs)

    assert var(sm) < var(raw) / 5


def _colours(img):
    return {c for _, c in img.getcolors(maxcolors=1 << 20)}


def test_panel_draws_distinct_colours_faint_raw_and_the_stage_boundary():
    records = [
        {"step": s, "stage": "a" if s <= 50 else "b", "x/loss": math.sin(s / 5) + 2, "x/other": math.cos(s / 7) + 2}
        for s in range(1, 101)
    ]
    series = {
        "x/loss": [(r["step"], r["x/loss"]) for r in records],
        "x/other": [(r["step"], r["x/other"]) for r in records],
    }
    img = plot_series(series, "t", 760, 320, stages=stage_spans(records), xrange=(0, 100))
    colours = _colours(img)
    # Each series: its bold smoothed line in its colour and the faint raw line (30% of it over white).
    for c in COLOURS[:2]:
        assert c in colours
        assert tuple(round(v * 0.3 + 255 * 0.7) for v in c) in colours
    # The dashed boundary after stage a's last step (50): panel x from 74 to 760 - 160 over steps 0..100.
    x = round(74 + 50 / 100 * (760 - 160 - 74))
    column = [img.getpixel((xx, y)) for xx in (x - 1, x, x + 1) for y in range(30, 320 - 42)]
    assert sum(1 for p in column if p == (90, 90, 90)) > 40


def test_colours_are_distinct_within_every_panel():
    img = plot_run(_two_stage_log(), "run")
    for panel in plot_panels(_two_stage_log()):
        assert len(panel.series) <= len(COLOURS)
    colours = _colours(img)
    # 2 + 3 + 3 loss series and fid with its floor: ten distinct palette colours are all drawn.
    assert all(c in colours for c in COLOURS[:10])


def test_empty_log_draws_a_no_data_panel():
    assert plot_run([], "nothing").size == (720, 400)


def test_plot_of_a_two_stage_run_matches_its_losses_png(tmp_path, capsys):
    out = tmp_path / "run"
    tiny = ["image_size=16", "n_feats=8", "n_blocks=2", "ndf=4", "d_dense=16", "content_loss=mse", "pretrain_steps=6"]
    argv = ["train", "srgan", "--steps", "12", "--batch-size", "2", "--log-every", "1", "--no-progress"]
    argv += ["--sample-every", "100", "--out", str(out)]
    for kv in tiny:
        argv += ["--set", kv]
    assert main(argv) == 0
    capsys.readouterr()
    records = read_log(out)
    assert stage_spans(records) == [("pretrain", 1.0, 6.0), ("gan", 7.0, 12.0)]
    titles = [p.title for p in plot_panels(records)]
    assert titles[0] == "phase g_mse (stage pretrain)" and any(t.startswith("phase d (stage gan)") for t in titles)
    assert main(["plot", str(out), "-o", str(tmp_path / "again.png")]) == 0
    with Image.open(out / "losses.png") as a, Image.open(tmp_path / "again.png") as b:
        assert a.size == b.size and a.size[0] >= 1200  # several panels, two columns
        assert a.convert("RGB").tobytes() != Image.new("RGB", a.size, "white").tobytes()


def test_a_log_cut_by_a_crash_still_plots(tmp_path):
    lines = [json.dumps({"step": s, "stage": "gan", "d/loss": 1.0, "g/loss": 2.0}) for s in range(1, 20)]
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + '\n{"step": 2')
    assert main(["plot", str(tmp_path)]) == 0
    assert (tmp_path / "losses.png").is_file()
