"""The feature cache of real-data statistics, the cost estimate and progress of `ganzoo eval`, the extraction
precision, and training-time evaluation (`--eval-every`)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import ganzoo
from ganzoo.cli import main
from ganzoo.errors import ConfigError
from ganzoo.metrics import domain as dom
from ganzoo.metrics.cache import FeatureCache, data_content_digest
from ganzoo.metrics.evaluate import CPU_SECONDS_PER_IMAGE, FeatureSet, evaluate
from ganzoo.metrics.frechet import FeatureStats

TEST_RECIPE = dom._Recipe(train_items=2000, test_items=500, epochs=3, batch_size=64, lr=3e-3, width=16, seed=0)
METRICS = "fd-dom,kid-dom,prdc-dom,classes"


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory):
    """A private cache with a shapes classifier (32 px RGB, small recipe) trained once for the module."""
    cache = tmp_path_factory.mktemp("ganzoo-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANZOO_CACHE", str(cache))
        mp.setitem(dom.RECIPES, "shapes", TEST_RECIPE)
        dom.get_domain_classifier("shapes", 32, 3, min_accuracy=None)
        yield cache


@pytest.fixture
def cache_env(module_cache, monkeypatch):
    """The module's cache with an empty feature folder per test; Inception unavailable (domain metrics are the
    fast ones)."""
    monkeypatch.setenv("GANZOO_CACHE", str(module_cache))
    monkeypatch.setitem(dom.RECIPES, "shapes", TEST_RECIPE)
    monkeypatch.setenv("GANZOO_INCEPTION_WEIGHTS", str(module_cache / "absent.pt"))
    feats = module_cache / "features"
    if feats.is_dir():
        for f in feats.iterdir():
            f.unlink()
    return module_cache


def _model():
    from ganzoo.testing import tiny_variant

    torch.manual_seed(0)
    m = tiny_variant("dcgan")
    return m


class Counter:
    """Counts the images the domain classifier sees."""

    def __init__(self, monkeypatch) -> None:
        self.images = 0
        orig = dom.DomainClassifier.features_and_probs

        def counted(clf, images):
            self.images += images.shape[0]
            return orig(clf, images)

        monkeypatch.setattr(dom.DomainClassifier, "features_and_probs", counted)


def _eval(model, n=8, seed=0, **kw):
    return evaluate(model, data="shapes", metrics=METRICS, n=n, seed=seed, batch_size=4, **kw)


def test_cache_hit_is_identical_and_skips_extraction(cache_env, monkeypatch) -> None:
    model, count = _model(), Counter(monkeypatch)
    first = _eval(model)
    assert count.images == 3 * 8  # reference, floor and samples
    files = sorted((cache_env / "features").glob("*.safetensors"))
    assert len(files) == 2 and all(f.name.startswith("shapes-") and "-n8-domain-" in f.name for f in files)
    count.images = 0
    second = _eval(model)
    assert count.images == 8  # the samples only: both real sets came from the cache
    assert second["scores"] == first["scores"] and second["baselines"] == first["baselines"]
    info = second["provenance"]["domain"]["reference_features"]
    assert info["reference"]["hit"] and info["floor"]["hit"] and len(info["reference"]["key"]) == 16
    assert not first["provenance"]["domain"]["reference_features"]["reference"]["hit"]


def test_feature_set_state_round_trip_is_exact() -> None:
    fs = FeatureSet(keep=5)
    fs.incep.update(torch.randn(7, 3) * 100 + 1e4)
    fs.incep.update(torch.randn(4, 3))
    fs.probs.append(torch.rand(11, 2))
    fs.num = 11
    back = FeatureSet(keep=5)
    back.load_state_tensors(fs.state_tensors())
    assert back.num == 11 and torch.equal(back.incep.cov(), fs.incep.cov())
    assert torch.equal(back.incep.mean(), fs.incep.mean()) and torch.equal(back.incep.features(), fs.incep.features())
    assert torch.equal(back.probs[0], fs.probs[0]) and back.dom.num == 0
    empty = FeatureStats.from_state_tensors(FeatureStats().state_tensors())
    assert empty.num == 0 and empty.features() is None


def test_key_changes_with_n_split_seed_and_extractor(cache_env, monkeypatch) -> None:
    from ganzoo.metrics.builtin_evaluators import real_features_key
    from ganzoo.metrics.evaluators import EvalContext

    model = _model()
    ident = {"name": "domain", "weights_sha256": "a" * 64}

    def key(n=8, seed=0, which="reference", ident=ident, precision="fp32", data_seed=0):
        ctx = EvalContext(data="shapes", n=n, seed=seed, data_seed=data_seed)
        return FeatureCache().path_for(real_features_key(model, ctx, which, ident, precision))

    base = key()
    variants = [
        key(n=9),
        key(seed=1),
        key(which="floor"),
        key(ident={"name": "domain", "weights_sha256": "b" * 64}),
        key(precision="bf16"),
        key(data_seed=1),
    ]
    assert len({base, *variants}) == 1 + len(variants)
    assert key() == base  # and stable


def test_data_content_digest_follows_the_files(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    d1 = data_content_digest(f"folder:{tmp_path}")
    assert d1.startswith("files:") and data_content_digest("shapes") == "procedural:shapes"
    (tmp_path / "b.png").write_bytes(b"yy")
    assert data_content_digest(f"folder:{tmp_path}") != d1


def test_damaged_entry_is_recomputed_with_a_note(cache_env, monkeypatch) -> None:
    model, count = _model(), Counter(monkeypatch)
    first = _eval(model)
    victim = sorted((cache_env / "features").glob("*.safetensors"))[0]
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF  # flip a bit in the tensor bytes: the integrity digest no longer matches
    victim.write_bytes(bytes(data))
    lines: list[str] = []
    count.images = 0
    second = _eval(model, log=lines.append)
    assert count.images == 8 + 8  # the damaged set again, and the samples
    assert any("damaged entry" in line and victim.name in line for line in lines)
    assert second["scores"] == first["scores"]
    # Recomputed and stored again: the next call reads both sets.
    count.images = 0
    _eval(model)
    assert count.images == 8


def test_no_cache_bypasses(cache_env, monkeypatch) -> None:
    model, count = _model(), Counter(monkeypatch)
    res = _eval(model, cache=False)
    assert (
        count.images == 24
        and not (cache_env / "features").exists()
        or not any((cache_env / "features").glob("*.safetensors"))
    )
    assert res["provenance"]["domain"]["reference_features"]["reference"] == {"hit": False, "cache": "disabled"}
    _eval(model)  # fills the cache
    count.images = 0
    _eval(model, cache=False)
    assert count.images == 24  # present entries are not read either


def test_eval_cli_no_cache_precision_and_estimate(cache_env, tmp_path, monkeypatch, capsys) -> None:
    model = _model()
    from ganzoo.train.checkpoint import save_model

    path = save_model(model, tmp_path / "m.safetensors", name="dcgan")
    # Pretend the domain classifier is slow: the estimate (3 x 8 images) then exceeds a minute.
    monkeypatch.setitem(CPU_SECONDS_PER_IMAGE, ("domain", "fp32"), 5.0)
    monkeypatch.setitem(CPU_SECONDS_PER_IMAGE, ("domain", "bf16"), 5.0)
    args = ["eval", str(path), "--data", "shapes", "-n", "8", "--metrics", METRICS, "--batch-size", "4"]
    assert main([*args, "--no-cache", "--feature-precision", "fp32", "--no-save"]) == 0
    err = capsys.readouterr().err
    estimate = [line for line in err.splitlines() if line.startswith("estimated")]
    assert len(estimate) == 1 and "2 min" in estimate[0] and "-n 2" in estimate[0] and "--no-cache" in estimate[0]
    assert not (cache_env / "features").exists() or not any((cache_env / "features").glob("*.safetensors"))
    assert main([*args, "--feature-precision", "bf16"]) == 0
    res = json.loads((tmp_path / "m.metrics.json").read_text())
    assert res["provenance"]["domain"]["reference_features"]["precision"] == "bf16"
    assert math.isfinite(res["scores"]["fd_dom"])
    capsys.readouterr()
    # Warm (same precision): only the 8 samples are left to extract, 40 s, under a minute: no estimate line.
    assert main([*args, "--feature-precision", "bf16", "--no-save"]) == 0
    assert "estimated" not in capsys.readouterr().err
    assert main([*args, "--feature-precision", "fp16"]) == 2
    with pytest.raises(ConfigError, match="feature precision"):
        _eval(model, feature_precision="half")


def test_bf16_domain_features_agree_with_fp32(cache_env) -> None:
    model = _model()
    a = _eval(model, n=16, feature_precision="fp32", cache=False)
    b = _eval(model, n=16, feature_precision="bf16", cache=False)
    fa, fb = a["baselines"]["real_vs_real"]["fd_dom"], b["baselines"]["real_vs_real"]["fd_dom"]
    assert fa != fb and abs(fa - fb) / fa < 0.1  # bf16 changes the numbers, but only a little


def test_progress_bar_appears_on_a_terminal_only(cache_env, monkeypatch, capsys) -> None:
    from ganzoo.metrics import builtin_evaluators as be

    shown: list[bool] = []
    orig = be._bar

    def spy(ctx, total, what):
        shown.append(ctx.progress)
        return orig(ctx, total, what)

    monkeypatch.setattr(be, "_bar", spy)
    _eval(_model(), log=lambda s: None)  # stderr is not a terminal under pytest
    assert "eval domain" not in capsys.readouterr().err
    monkeypatch.setattr(be, "BAR_DELAY_S", 0)  # the bar shows at once instead of after a few seconds
    _eval(_model(), progress=True)
    err = capsys.readouterr().err
    assert shown == [False, True]
    # Warm after the first call: the 8 samples only; "[elapsed<remaining" is tqdm's ETA.
    assert "eval domain" in err and "8/8" in err and "00:00<" in err


def test_headline_metrics_declared() -> None:
    from ganzoo import registry

    evs = {e.name: e.obj for e in registry.evaluators().values()}
    assert evs["inception"].headline == "fid" and evs["domain"].headline == "fd-dom"
    assert evs["modes-2d"].headline == "modes-2d"
    for e in evs.values():
        assert getattr(e, "headline", e.metrics[0]) in e.metrics


def test_cache_files_are_written_atomically(cache_env) -> None:
    _eval(_model())
    leftovers = [p for p in (cache_env / "features").iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


# ---- training-time evaluation ----------------------------------------------------------------------------------------


def _train_cfg(**kw):
    from ganzoo.train import TrainConfig

    base = dict(
        device="cpu", precision="fp32", progress=False, tensorboard=False, log_every=1, n_samples=4, sample_every=0
    )
    base.update(kw)
    return TrainConfig(**base)


def _fit(out, resume=False, **kw):
    from ganzoo.testing import tiny_variant
    from ganzoo.train import Trainer

    torch.manual_seed(0)
    t = Trainer(tiny_variant("dcgan"), _train_cfg(**kw), data="shapes", out=out, resume=resume)
    t.fit()
    return t


def _records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_eval_every_records_the_headline_metric(cache_env, tmp_path, monkeypatch) -> None:
    from ganzoo.utils.plots import eval_series

    count = Counter(monkeypatch)
    _fit(tmp_path / "run", steps=4, ckpt_every=0, eval_every=2, eval_n=8)
    evals = [r for r in _records(tmp_path / "run") if "eval/metric" in r]
    # Inception is unavailable here, so the headline falls back from FID to FD-dom.
    assert [r["step"] for r in evals] == [2, 4] and {r["eval/metric"] for r in evals} == {"fd-dom"}
    assert all(math.isfinite(r["eval/fd_dom"]) and r["eval/fd_dom_floor"] < r["eval/fd_dom"] for r in evals)
    assert count.images == 3 * 8 + 8  # the real sets once (then cached), 8 samples per evaluation
    assert set(eval_series(_records(tmp_path / "run"))) == {"fd_dom", "fd_dom_floor"}
    from PIL import Image

    from ganzoo.utils.plots import plot_panels

    panels = plot_panels(_records(tmp_path / "run"))
    assert [p.title.split(" ")[0] for p in panels if p.evaluation] == ["fd_dom"]  # the score has its own panel
    with Image.open(tmp_path / "run" / "losses.png") as im:
        assert im.height > 2 * 290  # the loss panels and the evaluation panel


def test_last_eval_record_is_what_ganzoo_eval_reports(cache_env, tmp_path, monkeypatch) -> None:
    # A run of seed 3 is scored on ganzoo eval's data and noise (seed 0), so the real sets' cache entries are shared
    # and the final record equals the evaluation of the exported model.

    _fit(tmp_path / "run", steps=4, ckpt_every=0, eval_every=4, eval_n=8, seed=3)
    last = [r for r in _records(tmp_path / "run") if "eval/metric" in r][-1]
    count = Counter(monkeypatch)
    res = evaluate(ganzoo.load(tmp_path / "run" / "model.safetensors"), data="shapes", metrics=["fd-dom"], n=8)
    assert count.images == 8  # only the samples: both real sets were the training-time evaluation's
    assert res["baselines"]["real_vs_real"]["fd_dom"] == last["eval/fd_dom_floor"]  # the same real sets
    # The same data and noise; scored inside the training loop the value differs from the loaded model's in the
    # last digits (5e-5 relative here), not more.
    assert res["scores"]["fd_dom"] == pytest.approx(last["eval/fd_dom"], rel=1e-3)


def test_resume_stays_exact_with_eval_every(cache_env, tmp_path) -> None:
    a = _fit(tmp_path / "a", steps=4, ckpt_every=2, eval_every=1, eval_n=4)
    _fit(tmp_path / "b", steps=2, ckpt_every=2, eval_every=1, eval_n=4)
    b = _fit(tmp_path / "b", resume=True, steps=4, ckpt_every=2, eval_every=1, eval_n=4)
    c = _fit(tmp_path / "c", steps=4, ckpt_every=2)  # no evaluation at all
    for (k, x), y, z in zip(
        a.variant.state_dict().items(), b.variant.state_dict().values(), c.variant.state_dict().values()
    ):
        assert torch.equal(x, y), k
        assert torch.equal(x, z), k  # evaluating changed nothing in training
    scores = [r["eval/fd_dom"] for r in _records(tmp_path / "a") if "eval/fd_dom" in r]
    resumed = [r["eval/fd_dom"] for r in _records(tmp_path / "b") if "eval/fd_dom" in r]
    assert len(scores) == 4 and scores == resumed


def test_eval_every_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="eval_every"):
        _train_cfg(eval_every=-1).validate()
    with pytest.raises(ConfigError, match="eval_n"):
        _train_cfg(eval_n=1).validate()


def test_train_cli_eval_every(cache_env, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    args = ["train", "dcgan", "--data", "shapes", "--steps", "2", "--out", str(out), "--no-progress"]
    args += ["--set", "image_size=32", "--set", "ngf=8", "--set", "ndf=8", "--batch-size", "4"]
    assert main([*args, "--eval-every", "2", "--eval-n", "4", "--sample-every", "0", "--device", "cpu"]) == 0
    evals = [r for r in _records(out) if "eval/metric" in r]
    assert len(evals) == 1 and evals[0]["step"] == 2 and evals[0]["eval/n"] == 4


def test_metrics_cli_caches_data_spec_sets(cache_env, monkeypatch, capsys) -> None:
    count = Counter(monkeypatch)
    args = ["metrics", "fd-dom", "shapes@test", "shapes@train", "--domain", "shapes", "--image-size", "32", "-n", "8"]
    assert main([*args, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert count.images == 16 and len(list((cache_env / "features").glob("shapes-*-n8-domain-*.safetensors"))) == 2
    assert main([*args, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert count.images == 16 and second["fd_dom"] == first["fd_dom"]
    assert second["provenance"]["features_cache"]["a"]["hit"] and second["provenance"]["features_cache"]["b"]["hit"]
    assert main([*args, "--json", "--no-cache"]) == 0
    assert count.images == 32 and json.loads(capsys.readouterr().out)["fd_dom"] == first["fd_dom"]


def test_feature_speed_benchmark_runs_and_chooses(shared_data_dir, tmp_path, monkeypatch, capsys) -> None:
    from benchmarks import feature_speed

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path))
    monkeypatch.setitem(dom.RECIPES, "mnist", TEST_RECIPE)  # seconds instead of a minute; accuracy is not at stake
    out = tmp_path / "fs.json"
    args = ["--data", f"mnist:{shared_data_dir / 'mnist'}", "--extractors", "domain", "-n", "64", "--rounds", "1"]
    args += ["--timing-images", "32", "--batch-sizes", "16", "--threads", "1", "--json", str(out)]
    assert feature_speed.main(args) == 0
    res = json.loads(out.read_text())
    agree = {(r["precision"], r["channels_last"]): r for r in res["agreement"]}
    assert set(agree) == {("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True)}
    assert agree[("fp32", False)]["rel_diff"] == 0 and abs(agree[("bf16", True)]["rel_diff"]) < 0.05
    assert len(res["timing"]) == 4 and all(r["img_per_s"] > 0 for r in res["timing"])
    assert res["chosen"]["domain"] in res["timing"]
    assert "| domain | bf16 | True |" in capsys.readouterr().out


def test_feature_speed_chooses_the_fastest_setting_that_agrees() -> None:
    from benchmarks.feature_speed import choose

    agree = [
        {"precision": "fp32", "channels_last": False, "rel_diff": 0.0},
        {"precision": "bf16", "channels_last": True, "rel_diff": 0.02},  # too far from fp32
        {"precision": "bf16", "channels_last": False, "rel_diff": -0.004},
    ]
    speed = [
        {"precision": "fp32", "channels_last": False, "batch_size": 16, "img_per_s": 4.0},
        {"precision": "bf16", "channels_last": True, "batch_size": 16, "img_per_s": 9.0},
        {"precision": "bf16", "channels_last": False, "batch_size": 64, "img_per_s": 6.0},
        {"precision": "bf16", "channels_last": False, "batch_size": 16, "img_per_s": 5.0},
    ]
    assert choose(agree, speed) == speed[2]
    assert choose(agree[:1], speed) == speed[0]


def test_unusable_cache_folder_costs_speed_not_the_evaluation(cache_env, tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    lines: list[str] = []
    store = FeatureCache(root=blocker / "features", log=lines.append)
    tensors, info = store.get_or_compute({"data": "shapes", "split": "train", "n": 1}, lambda: {"x": torch.ones(1)})
    assert torch.equal(tensors["x"], torch.ones(1)) and not info["hit"] and info["cache"].startswith("unusable")
    assert len(lines) == 1 and "computing without it" in lines[0]


class _PoolFeatures(torch.nn.Module):
    """A stand-in extractor: per-image channel means through a 1x1 convolution; records the batch sizes it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 1)
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.shape[0])
        return self.conv(x.float() / 127.5 - 1).mean((2, 3))


def test_inception_runs_in_chunks_on_cpu_with_the_same_features():
    from ganzoo.metrics.evaluate import INCEPTION_CPU_CHUNK

    torch.manual_seed(0)
    n = 2 * INCEPTION_CPU_CHUNK + 3
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8)
    ext = _PoolFeatures()
    fs = FeatureSet(inception=ext)
    fs.update(images)
    assert ext.seen == [INCEPTION_CPU_CHUNK, INCEPTION_CPU_CHUNK, 3]
    with torch.no_grad():
        whole = ext(images).double()
    assert fs.num == n
    torch.testing.assert_close(fs.incep.mean().double(), whole.mean(0), rtol=1e-6, atol=1e-6)
