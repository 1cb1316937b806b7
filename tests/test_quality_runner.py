"""The quality suite's runner (``python -m benchmarks.quality``), smoke-tested at its ``tiny`` budget: real training
and scoring, a few steps long. The numbers of the real budgets live in docs/benchmarks/."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import ganzoo
from benchmarks.quality.__main__ import main


def test_mode2d_trains_the_recipe_by_name_and_writes_table_numbers_and_picture(tmp_path):
    from benchmarks.quality import mode2d

    # Two jobs: the scored run shares the machine, so the time verdict reads seed 0 trained again alone.
    md = mode2d.run("tiny", 1, tmp_path, ("ring8",), jobs=2).read_text()
    assert "### ring8" in md and "`vanilla.ring8` (ganzoo recipe)" in md and "published" in md
    assert "Target:" in md and "real test points" in md
    raw = json.loads((tmp_path / "mode2d.json").read_text())
    (run,) = raw["ring8"]
    assert run["quiet"] is False and f"{run['train_seconds']} (shared)" in md
    timed = raw["ring8_timed"]["train_seconds"]
    assert timed > 0 and f"seed 0 timed alone {timed:.0f} s (target 300 s: met)" in md
    assert 0 <= run["modes"] <= 8 and 0.0 <= run["high_quality"] <= 1.0
    assert run["command"] == "OMP_NUM_THREADS=1 ganzoo train vanilla.ring8 --seed 0 --no-progress --steps 20"
    assert run["train_seconds"] > 0 and run["real_test_points"]["modes"] == 8
    assert (tmp_path / "mode2d.png").stat().st_size > 0


def test_mode2d_time_verdict_reads_only_runs_made_alone():
    from benchmarks.quality.mode2d import _verdict

    run = {"modes": 8, "high_quality": 0.99, "reverse_kl": 0.01, "seed": 0}
    quiet, shared = {**run, "train_seconds": 310.0, "quiet": True}, {**run, "train_seconds": 900.0, "quiet": False}
    assert "slowest run 310 s (target 300 s: missed)" in _verdict("ring8", [quiet, shared])
    assert "time not judged" in _verdict("ring8", [shared])
    timed = {"seed": 0, "train_seconds": 250.0}
    assert "seed 0 timed alone 250 s (target 300 s: met)" in _verdict("ring8", [shared], timed)


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


# ---- recipes: issue #14's tags by name, scored by `ganzoo eval` ------------------------------------------------------


@pytest.mark.parametrize(
    "name, tag, keys",
    [
        ("pix2pix", "pix2pix.shapes", {"psnr", "ssim", "l1", "grad-ratio", "hf-ratio"}),
        ("cyclegan", "cyclegan.shapes32", {"psnr", "grad-ratio", "b2a_psnr", "b2a_hf-ratio"}),
        ("attngan", "attngan.shapes32", set()),  # its evaluator is generic here: whatever scores come back
        ("mnist", "dcgan.mnist", {"fid", "precision", "fd_dom"}),
    ],
)
def test_recipes_train_the_tag_by_name_and_score_it_with_ganzoo_eval(name, tag, keys, tmp_path):
    from benchmarks.quality import common, recipes

    variant = tag.split(".")[0]
    if variant not in ganzoo.list_variants(tags=False):
        pytest.skip(f"variant {variant} is not installed")
    if name == "mnist":
        from ganzoo.metrics.inception import find_inception_weights

        if not (common.DATA / "mnist").is_dir():
            pytest.skip(f"MNIST is not at {common.DATA / 'mnist'} (../shared/data/mnist or $GANZOO_SHARED_DATA)")
        try:
            find_inception_weights(download=False)
        except (FileNotFoundError, ValueError) as e:
            pytest.skip(f"the recipe is scored by FID: {e}")
    if name == "attngan":
        import os
        from pathlib import Path

        cache = Path(os.environ.get("GANZOO_CACHE", Path.home() / ".cache" / "ganzoo")) / "scenes"
        if not any(cache.glob("shapes-captions-32px-3ch-*.safetensors")):
            pytest.skip(f"no 32 px scene classifier in {cache}: its first training takes minutes (any `ganzoo eval`)")
    md = recipes.run("tiny", 1, tmp_path, only=[name]).read_text()
    assert f"`{tag}` (ganzoo recipe)" in md and "Target:" in md and "--steps 20, -n 8" in md
    raw = json.loads((tmp_path / f"recipes_{name}.json").read_text())
    run = raw["runs"][0]
    extra = {"cyclegan": " --eval-every 1000", "mnist": " --data mnist:SHARED/mnist"}.get(name, "")
    assert run["command"] == f"ganzoo train {tag}{extra} --seed 0 --no-progress --steps 20" and run["train_seconds"] > 0
    ev = run["evals"]["test split"]
    assert ev["command"] == f"ganzoo eval RUN/{tag} --json --no-save -q -n 8" and ev["seconds"] > 0 and ev["n"] == 8
    scores = ev["scores"]
    assert keys <= set(scores) and scores and all(isinstance(v, (int, float)) for v in scores.values())
    if name == "pix2pix":  # the L1-only row in the same run, and the sharpness verdicts against it
        assert [r["key"] for r in raw["runs"]] == ["pix2pix.shapes", "pix2pix.shapes_l1"]
        assert raw["runs"][1]["command"] == "ganzoo train pix2pix.shapes_l1 --seed 0 --no-progress --steps 20"
        assert "grad-ratio" in md and "above the L1-only model's" in md and "baseline `identity`" in md
    if name == "attngan":
        assert "R-precision" in md
    if name == "mnist":  # the verdict sets the FID beside its target and the real-vs-real floor of the same N
        assert ev["baselines"]["real_vs_real"]["fid"] >= 0
        assert "(target at most 12:" in md and "floor at the same N" in md
    if name == "cyclegan":  # --eval-every records the last step too: a one-point curve, drawn and tabled
        assert [(p["step"], p["metric"]) for p in run["curve"]] == [(20, "psnr")] and run["curve"][0]["psnr"] > 0
        assert "Quality over time" in md and (tmp_path / "recipes_cyclegan_curve.png").stat().st_size > 0
    else:
        assert run["curve"] == [] and "Quality over time" not in md
    assert (tmp_path / f"recipes_{name}.png").stat().st_size > 0 and "Picture:" in md


def _tiny_run(name: str, out, steps: int = 2) -> None:
    from ganzoo.testing import tiny_variant
    from ganzoo.train import TrainConfig, Trainer

    torch.manual_seed(0)
    cfg = TrainConfig(steps=steps, progress=False, tensorboard=False, sample_every=steps, ckpt_every=0)
    Trainer(tiny_variant(name), cfg, out=out).fit()


def test_recipes_score_runs_made_elsewhere_from_their_folders_and_times(tmp_path, capsys):
    if "pix2pix" not in ganzoo.list_variants(tags=False):
        pytest.skip("variant pix2pix is not installed")
    runs = tmp_path / "runs"
    seed0 = runs / "pix2pix" / "0"
    for key in ("pix2pix.shapes", "pix2pix.shapes_l1"):
        _tiny_run("pix2pix", seed0 / key)
    argv = ["recipes", "--budget", "tiny", "--seeds", "1", "--only", "pix2pix", "--runs-from", str(runs)]
    # Without the wall times the runs cannot be reported: skipped with the layout named.
    assert main([*argv, "--out", str(tmp_path / "x")]) == 0
    assert "times.json is absent" in capsys.readouterr().out and not (tmp_path / "x").exists()
    times = {"pix2pix.shapes": 321.5, "pix2pix.shapes_l1": {"seconds": 250.0, "quiet": False}}
    (seed0 / "times.json").write_text(json.dumps(times))
    (runs / "pix2pix" / "timed.json").write_text(json.dumps({"pix2pix.shapes": [{"seed": 0, "seconds": 400}]}))
    assert main([*argv, "--out", str(tmp_path / "docs")]) == 0
    raw = json.loads((tmp_path / "docs" / "recipes_pix2pix.json").read_text())
    assert raw["runs_from"] == str(runs) and [r["train_seconds"] for r in raw["runs"]] == [321.5, 250.0]
    assert raw["runs"][0]["command"] == "ganzoo train pix2pix.shapes --seed 0 --no-progress --steps 20"
    assert set(raw["runs"][0]["evals"]["test split"]["scores"]) >= {"psnr", "grad-ratio", "hf-ratio"}
    md = (tmp_path / "docs" / "recipes_pix2pix.md").read_text()
    assert "runs read from `--runs-from` (2 runs)" in md
    assert "the slowest of the 2 command(s) timed alone 400 s (target 600 s" in md
    assert "| 250.0 (shared) |" in md and "Timed alone (`timed.json`" in md and raw["timed"][0]["train_seconds"] == 400
    # --times-only: the same scores, the wall times read anew (here every run shared the machine), nothing evaluated.
    (seed0 / "times.json").write_text(json.dumps({k: {"seconds": 900, "quiet": False} for k in times}))
    (runs / "pix2pix" / "timed.json").unlink()
    shutil.rmtree(seed0 / "pix2pix.shapes")  # no model to evaluate: the scores come from the report
    assert main([*argv, "--times-only", "--out", str(tmp_path / "docs")]) == 0
    again = json.loads((tmp_path / "docs" / "recipes_pix2pix.json").read_text())
    assert [r["evals"] for r in again["runs"]] == [r["evals"] for r in raw["runs"]] and again["timed"] == []
    assert [r["quiet"] for r in again["runs"]] == [False, False] and again["runs_from"] == raw["runs_from"]
    md = (tmp_path / "docs" / "recipes_pix2pix.md").read_text()
    assert "time not judged (target 600 s per command)" in md and "samples/step-00000002.png" in md
    assert main([*argv, "--times-only", "--out", str(tmp_path / "nothing")]) == 0
    assert "there are no scores to report again" in capsys.readouterr().out
    assert "samples/step-00000002.png" in md and (tmp_path / "docs" / "recipes_pix2pix.png").stat().st_size > 0


def test_the_time_verdict_reads_only_commands_timed_alone(tmp_path):
    from benchmarks.quality import recipes

    recipe = recipes.RECIPES["pix2pix"]
    keys = [c.key for c in recipe.commands]
    assert recipes._time_entry(321.5, "t") == (321.5, True)
    assert recipes._time_entry({"seconds": 900, "quiet": False}, "t") == (900.0, False)
    for bad in ("321", True, {"seconds": 1, "shared": True}, {"quiet": False}):
        with pytest.raises(ValueError, match="t: .* is not a wall time"):
            recipes._time_entry(bad, "t")
    # A run at one thread beside others is scored but is not a timing; a rerun alone (timed.json) is.
    shared = {"key": "pix2pix.shapes", "train_seconds": 900.0, "quiet": False}
    summary = {"runs": [shared, {"key": "pix2pix.shapes_l1", "train_seconds": 700.0}]}
    verdict = recipes._time_verdict(recipe, summary, ["pix2pix.shapes"])
    assert (
        verdict
        == "time not judged (target 600 s per command): no command was timed alone, every run shared the machine"
    )
    assert "1 command(s) timed alone 700 s" in recipes._time_verdict(recipe, summary)  # without keys: every command
    timed = tmp_path / "timed.json"
    assert recipes._timed_reruns(timed, keys) == []
    timed.write_text(json.dumps({"pix2pix.shapes": [{"seed": 0, "seconds": 410.2}, {"seed": 1, "seconds": 612}]}))
    summary["timed"] = recipes._timed_reruns(timed, keys)
    assert summary["timed"][0] == {"key": "pix2pix.shapes", "seed": 0, "train_seconds": 410.2}
    verdict = recipes._time_verdict(recipe, summary, ["pix2pix.shapes"])
    assert verdict == "the slowest of the 2 command(s) timed alone 612 s (target 600 s per command: missed)"
    timed.write_text(json.dumps({"pix2pix.nope": [{"seed": 0, "seconds": 1}]}))
    with pytest.raises(ValueError, match="unknown run 'pix2pix.nope'; valid: pix2pix.shapes, pix2pix.shapes_l1"):
        recipes._timed_reruns(timed, keys)
    timed.write_text(json.dumps({"pix2pix.shapes": [{"seconds": 1}]}))
    with pytest.raises(ValueError, match="is not"):
        recipes._timed_reruns(timed, keys)


def test_recipe_commands_and_options(tmp_path, capsys):
    from benchmarks.quality import recipes

    ae = next(c for c in recipes.RECIPES["anomaly"].commands if c.key == "ganomaly.mnist_ae-d3")
    args = recipes.train_args(ae, 1, "small", 125.3)  # the GANomaly command's wall time, rounded up to the second
    assert recipes._shown(args) == (
        "ganzoo train ganomaly.mnist_ae --data mnist-anomaly:SHARED/mnist --set anomaly_class=3 --seed 1 "
        "--no-progress --steps 1000000 --max-minutes 2.1000"
    )
    sr = recipes.RECIPES["srgan"].commands[0]
    assert recipes._shown(recipes.train_args(sr, 2, "small")) == (
        "ganzoo train srgan.small --data sr-folder:SHARED/sr/Urban100_train --seed 2 --no-progress"
    )
    # The SRResNet stage's model: the file the trainer leaves at the end of the stage, when the run has it.
    run = tmp_path / "run"
    (run / "stages").mkdir(parents=True)
    assert recipes._stage_model(run, "pretrain") is None
    (run / "stages" / "pretrain.safetensors").write_bytes(b"")
    assert recipes._stage_model(run, "pretrain") == run / "stages" / "pretrain.safetensors"
    assert main(["recipes", "--only", "nope"]) == 2 and "valid: pix2pix, cyclegan, mnist, attngan, srgan, anomaly" in (
        capsys.readouterr().err
    )
    assert main(["mode2d", "--only", "pix2pix"]) == 2 and "options of the recipes experiment" in capsys.readouterr().err
    assert main(["recipes", "--times-only"]) == 2 and "--times-only needs --runs-from" in capsys.readouterr().err
    assert main(["recipes", "--runs-from", str(tmp_path / "absent")]) == 2


def test_a_stage_model_is_scored_and_shown_by_its_path_in_the_run(tmp_path):
    from benchmarks.quality import recipes
    from ganzoo.testing import tiny_variant

    run = tmp_path / "srgan.small"
    (run / "stages").mkdir(parents=True)
    torch.manual_seed(0)
    stage = ganzoo.save_model(tiny_variant("srgan").eval(), run / "stages" / "pretrain.safetensors", name="srgan")
    ev = recipes.evaluate_run(stage, ["--data", "shapes-sr", "--metrics", "psnr"], 2, run=run)
    shown = "ganzoo eval RUN/srgan.small/stages/pretrain.safetensors --data shapes-sr --metrics psnr"
    assert ev["command"] == shown + " --json --no-save -q -n 2"
    assert ev["n"] == 2 and ev["scores"]["psnr"] > 0


def test_verdict_numbers_never_round_across_the_target() -> None:
    from benchmarks.quality.common import beside as _beside

    assert _beside(24.99966, 25.0) == "24.9997"  # 25.00 would read as met
    assert _beside(25.004, 25.0) == "25.004"  # not 25.00: equal to the bound is another side of it
    assert _beside(24.77003, 24.77) == "24.77003"  # above 24.77 must not read as 24.77
    assert _beside(26.4412, 24.77) == "26.44"
    assert _beside(19.987, 20.0, 1) == "19.99"  # an attribute margin 0.013 points short of 20 must not read 20.0
    assert _beside(0.0651, 0.065, 3) == "0.0651"  # a KL over its bound must not read as the bound
