"""The independent judge of shapes-captions scenes (ganzoo.metrics.scenes) and the core ``scenes`` evaluator."""

from __future__ import annotations

import json

import pytest
import torch

import ganzoo
import ganzoo.testing
from ganzoo.data.captions import (
    ATTR_NAMES,
    N_TEMPLATES,
    ShapesCaptionsDataset,
    mnist_captions,
    parse_caption,
    scene_captions,
)
from ganzoo.errors import ConfigError
from ganzoo.metrics import scenes

# Converges in seconds at 16 px (held-out mean ~0.997); the default recipe is measured in docs/metrics.md.
TEST_RECIPE = scenes.SceneRecipe(batch_size=32, lr=2e-3, max_steps=300, check_every=100, val_items=400, width=16)
SIZE = 16  # the tiny attngan's output size


# ---- parse_caption -----------------------------------------------------------------------------------------------


def test_parse_caption_round_trips_every_template() -> None:
    attrs = ShapesCaptionsDataset.scene_attrs(5, "val", 300)
    assert {1, 2} == set(attrs[:, 0].tolist())
    for a in attrs.tolist():
        captions = scene_captions(a)
        assert len(captions) == N_TEMPLATES
        for c in captions:
            assert parse_caption(c) == a
            # Case, punctuation and spacing are not part of the words.
            assert parse_caption("  " + c.upper().replace(" ,", ",") + ".") == a


def test_parse_caption_rejects_foreign_sentences() -> None:
    foreign = [
        "",
        "a red circle on the left",  # no size
        "a small red circle on the left please",
        "a small red circle in the middle",
        "a small red circle left of a large red square",  # two shapes never share a colour
        mnist_captions([7, 0, 1, 0])[0],
    ]
    for sentence in foreign:
        assert parse_caption(sentence) is None, sentence
    with pytest.raises(ConfigError, match="not a shapes-captions phrasing"):
        scenes.caption_attrs(["a small red circle on the left", "a dog"])


# ---- distractors and ranking ---------------------------------------------------------------------------------------


def test_distractors_never_share_the_true_attributes() -> None:
    pool = ShapesCaptionsDataset.scene_attrs(0, "val", 2000)
    true = pool[:300]
    picks = scenes.draw_distractors(true, pool, 99, torch.Generator().manual_seed(0))
    assert picks.shape == (300, 99)
    assert all(len(set(row)) == 99 for row in picks.tolist())  # without replacement
    assert (pool[picks] != true[:, None, :]).any(2).all()
    # Another generator draws other distractors.
    assert not torch.equal(picks, scenes.draw_distractors(true, pool, 99, torch.Generator().manual_seed(1)))
    same = torch.cat([pool[:5], pool[:1].repeat(200, 1)])
    with pytest.raises(ConfigError, match="only 4 of other scenes"):
        scenes.draw_distractors(pool[:1], same, 5, torch.Generator())


def _one_hot_log_probs(attrs: torch.Tensor) -> list[torch.Tensor]:
    t = scenes.targets_of(attrs)
    out = []
    for j, k in enumerate(scenes.ATTR_CLASSES):
        lp = torch.full((len(attrs), k), -20.0)
        present = t[:, j] >= 0
        lp[present, t[present, j]] = 0.0
        out.append(lp)
    return out


def test_ranking_scores_stated_attributes_and_counts_ties_as_misses() -> None:
    pool = ShapesCaptionsDataset.scene_attrs(0, "val", 500)
    true = pool[:100]
    perfect = _one_hot_log_probs(true)
    assert scenes.scene_r_precision(perfect, true, pool, torch.Generator().manual_seed(0)) == 1.0
    flat = [torch.zeros(100, k) for k in scenes.ATTR_CLASSES]
    # Every one-shape caption ties: nothing distinguishes them, so no image finds its caption.
    one = true[true[:, 0] == 1]
    flat_one = [x[: len(one)] for x in flat]
    assert scenes.scene_r_precision(flat_one, one, pool[pool[:, 0] == 1], torch.Generator()) == 0.0
    scores = scenes.caption_scores(perfect, pool)
    assert scores.shape == (100, 500)
    assert torch.equal(scores[torch.arange(100), torch.arange(100)], torch.zeros(100, dtype=torch.float64))
    acc = scenes.attribute_accuracy(true.clone(), true)
    assert acc["mean"] == 1.0 and acc["all_correct"] == 1.0
    wrong = true.clone()
    two = int((true[:, 0] == 2).nonzero()[0, 0])
    wrong[two, 5] = (wrong[two, 5] + 1) % 6
    assert scenes.attribute_accuracy(wrong, true)["colour_b"] < 1.0
    assert scenes.attribute_accuracy(wrong, true)["colour_a"] == 1.0


# ---- the classifier: training, cache, damage -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene_cache(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("scene-cache")
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANZOO_CACHE", str(cache))
        clf = scenes.get_scene_classifier(SIZE, 3, recipe=TEST_RECIPE, log=lines.append)
    return {"cache": cache, "clf": clf, "lines": lines}


def test_classifier_trains_to_high_held_out_accuracy(scene_cache) -> None:
    clf = scene_cache["clf"]
    assert clf.accuracy >= 0.97, clf.meta
    assert set(clf.meta["val_accuracy"]) == set(ATTR_NAMES)
    assert 0 < clf.meta["steps"] <= TEST_RECIPE.max_steps and clf.meta["steps"] % TEST_RECIPE.check_every == 0
    assert clf.meta["recipe"]["data_seed"] == scenes.EVALUATOR_DATA_SEED != 0
    assert any("training the scene-attribute classifier" in m for m in scene_cache["lines"])
    assert any(m.startswith("scene classifier step") for m in scene_cache["lines"])
    prov = clf.provenance
    assert prov["weights_sha256"] == clf.sha256 and len(clf.sha256) == 64
    assert clf.path == scene_cache["cache"] / "scenes" / scenes.scene_cache_path(SIZE, 3, TEST_RECIPE).name
    assert clf.path.name.startswith(f"shapes-captions-{SIZE}px-3ch-") and clf.path.parent.name == "scenes"


def test_cache_round_trips_and_a_damaged_file_is_retrained(scene_cache, monkeypatch) -> None:
    monkeypatch.setenv("GANZOO_CACHE", str(scene_cache["cache"]))
    first = scene_cache["clf"]
    lines: list[str] = []
    again = scenes.get_scene_classifier(SIZE, 3, recipe=TEST_RECIPE, log=lines.append)
    assert lines == []  # loaded, not trained
    assert again.sha256 == first.sha256 and again.meta == first.meta
    images = ShapesCaptionsDataset(SIZE, 3, "val", 0).__getitems__(list(range(32)))
    x = torch.stack([it["image"] for it in images])
    assert torch.equal(again.predict(x), first.predict(x))
    # Another recipe is another file.
    other = scenes.SceneRecipe(**{**TEST_RECIPE.__dict__, "max_steps": 301})
    assert scenes.scene_cache_path(SIZE, 3, other) != first.path
    # Damage a byte of the weights: the digest fails, the file is retrained with a note, then loads again.
    path = first.path
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    lines.clear()
    fixed = scenes.get_scene_classifier(SIZE, 3, recipe=TEST_RECIPE, log=lines.append)
    assert any("cached file unusable" in m for m in lines), lines
    assert any("training the scene-attribute classifier" in m for m in lines)
    assert fixed.accuracy >= 0.97 and fixed.path == path
    lines.clear()
    assert scenes.get_scene_classifier(SIZE, 3, recipe=TEST_RECIPE, log=lines.append).sha256 == fixed.sha256
    assert lines == []


def test_a_weak_classifier_refuses_to_score(scene_cache) -> None:
    clf = scene_cache["clf"]
    weak = scenes.SceneClassifier(clf.net, {**clf.meta, "val_mean_accuracy": 0.5}, clf.sha256, clf.path)
    with pytest.raises(scenes.SceneClassifierError, match="0.5000 mean held-out accuracy"):
        weak.require(scenes.DEFAULT_MIN_ACCURACY)
    with pytest.raises(scenes.SceneClassifierError, match="reads 3x16x16 images"):
        clf.log_probs(torch.zeros(2, 3, 32, 32))


def test_real_images_rank_high_and_shuffled_captions_near_chance(scene_cache) -> None:
    clf = scene_cache["clf"]
    ds = ShapesCaptionsDataset(SIZE, 3, "val", 0)  # a user data seed: scenes the classifier never saw
    items = ds.__getitems__(list(range(len(ds))))
    pool = scenes.caption_attrs([it["caption"] for it in items])
    assert torch.equal(pool, torch.stack([it["attrs"] for it in items]))
    n = 300
    lp = clf.log_probs(torch.stack([it["image"] for it in items[:n]]))
    real = scenes.scene_r_precision(lp, pool[:n], pool, torch.Generator().manual_seed(0))
    assert real >= 0.9, real
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    shuffled = scenes.scene_r_precision(lp, pool[:n][perm], pool, torch.Generator().manual_seed(0))
    assert shuffled <= 0.1, shuffled


# ---- the evaluator -----------------------------------------------------------------------------------------------


def test_scenes_evaluator_applies_to_text_to_image_on_shapes_captions() -> None:
    from ganzoo.metrics.builtin_evaluators import ScenesEvaluator
    from ganzoo.metrics.evaluate import evaluators_for

    if "attngan" not in ganzoo.list_variants(tags=False):
        pytest.skip("variant attngan is not installed")
    model = ganzoo.testing.tiny_variant("attngan")
    ev = ScenesEvaluator()
    assert ev.applies(model, "shapes-captions") and not ev.applies(model, "captions:/somewhere")
    assert not ev.applies(ganzoo.testing.tiny_variant("dcgan"), "shapes-captions")
    assert [e.name for e in evaluators_for(model, "shapes-captions")] == ["scenes", "attngan-r-precision-damsm"]
    assert ev.headline == "r-precision"


def test_ganzoo_eval_prints_the_independent_scores(scene_cache, tmp_path, monkeypatch, capsys) -> None:
    from ganzoo.cli import main

    if "attngan" not in ganzoo.list_variants(tags=False):
        pytest.skip("variant attngan is not installed")
    monkeypatch.setenv("GANZOO_CACHE", str(scene_cache["cache"]))
    monkeypatch.setattr(scenes, "DEFAULT_RECIPE", TEST_RECIPE)
    torch.manual_seed(0)
    path = ganzoo.save_model(ganzoo.testing.tiny_variant("attngan"), tmp_path / "t2i.safetensors", name="attngan")
    assert main(["eval", str(path), "-n", "8", "--data", "shapes-captions"]) == 0
    out = capsys.readouterr().out
    assert "(no scores)" not in out and "real-images" in out and "shuffled-captions" in out and "chance" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:] if line and line[0].isalpha()}
    for key in (
        "r_precision",
        "r_precision_std",
        "attr_count",
        "attr_colour_a",
        "attr_place_a",
        "attr_mean",
        "attr_all_correct",
        "attr_shape_a_margin_pts",
        "attr_min_margin_pts",
        "r_precision_damsm",
    ):
        assert key in rows, (key, out)
    assert 0.0 <= float(rows["r_precision"][0]) <= 1.0
    assert float(rows["r_precision"][1]) >= 0.9  # real images, the ceiling
    assert "scenes: ganzoo scene-attribute classifier" in out
    res = json.loads((tmp_path / "t2i.metrics.json").read_text())
    assert res["evaluators"] == ["scenes", "attngan-r-precision-damsm"]
    assert res["scores"]["r_precision"] == pytest.approx(float(rows["r_precision"][0]), abs=1e-4)
    assert res["baselines"]["chance"]["attr_count"] == 0.5 and res["baselines"]["chance"]["attr_colour_a"] == 1 / 6
    margin = res["scores"]["attr_shape_a_margin_pts"]
    floor = max(res["baselines"]["chance"]["attr_shape_a"], res["baselines"]["shuffled_captions"]["attr_shape_a"])
    assert margin == pytest.approx(100 * (res["scores"]["attr_shape_a"] - floor))
    assert res["provenance"]["r-precision"]["runs"] == 10 and res["provenance"]["r-precision"]["n"] == 8
    assert res["provenance"]["scenes"]["path"] == str(scenes.scene_cache_path(SIZE, 3, TEST_RECIPE))


def test_a_classifier_below_the_floor_is_a_note_or_an_error(scene_cache, monkeypatch) -> None:
    from ganzoo.metrics.builtin_evaluators import ScenesEvaluator
    from ganzoo.metrics.evaluators import EvalContext

    if "attngan" not in ganzoo.list_variants(tags=False):
        pytest.skip("variant attngan is not installed")
    monkeypatch.setenv("GANZOO_CACHE", str(scene_cache["cache"]))
    model = ganzoo.testing.tiny_variant("attngan").eval()
    ev = ScenesEvaluator(runs=1, recipe=TEST_RECIPE, min_accuracy=1.01)
    ctx = EvalContext(data="shapes-captions", n=8, metrics=frozenset(ev.metrics))
    with torch.no_grad():
        res = ev.evaluate(model, ctx)
    assert res.scores == {} and "scene metrics skipped" in res.notes[0] and "below the required 1.01" in res.notes[0]
    with pytest.raises(scenes.SceneClassifierError, match="below the required 1.01"):
        ev.evaluate(model, EvalContext(data="shapes-captions", n=8, metrics=frozenset(ev.metrics), explicit=True))
