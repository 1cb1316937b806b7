"""Evaluation on top of the metric functions: the domain classifier, evaluate(), `ganzoo eval`, `ganzoo metrics`,
and the metric registry (built-in and plugin metrics)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import ganzoo
import ganzoo.testing
from ganzoo import GANVariant, Phase, Stage, Task, registry
from ganzoo.cli import main
from ganzoo.data.base import DataRequest
from ganzoo.errors import GanzooError, UnknownNameError
from ganzoo.metrics import domain as dom
from ganzoo.metrics.evaluate import evaluate, metrics_path
from ganzoo.metrics.image import psnr
from ganzoo.plugins import register_plugin, unregister_plugin
from ganzoo.registry import MetricKind

BUILTIN_METRICS = [
    "psnr",
    "ssim",
    "l1",
    "grad-ratio",
    "hf-ratio",
    "fid",
    "kid",
    "prdc",
    "fd-dom",
    "kid-dom",
    "modes-2d",
    "auroc",
    "auprc",
    "r-precision",
]
# A small recipe keeps the tests' classifier to seconds; the default recipe is measured in docs/metrics.md.
TEST_RECIPE = dom._Recipe(train_items=2000, test_items=500, epochs=3, batch_size=64, lr=3e-3, width=16, seed=0)


def _has_inception() -> bool:
    from ganzoo.metrics.inception import find_inception_weights

    try:
        find_inception_weights(download=False)
        return True
    except (FileNotFoundError, ValueError):
        return False


@pytest.fixture(scope="module")
def domain_cache(tmp_path_factory: pytest.TempPathFactory):
    """A private cache holding a shapes classifier (32 px, RGB) trained once for the whole module."""
    cache = tmp_path_factory.mktemp("ganzoo-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANZOO_CACHE", str(cache))
        mp.setitem(dom.RECIPES, "shapes", TEST_RECIPE)
        t0 = time.perf_counter()
        clf = dom.get_domain_classifier("shapes", 32, 3, min_accuracy=None)
        yield {"cache": cache, "clf": clf, "seconds": time.perf_counter() - t0}


# ---- the domain classifier -------------------------------------------------------------------------------------------


def test_domain_classifier_trains_caches_and_refuses(domain_cache, monkeypatch) -> None:
    clf = domain_cache["clf"]
    assert clf.accuracy > 0.95, clf.meta
    assert clf.path is not None and clf.path.is_file()
    assert clf.path.parent == domain_cache["cache"] / "domain" and clf.path.name.startswith("shapes-32px-3ch-")
    # The second request reads the cache: training again would fail here.
    monkeypatch.setattr(dom, "train_domain_classifier", lambda *a, **k: pytest.fail("retrained despite the cache"))
    again = dom.get_domain_classifier("shapes", 32, 3)
    assert again.sha256 == clf.sha256 and again.accuracy == clf.accuracy
    with pytest.raises(dom.DomainClassifierError, match="test accuracy"):
        dom.get_domain_classifier("shapes", 32, 3, min_accuracy=min(1.0, clf.accuracy + 1e-6))
    assert issubclass(dom.DomainClassifierError, GanzooError)
    with pytest.raises(dom.DomainClassifierError, match="ring8"):
        dom.get_domain_classifier("ring8", 32, 3)
    # Predictions on real test images agree with the labels; features are 128-d.
    ds = ganzoo.registry.get("dataset", "shapes").obj(None, DataRequest("unconditional", "test", 32, 3))
    items = [ds[i] for i in range(64)]
    images = torch.stack([it["image"] for it in items])
    labels = torch.stack([it["label"] for it in items])
    feats, probs = clf.features_and_probs(images)
    assert feats.shape == (64, 128) and probs.shape == (64, 6)
    assert (probs.argmax(1) == labels).double().mean() > 0.9
    # [-1, 1] floats are scored like the uint8 images they come from.
    assert torch.allclose(clf.features_and_probs(images.float() / 127.5 - 1)[0], feats, atol=1e-4)


def test_inception_score_and_class_scores() -> None:
    confident = torch.eye(6).repeat(10, 1)
    assert dom.inception_score(confident)[0] == pytest.approx(6.0, rel=1e-6)
    assert dom.inception_score(torch.full((60, 6), 1 / 6))[0] == pytest.approx(1.0)
    s = dom.class_scores(torch.zeros(20, dtype=torch.long), 6)
    assert s["classes"] == 1 and s["class_kl"] == pytest.approx(math.log(6))


# ---- unconditional generation: a tiny trained DCGAN through `ganzoo eval` --------------------------------------------


def _train_tiny(name: str, out: Path, steps: int = 2) -> Path:
    from ganzoo.testing import tiny_variant

    torch.manual_seed(0)
    cfg = ganzoo.TrainConfig(
        steps=steps,
        device="cpu",
        precision="fp32",
        log_every=1,
        sample_every=0,
        ckpt_every=0,
        progress=False,
        tensorboard=False,
        num_workers=0,
    )
    ganzoo.Trainer(tiny_variant(name), cfg, out=out, variant_name=name).fit()
    return out


def test_eval_cli_on_tiny_dcgan_run(domain_cache, tmp_path, capsys) -> None:
    run = _train_tiny("dcgan", tmp_path / "run")
    fid = _has_inception()
    metrics = "fd-dom,kid-dom,prdc-dom,classes" + (",fid,kid" if fid else "")
    n = 4  # Inception costs ~0.3-1 s per image on these CPUs, and eval scores 3 N images (model, train, test)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANZOO_CACHE", str(domain_cache["cache"]))
        mp.setitem(dom.RECIPES, "shapes", TEST_RECIPE)
        assert main(["eval", str(run), "-n", str(n), "--metrics", metrics]) == 0
    out = capsys.readouterr().out
    assert "real-vs-real" in out and "fd_dom" in out and "wrote" in out
    res = json.loads((run / "metrics.json").read_text())
    assert metrics_path(run) == run / "metrics.json"
    assert res["task"] == "unconditional" and res["data"] == "shapes" and res["n"] == n and res["seed"] == 0
    for key in ("fd_dom", "kid_dom", "precision_dom", "coverage_dom", "class_coverage", "class_kl", "is_dom"):
        assert math.isfinite(res["scores"][key]), key
        assert key in res["baselines"]["real_vs_real"]
    # The floor is two real sets: it must beat 2 steps of training on every distance.
    assert res["baselines"]["real_vs_real"]["fd_dom"] < res["scores"]["fd_dom"]
    prov = res["provenance"]
    assert prov["domain"]["weights_sha256"] == domain_cache["clf"].sha256
    assert prov["domain"]["test_accuracy"] > 0.95 and "32x32" in prov["domain"]["resize"]
    assert prov["common"]["versions"]["ganzoo"] == ganzoo.__version__ and prov["common"]["n"] == n
    assert "train" in res["reference"]["reference_split"] and "test" in res["reference"]["floor_split"]
    if fid:
        assert math.isfinite(res["scores"]["fid"]) and "fid" in res["baselines"]["real_vs_real"]
        assert prov["inception"]["weights_sha256"].startswith("7ff4a85c") and "299" in prov["inception"]["resize"]
    # Asking for more accuracy than the classifier has is refused with one line, exit 2 (above 1 is refused as
    # an option value: tests/test_user_errors.py).
    need = domain_cache["clf"].accuracy + 1e-6
    if need <= 1.0:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GANZOO_CACHE", str(domain_cache["cache"]))
            mp.setitem(dom.RECIPES, "shapes", TEST_RECIPE)
            argv = ["eval", str(run), "-n", "4", "--metrics", "fd-dom", "--min-domain-accuracy", repr(need)]
            rc = main([*argv, "--no-save"])
        assert rc == 2 and "test accuracy" in capsys.readouterr().err


def test_evaluate_notes_instead_of_failing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path))
    monkeypatch.setenv("GANZOO_INCEPTION_WEIGHTS", str(tmp_path / "absent.pt"))
    model = ganzoo.testing.tiny_variant("dcgan")
    # folder data has no domain classifier and the weights are missing: both skipped with a note, no crash.
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    for i in range(6):
        Image.fromarray(np.full((32, 32, 3), i * 40, np.uint8)).save(img_dir / f"{i}.png")
    res = evaluate(model, data=f"folder:{img_dir}", n=3)
    assert res["scores"] == {} and any("Inception" in x for x in res["notes"])
    assert any("domain" in x for x in res["notes"])
    with pytest.raises(UnknownNameError, match="psnr"):
        evaluate(model, metrics=["psnr"], n=4)
    with pytest.raises(GanzooError):
        evaluate(model, data=f"folder:{img_dir}", metrics=["fid"], n=3)


# ---- 2D points -------------------------------------------------------------------------------------------------------


class _PerfectRing(nn.Module):
    """A 'generator' sampling the true ring mixture: the protocol must give 8 modes, ~99.7% high quality."""

    task = Task.UNCONDITIONAL
    name = "perfect-ring"
    image_size = 0
    channels = 0
    default_data = "ring8"

    def data_options(self) -> dict[str, Any]:
        return {}

    def generate(self, n: int | None = None, *, z: torch.Tensor | None = None, seed: int | None = None) -> torch.Tensor:
        from ganzoo.data.toy2d import RING8_STD, ring8_modes

        g = torch.Generator().manual_seed(seed or 0)
        n = len(z) if z is not None else (n or 64)
        modes = torch.randint(8, (n,), generator=g)
        return ring8_modes()[modes] + RING8_STD * (z if z is not None else torch.randn(n, 2, generator=g))


def test_evaluate_ring8_protocol() -> None:
    torch.manual_seed(0)
    model = ganzoo.testing.tiny_variant("vanilla.ring8")
    res = evaluate(model, n=2500)
    # 2D point data is unconditional generation to which only the mode protocol applies.
    assert res["task"] == "unconditional" and res["evaluators"] == ["modes-2d"] and res["n"] == 2500
    s, floor = res["scores"], res["baselines"]["real_vs_real"]
    assert 0 <= s["modes"] <= 8 and 0.0 <= s["high_quality"] <= 1.0
    assert floor["modes"] == 8 and floor["high_quality"] > 0.98 and floor["reverse_kl"] < 0.01
    assert res["provenance"]["modes-2d"]["std"] == 0.01 and res["provenance"]["modes-2d"]["modes"] == 8
    perfect = evaluate(_PerfectRing(), n=2500)["scores"]
    assert perfect["modes"] == 8 and perfect["high_quality"] > 0.98 and perfect["reverse_kl"] < 0.01


# ---- paired, super-resolution, anomaly, text: fake models of exactly those interfaces, and the real plugins ----------


@dataclass
class _FakeConfig:
    image_size: int = 32
    channels: int = 3
    scale: int = 4
    data: str = ""


class _Fake(GANVariant):
    Config = _FakeConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.p = nn.Parameter(torch.zeros(1))

    def stages(self) -> list[Stage]:
        return [Stage("g", (Phase("g", ("p",)),))]


class IdentityTranslator(_Fake):
    """Paired 'model' returning its input: its scores must equal the identity baseline."""

    name = "test-eval-identity"
    task = Task.PAIRED
    default_data_spec = "shapes-pairs"

    directions = ("a2b",)

    @torch.no_grad()
    def translate(self, images: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        return images


class BicubicSR(_Fake):
    """SR 'model' doing PIL bicubic upsampling of the 8-bit LR: its scores must equal the bicubic baseline."""

    name = "test-eval-bicubic"
    task = Task.SUPER_RESOLUTION
    default_data_spec = "shapes-sr"

    def data_options(self) -> dict[str, Any]:
        return {"scale": self.config.scale, "crop": self.config.image_size or None}

    @property
    def scale(self) -> int:
        return self.config.scale

    @torch.no_grad()
    def upscale(self, lr: torch.Tensor, tile: int = 0, overlap: int | None = None) -> torch.Tensor:
        from ganzoo.metrics.evaluate import bicubic_upsample
        from ganzoo.metrics.image import pm1_to_255

        s = self.config.scale
        up = bicubic_upsample(pm1_to_255(lr).to(torch.uint8), (lr.shape[-2] * s, lr.shape[-1] * s))
        return up.float() / 127.5 - 1


class _Plugin:
    @ganzoo.hookimpl
    def ganzoo_register_variants(self, register):
        register(IdentityTranslator)
        register(BicubicSR)

    @ganzoo.hookimpl
    def ganzoo_register_metrics(self, register):
        def max_abs(pred, ref, *, y_channel=False, shave=0):
            return {"max-abs": max(float((p.double() - r.double()).abs().max()) for p, r in zip(pred, ref))}

        register("max-abs", max_abs, tasks=("paired",), help="largest pixel difference", kind="paired")


@pytest.fixture
def fake_plugin():
    register_plugin(_Plugin(), name="test-eval-plugin")
    try:
        yield
    finally:
        unregister_plugin("test-eval-plugin")


def test_paired_identity_model_through_cli(fake_plugin, tmp_path, capsys) -> None:
    path = ganzoo.save_model(ganzoo.create("test-eval-identity"), tmp_path / "ident.safetensors")
    assert main(["eval", str(path), "-n", "6", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (tmp_path / "ident.metrics.json").is_file()
    assert res["task"] == "paired" and set(res["scores"]) == {"psnr", "ssim", "l1", "grad-ratio", "hf-ratio"}
    for k in ("psnr", "ssim", "l1", "grad-ratio", "hf-ratio"):
        assert res["scores"][k] == pytest.approx(res["baselines"]["identity"][k])
    assert res["provenance"]["image"]["n"] == 6


def test_sr_bicubic_model_matches_baseline(fake_plugin) -> None:
    res = evaluate(ganzoo.create("test-eval-bicubic", image_size=64), n=4)
    assert res["task"] == "super_resolution" and "Y channel" in res["provenance"]["image"]["protocol"]
    assert res["scores"]["psnr"] == pytest.approx(res["baselines"]["bicubic"]["psnr"])
    assert res["scores"]["ssim"] == pytest.approx(res["baselines"]["bicubic"]["ssim"])
    # Bicubic is blurrier than the HR images: both sharpness ratios below 1, the same for the model and the baseline.
    for k in ("grad-ratio", "hf-ratio"):
        assert 0 < res["scores"][k] < 1 and res["scores"][k] == pytest.approx(res["baselines"]["bicubic"][k])


def test_sr_bicubic_model_on_set5(fake_plugin, shared_data_dir) -> None:
    """evaluate()'s SR path reproduces the published bicubic number on Set5 (whole images, mixed sizes)."""
    model = ganzoo.create("test-eval-bicubic", image_size=0)
    res = evaluate(model, data=f"sr-pairs:{shared_data_dir / 'sr' / 'Set5'}", n=5, batch_size=1)
    assert 28.415 <= res["scores"]["psnr"] < 28.435, res["scores"]  # 28.42-28.43 dB to two decimals
    assert res["baselines"]["bicubic"]["psnr"] == pytest.approx(res["scores"]["psnr"])
    # A model trained on 96 px crops is scored on the whole images too (the default batch size, mixed sizes).
    cropped = evaluate(
        ganzoo.create("test-eval-bicubic", image_size=96), data=f"sr-pairs:{shared_data_dir / 'sr' / 'Set5'}"
    )
    assert cropped["scores"]["psnr"] == pytest.approx(res["scores"]["psnr"])


def test_sr_eval_scores_a_grayscale_file_as_its_own_luma_like_sr_eval(fake_plugin, shared_data_dir) -> None:
    """Set14 holds one grayscale file (img_003) and one RGB file with equal channels (img_010): the file's mode
    decides, as in ``ganzoo sr-eval``, and the bicubic row is the published 25.99 dB."""
    model = ganzoo.create("test-eval-bicubic", image_size=96)
    res = evaluate(model, data=f"sr-pairs:{shared_data_dir / 'sr' / 'Set14'}")
    assert 25.985 <= res["scores"]["psnr"] < 26.0, res["scores"]


@pytest.mark.parametrize("name", ["pix2pix", "cyclegan", "srgan", "ganomaly", "attngan"])
def test_real_plugins_evaluate(name: str) -> None:
    if name not in ganzoo.list_variants(tags=False):
        pytest.skip(f"variant {name} is not installed")
    torch.manual_seed(0)
    model = ganzoo.testing.tiny_variant(name)
    # The core's scenes evaluator trains a classifier first (minutes; tests/test_scene_eval.py runs it small): the
    # plugin's DAMSM R-precision is scored here.
    res = evaluate(model, n=4, metrics="r-precision-damsm" if name == "attngan" else None)
    assert res["task"] == str(model.task)
    if name in ("pix2pix", "cyclegan"):
        assert math.isfinite(res["scores"]["psnr"]) and "identity" in res["baselines"]
    elif name == "srgan":
        assert math.isfinite(res["scores"]["psnr"]) and "bicubic" in res["baselines"]
    elif name == "ganomaly":
        assert 0 <= res["scores"]["auroc"] <= 1 and res["baselines"]["chance"]["auroc"] == 0.5
    else:
        assert res["evaluators"] == ["attngan-r-precision-damsm"] and res["notes"] == []
        assert 0.0 <= res["scores"]["r_precision_damsm"] <= 1.0
        for attr in ("shape", "colour", "size"):  # what the encoders tell apart on real images
            assert 0.0 <= res["scores"][f"damsm_swap_{attr}"] <= 1.0
        for baseline in ("real_images", "shuffled_captions"):
            assert 0.0 <= res["baselines"][baseline]["r_precision_damsm"] <= 1.0
        assert res["provenance"]["r-precision-damsm"]["runs"] == 3


def test_eval_cli_prints_attngan_damsm_r_precision(tmp_path, capsys) -> None:
    if "attngan" not in ganzoo.list_variants(tags=False):
        pytest.skip("variant attngan is not installed")
    torch.manual_seed(0)
    path = ganzoo.save_model(ganzoo.testing.tiny_variant("attngan"), tmp_path / "t2i.safetensors", name="attngan")
    assert main(["eval", str(path), "-n", "4", "--metrics", "r-precision-damsm"]) == 0
    out = capsys.readouterr().out
    assert "(no scores)" not in out and "real-images" in out and "shuffled-captions" in out
    row = next(line.split() for line in out.splitlines() if line.startswith("r_precision_damsm "))
    assert 0.0 <= float(row[1]) <= 1.0
    res = json.loads((tmp_path / "t2i.metrics.json").read_text())
    assert res["scores"]["r_precision_damsm"] == pytest.approx(float(row[1]), abs=1e-4)
    # The core's independent evaluator comes first (its r-precision is the task's headline), then AttnGAN's own.
    from ganzoo.metrics.evaluate import evaluators_for

    names = [e.name for e in evaluators_for(ganzoo.load(path), "shapes-captions")]
    assert names == ["scenes", "attngan-r-precision-damsm"]


def test_evaluators_registered_per_task() -> None:
    from ganzoo.metrics.evaluators import Evaluator

    table = registry.evaluators()
    want = {
        "inception": ("unconditional",),
        "domain": ("unconditional",),
        "modes-2d": ("unconditional",),
        "image-pairs": ("paired", "unpaired"),
        "sr": ("super_resolution",),
        "anomaly": ("anomaly",),
    }
    for name, tasks in want.items():
        entry = table[name]
        assert entry.plugin == "ganzoo" and entry.tasks == tasks and entry.help
        assert isinstance(entry.obj, Evaluator) and entry.obj.default_n >= 2 and entry.obj.metrics
    with pytest.raises(UnknownNameError, match="inception"):
        registry.get("evaluator", "inceptoin")


# ---- the registry and `ganzoo metrics` -------------------------------------------------------------------------------


class _UntypedMetric:
    @ganzoo.hookimpl
    def ganzoo_register_metrics(self, register):
        register("typed-ok", lambda s, y: 0.5, kind="scores", tasks=("anomaly",), help="fine on its own")
        register("no-kind", lambda a, b: 0.0, tasks=("paired",), help="no calling convention")


class _TypedMetric:
    @ganzoo.hookimpl
    def ganzoo_register_metrics(self, register):
        register("typed-ok", lambda s, y: 0.5, kind=MetricKind.SCORES, tasks=("anomaly",), help="typed")


def test_metric_kinds_are_typed_and_a_metric_without_one_disables_its_plugin() -> None:
    register_plugin(_UntypedMetric(), "untyped-metric")
    try:
        with pytest.warns(UserWarning, match="metric 'no-kind' has kind None; register it with kind= one of: paired"):
            table = registry.metrics()
        assert "no-kind" not in table and "typed-ok" not in table and "psnr" in table
    finally:
        unregister_plugin("untyped-metric")
    register_plugin(_TypedMetric(), "typed-metric")
    try:
        entry = registry.get("metric", "typed-ok")
        assert entry.kind is MetricKind.SCORES and not entry.kind.compares_image_sets
        assert entry.obj(torch.zeros(2), torch.ones(2)) == 0.5
        assert main(["metrics", "typed-ok", "a", "b"]) == 2  # not a metric of two image sets
    finally:
        unregister_plugin("typed-metric")
    assert [k.value for k in MetricKind if k.compares_image_sets] == ["paired", "distribution"]
    assert registry.get("metric", "psnr").kind is MetricKind.PAIRED
    assert registry.get("metric", "fid").kind is MetricKind.DISTRIBUTION


def test_builtin_metrics_registered() -> None:
    table = registry.metrics()
    for name in BUILTIN_METRICS:
        assert name in table, name
        assert callable(table[name].obj) and isinstance(table[name].kind, MetricKind) and table[name].help
    assert registry.get("metric", "auroc").obj(torch.tensor([0.1, 0.9]), torch.tensor([0, 1])) == 1.0
    out = registry.get("metric", "modes-2d").obj(_PerfectRing().generate(500), data="ring8")
    assert out["modes"] == 8
    with pytest.raises(UnknownNameError, match="psnr"):
        registry.get("metric", "psnrr")


def _write(folder: Path, name: str, arr: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(folder / name)


def test_metrics_cli_pairs_folders(fake_plugin, tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    refs = [rng.integers(0, 256, (24, 20, 3), dtype=np.uint8) for _ in range(3)]
    preds = [np.clip(r.astype(int) + rng.integers(-9, 10, r.shape), 0, 255).astype(np.uint8) for r in refs]
    for i, (p, r) in enumerate(zip(preds, refs)):
        _write(pred, f"img_{i}.png", p)
        _write(ref, f"img_{i}.png", r)
    assert main(["metrics", "psnr", str(pred), str(ref), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = psnr(
        [torch.from_numpy(p).permute(2, 0, 1) for p in preds], [torch.from_numpy(r).permute(2, 0, 1) for r in refs]
    )
    assert got["psnr"] == pytest.approx(want) and got["n"] == 3 and len(got["per_image"]) == 3
    assert main(["metrics", "ssim", str(pred), str(ref), "--y-channel", "--shave", "2"]) == 0
    assert "ssim:" in capsys.readouterr().out
    # A plugin's own folder metric works through the same command.
    assert main(["metrics", "max-abs", str(pred), str(ref), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max-abs"] <= 9
    # User mistakes: one line on stderr, exit 2.
    _write(ref, "img_9.png", refs[0])
    assert main(["metrics", "psnr", str(pred), str(ref)]) == 2
    assert "img_9" in capsys.readouterr().err
    (ref / "img_9.png").unlink()
    _write(pred, "img_0.png", preds[0][:20])
    assert main(["metrics", "psnr", str(pred), str(ref)]) == 2
    assert "sizes must match" in capsys.readouterr().err
    assert main(["metrics", "psnr", str(tmp_path / "nope"), str(ref)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["metrics", "auroc", str(pred), str(ref)]) == 2
    assert "psnr" in capsys.readouterr().err
    assert main(["metrics", "pnsr", str(pred), str(ref)]) == 2
    assert "Did you mean 'psnr'" in capsys.readouterr().err


def test_metrics_cli_set5_bicubic(shared_data_dir, tmp_path, capsys) -> None:
    """The SR literature's check: PIL-bicubic x4 of Set5 LR scores 28.42-28.43 dB (Y channel, 4 px shaved)."""
    set5 = shared_data_dir / "sr" / "Set5"
    out = tmp_path / "bicubic"
    out.mkdir()
    for lr_path in sorted((set5 / "LR_x4").glob("*.png")):
        with Image.open(set5 / "HR" / lr_path.name) as hr, Image.open(lr_path) as lr:
            lr.convert("RGB").resize(hr.size, Image.Resampling.BICUBIC).save(out / lr_path.name)
    assert main(["metrics", "psnr", str(out), str(set5 / "HR"), "--y-channel", "--shave", "4", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 5 and 28.415 <= res["psnr"] < 28.435, res["psnr"]


def test_metrics_cli_distribution(domain_cache, tmp_path, capsys) -> None:
    """fd-dom between two folders (and FID when the Inception weights are installed), N images each."""
    ds = ganzoo.registry.get("dataset", "shapes").obj(None, DataRequest("unconditional", "test", 32, 3))
    for i in range(12):
        _write(tmp_path / "a", f"{i}.png", ds[i]["image"].permute(1, 2, 0).numpy())
        _write(tmp_path / "b", f"{i}.png", ds[100 + i]["image"].permute(1, 2, 0).numpy())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANZOO_CACHE", str(domain_cache["cache"]))
        mp.setitem(dom.RECIPES, "shapes", TEST_RECIPE)
        args = ["metrics", "fd-dom", str(tmp_path / "a"), str(tmp_path / "b"), "--domain", "shapes", "--image-size"]
        assert main([*args, "32", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["fd_dom"] > 0 and res["n_a"] == res["n_b"] == 12
    assert res["provenance"]["weights_sha256"] == domain_cache["clf"].sha256
    assert main(["metrics", "fd-dom", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "domain" in capsys.readouterr().err
    if _has_inception():
        assert main(["metrics", "fid", str(tmp_path / "a"), "shapes@test", "-n", "2", "--image-size", "32"]) == 0
        assert "fid:" in capsys.readouterr().out


@pytest.mark.parametrize("n1,n2,d", [(5, 7, 40), (30, 12, 64), (50, 50, 20)])
def test_frechet_from_features_matches_covariance_formula(n1: int, n2: int, d: int) -> None:
    from ganzoo.metrics.evaluate import frechet_from_features
    from ganzoo.metrics.frechet import FeatureStats, frechet_distance

    g = torch.Generator().manual_seed(n1 + d)
    a = torch.randn(n1, d, generator=g, dtype=torch.float64) * 3 + 1
    b = torch.randn(n2, d, generator=g, dtype=torch.float64) ** 2
    sa, sb = FeatureStats(), FeatureStats()
    sa.update(a)
    sb.update(b)
    want = frechet_distance(sa.mean(), sa.cov(), sb.mean(), sb.cov())
    # The eigendecomposition route takes square roots of round-off eigenvalues of rank-deficient covariances, so
    # the two agree to ~1e-8 relative, not to machine precision.
    assert frechet_from_features(a, b) == pytest.approx(want, rel=1e-7)


def test_stacked_mnist_classes_from_per_channel_predictions() -> None:
    torch.manual_seed(0)
    meta = {"num_classes": 10, "channels": 1, "test_accuracy": 1.0, "spec": "mnist:x", "image_size": 28}
    clf = dom.DomainClassifier(dom.DomainNet(1, 10), {**meta, "recipe": {"test_items": 0}}, "0" * 64)
    images = torch.randint(0, 256, (16, 3, 28, 28), dtype=torch.uint8)
    stacked = clf.predict_stacked(images)
    per = [clf.predict(images[:, c : c + 1]) for c in range(3)]
    assert torch.equal(stacked, per[0] * 100 + per[1] * 10 + per[2])
    assert int(stacked.min()) >= 0 and int(stacked.max()) < 1000
    with pytest.raises(dom.DomainClassifierError, match="1-channel"):
        clf.features_and_probs(images)
