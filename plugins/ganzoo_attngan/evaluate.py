"""Evaluate an AttnGAN model on ``shapes-captions`` (PROTOCOLS.md section 5):

* R-precision, independent: each generated image ranks its caption among 100 (1 true + 99 captions of other
  scenes) by the log-likelihood of the caption's attributes under the scene-attribute classifier of
  :mod:`ganzoo.metrics.scenes`, trained apart from the model on its own data seed; top-1, mean +- std over the
  runs (fresh noise and distractors per run). Real images give the ceiling; images generated from shuffled
  captions the chance-level baseline.
* R-precision, DAMSM: the same ranking by cosine similarity of the model's own DAMSM image and sentence vectors
  (100 = 1 true + 99 random captions). The generator was trained against these encoders, so this number is biased
  in the model's favour; it is kept for comparison with the paper's protocol.
* Attribute accuracy: what the scene classifier reads (count, colour, shape, size and place of each object) from
  generated images of held-out (val split) captions.
* Colour swap: change one word (the first object's colour) of a caption, keep the noise, and count how often the
  classifier sees the new colour (and the old shape still there).
* DAMSM word swaps (``damsm_swap_shape``/``_colour``/``_size``): how often the model's DAMSM scores a real image's
  own caption above every caption made from it by changing its first shape (colour, size) word: whether the
  encoders that guide the generator can tell that attribute at all.

``python -m ganzoo_attngan.evaluate MODEL --out DIR`` writes ``DIR/results.json`` and the pictures of the docs.
``ganzoo eval`` reports the independent R-precision and attribute accuracy through the core's ``scenes`` evaluator;
this plugin registers the DAMSM R-precision as :class:`DamsmRPrecisionEvaluator` (metric ``r-precision-damsm``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganzoo.data.captions import COLOURS, SHAPES, SIZES, ShapesCaptionsDataset, scene_captions, tokenize
from ganzoo.errors import ConfigError
from ganzoo.metrics.ranking import r_precision
from ganzoo.metrics.scenes import (
    DEFAULT_MIN_ACCURACY,
    SceneRecipe,
    attribute_accuracy,
    caption_attrs,
    get_scene_classifier,
    scene_r_precision,
)


def _images(ds: ShapesCaptionsDataset, indices: list[int]) -> tuple[Tensor, Tensor, list[str]]:
    items = ds.__getitems__(indices)
    x = torch.stack([it["image"] for it in items]).float().div(127.5).sub(1)
    return x, torch.stack([it["attrs"] for it in items]), [it["caption"] for it in items]


@torch.no_grad()
def generate_all(model: Any, captions: list[str], seed: int, chunk: int = 250) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(captions), chunk):
        caps = captions[i : i + chunk]
        z = torch.randn(len(caps), model.config.nz, generator=gen)
        eps = torch.randn(len(caps), model.config.c_dim, generator=gen)
        out.append(model.generate_from_captions(caps, z=z, eps=eps).float().cpu())
    return torch.cat(out)


def _mean_std(xs: list[float]) -> dict[str, float]:
    t = torch.tensor(xs, dtype=torch.float64)
    return {"mean": float(t.mean()), "std": float(t.std()) if len(xs) > 1 else 0.0, "runs": len(xs)}


def _swap_colour(attrs: Tensor, gen: torch.Generator) -> Tensor:
    """Scenes with object a's colour replaced by another one, different from object b's too."""
    new = attrs.clone()
    for i in range(len(attrs)):
        banned = {int(attrs[i, 1]), int(attrs[i, 5])}
        choices = [c for c in range(len(COLOURS)) if c not in banned]
        new[i, 1] = choices[int(torch.randint(len(choices), (1,), generator=gen))]
    return new


@torch.no_grad()
def evaluate(
    model: Any,
    n: int = 1000,
    runs: int = 10,
    seed: int = 0,
    recipe: SceneRecipe | None = None,
    log: Any = None,
    min_accuracy: float | None = DEFAULT_MIN_ACCURACY,
) -> dict[str, Any]:
    """Every measure of the module docstring on the first ``n`` val scenes of data seed ``seed``.

    :param model: a trained AttnGAN model.
    :param n: held-out captions (val split scenes).
    :param runs: repetitions with fresh noise and distractors.
    :param seed: the data seed of the val split (the model's training seed).
    :param recipe: the scene classifier's training recipe (default: the core's, cached).
    :param log: receives progress lines.
    :param min_accuracy: refuse a scene classifier below this mean held-out accuracy (``None``: no check).
    :returns: a JSON-serialisable dict (``r_precision_*``, ``r_precision_damsm_*``, ``attr_acc_*``, ...).
    """
    size, channels = model.image_size, model.config.channels
    t0 = time.perf_counter()
    clf = get_scene_classifier(size, channels, recipe=recipe, min_accuracy=min_accuracy, log=log)
    val = ShapesCaptionsDataset(size, channels, "val", seed, vocab=model.vocab, max_words=model.config.max_words)
    pool_n = max(n, len(val))
    real, attrs, captions = _images(val, list(range(n)))
    pool = caption_attrs(_images(val, list(range(pool_n)))[2])
    train_caps = {
        c for a in ShapesCaptionsDataset.scene_attrs(seed, "train", 10_000).tolist() for c in scene_captions(a)
    }
    seen = sum(c in train_caps for c in captions) / n

    txt = model.embed_captions(captions).float().cpu()
    real_vec = model.embed_images(real).float().cpu()
    real_lp = clf.log_probs(real)
    shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 99))
    res: dict[str, Any] = {"n": n, "runs": runs, "image_size": size, "val_captions_seen_in_train": seen}
    res["classifier"] = clf.provenance
    rp = {k: [] for k in ("gen", "real", "shuf", "damsm_gen", "damsm_real", "damsm_shuf")}
    acc_gen, acc_shuf = [], []
    swap_ok, swap_shape_kept, orig_ok = [], [], []
    res["attr_acc_real"] = attribute_accuracy(clf.predict(real), attrs)
    for r in range(runs):
        fake = generate_all(model, captions, seed=1000 + r)
        # Image i of the baseline was generated from caption shuffle[i] but is asked to find caption i.
        shuf_fake = generate_all(model, [captions[int(j)] for j in shuffle], seed=1000 + r)
        fake_lp, shuf_lp = clf.log_probs(fake), clf.log_probs(shuf_fake)
        for key, lp in (("gen", fake_lp), ("real", real_lp), ("shuf", shuf_lp)):
            rp[key].append(scene_r_precision(lp, attrs, pool, torch.Generator().manual_seed(r)))
        for key, vec in (
            ("gen", model.embed_images(fake)),
            ("real", real_vec),
            ("shuf", model.embed_images(shuf_fake)),
        ):
            rp["damsm_" + key].append(r_precision(vec.float().cpu(), txt, generator=torch.Generator().manual_seed(r)))
        pred = clf.predict(fake)
        acc_gen.append(attribute_accuracy(pred, attrs))
        acc_shuf.append(attribute_accuracy(clf.predict(shuf_fake), attrs))
        # Colour swap: same template, same noise, one word changed.
        gen = torch.Generator().manual_seed(500 + r)
        swapped = _swap_colour(attrs, gen)
        which = [scene_captions(attrs[i].tolist()).index(captions[i]) for i in range(n)]
        swap_caps = [scene_captions(swapped[i].tolist())[which[i]] for i in range(n)]
        sp = clf.predict(generate_all(model, swap_caps, seed=1000 + r))
        swap_ok.append(float((sp[:, 1] == swapped[:, 1]).float().mean()))
        swap_shape_kept.append(float((sp[:, 2] == pred[:, 2]).float().mean()))
        orig_ok.append(float((pred[:, 1] == attrs[:, 1]).float().mean()))
    for key, name in (("gen", "generated"), ("real", "real"), ("shuf", "shuffled")):
        res[f"r_precision_{name}"] = _mean_std(rp[key])
        res[f"r_precision_damsm_{name}"] = _mean_std(rp["damsm_" + key])
    for key, accs in (("attr_acc_generated", acc_gen), ("attr_acc_shuffled", acc_shuf)):
        res[key] = {k: _mean_std([a[k] for a in accs]) for k in accs[0]}
    res["colour_swap"] = {
        "new_colour_seen": _mean_std(swap_ok),
        "original_colour_seen": _mean_std(orig_ok),
        "shape_kept": _mean_std(swap_shape_kept),
        "chance": 1 / len(COLOURS),
    }
    res["attention"] = attention_localisation(model, n, seed)
    res["eval_seconds"] = round(time.perf_counter() - t0, 1)
    return res


@torch.no_grad()
def attention_localisation(model: Any, n: int = 1000, seed: int = 0) -> dict[str, float]:
    """Where the colour words look: over two-shape val scenes, the share of each colour word's attention (last
    attentive stage) falling on the half of the image holding the shape it names (0.5 = no localisation)."""
    val = ShapesCaptionsDataset(model.image_size, model.config.channels, "val", seed)
    attrs = val.attrs[val.attrs[:, 0] == 2][:n]
    caps = [scene_captions(a.tolist())[0] for a in attrs]  # "a <size> <colour> <shape> <relation> a ..."
    shares = {"a": [], "b": []}
    for start in range(0, len(caps), 250):
        det = model.generate_details(caps[start : start + 250], seed=seed + start)
        attn = det["attention"][-1].float().cpu()  # (B, L, h, w)
        for i, words in enumerate(det["words"]):
            a = attrs[start + i]
            for obj, col, place in (("a", 1, 4), ("b", 5, 8)):
                pos = (
                    words.index(COLOURS[int(a[col])])
                    if obj == "a"
                    else len(words) - 1 - words[::-1].index(COLOURS[int(a[col])])
                )
                m = attn[i, pos]
                h, w = m.shape
                half = {0: m[:, : w // 2], 1: m[:, w // 2 :], 2: m[: h // 2], 3: m[h // 2 :]}[int(a[place])]
                shares[obj].append(float(half.sum() / m.sum()))
    return {f"colour_{k}_on_its_shape_half": sum(v) / len(v) for k, v in shares.items()} | {"scenes": len(caps)}


# Attribute words of shapes-captions whose one-word changes the DAMSM word-swap scores try.
SWAP_WORDS = {"shape": SHAPES, "colour": COLOURS, "size": SIZES}


@torch.no_grad()
def damsm_word_swaps(
    model: Any, image_vecs: Tensor, captions: list[str], caption_vecs: Tensor | None = None
) -> dict[str, float]:
    """For each attribute of :data:`SWAP_WORDS`: the share of images whose own caption gets a higher DAMSM sentence
    score (cosine of image and sentence vectors) than every caption made from it by changing its first word of
    that attribute to another word of it (chance: 1 / the attribute's word count). Captions without such a word
    take no part; an attribute no caption names is left out. ``caption_vecs``: the captions' sentence vectors when
    the caller has them already (else ``model.embed_captions``)."""
    img = torch.nn.functional.normalize(image_vecs.float().cpu(), dim=1)
    if caption_vecs is None:
        caption_vecs = model.embed_captions(captions)
    own = torch.nn.functional.normalize(caption_vecs.float().cpu(), dim=1)
    own_score = (img * own).sum(1)
    out: dict[str, float] = {}
    for attr, words in SWAP_WORDS.items():
        owners, changed = [], []
        for i, cap in enumerate(captions):
            toks = tokenize(cap)  # as the model's vocabulary reads it
            at = next((k for k, t in enumerate(toks) if t in words), None)
            if at is None:
                continue
            owners += [i] * (len(words) - 1)
            changed += [" ".join([*toks[:at], w, *toks[at + 1 :]]) for w in words if w != toks[at]]
        if not owners:
            continue
        idx = torch.tensor(owners)
        alt = torch.nn.functional.normalize(model.embed_captions(changed).float().cpu(), dim=1)
        beaten = (alt * img[idx]).sum(1) >= own_score[idx]
        # Per caption: how many of its changed captions score at least as high as it (0: it wins every time).
        losses = torch.zeros(len(captions), dtype=torch.long).index_add_(0, idx, beaten.long())
        asked = idx.unique()
        out[f"damsm_swap_{attr}"] = float((losses[asked] == 0).float().mean())
    return out


# ---- evaluators for `ganzoo eval` ------------------------------------------------------------------------------------


def _val_items(model: Any, ctx: Any, count: int) -> tuple[Any, list[int]]:
    ds = ctx.dataset(model, "val")
    return ds, list(range(min(count, len(ds))))


class DamsmRPrecisionEvaluator:
    """R-precision scored by the model's **own** DAMSM encoders: each of N images generated from held-out (val)
    captions ranks its caption among 100 (1 true + 99 others of the first max(N, 100) val captions) by cosine
    similarity of the DAMSM image and sentence vectors; top-1, mean over ``runs`` runs of fresh noise and
    distractors. The generator was trained against these encoders, so the number favours the model: the
    independent R-precision is the core ``scenes`` evaluator's ``r-precision``. Real val images and images generated
    from shuffled captions are the baselines. Three runs by default, not the paper's 10: the DAMSM image encoder
    makes a run cost about 45 s of CPU at N = 1,000, and this number is secondary."""

    name = "attngan-r-precision-damsm"
    tasks = ("text_to_image",)
    metrics = ("r-precision-damsm",)
    default_n = 1000
    help = "R-precision by the model's own DAMSM encoders (biased: the generator trained against them)"
    candidates = 100

    def __init__(self, runs: int = 3) -> None:
        self.runs = runs

    def applies(self, model: Any, data: str) -> bool:
        """AttnGAN models: this R-precision needs their DAMSM text and image encoders."""
        from .variant import AttnGAN

        return isinstance(model, AttnGAN)

    def evaluate(self, model: Any, ctx: Any) -> Any:
        """Scores on the first N captions of the val split of ``ctx.data``."""
        from ganzoo.metrics.evaluate import iter_batches, to_pm1
        from ganzoo.metrics.evaluators import Evaluation
        from ganzoo.tasks import TextToImageGenerator, require

        require(model, TextToImageGenerator, purpose="the DAMSM R-precision evaluator")
        ds, pool_idx = _val_items(model, ctx, max(ctx.n, self.candidates))
        n = min(ctx.n, len(pool_idx))
        batches = list(iter_batches(ds, pool_idx, ctx.batch_size))
        pool = [c for b in batches for c in b["caption"]]
        if len(pool) < self.candidates:
            raise ConfigError(
                f"R-precision draws {self.candidates} candidate captions; the val split of {ctx.data} has {len(pool)}"
            )
        captions = pool[:n]
        real = torch.cat([to_pm1(b["image"], "cpu") for b in batches])[:n]
        txt = model.embed_captions(pool).float().cpu()
        real_vec = model.embed_images(real).float().cpu()
        shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(ctx.seed + 99))
        rp_gen, rp_real, rp_shuf = [], [], []
        for r in range(self.runs):
            ctx.say(f"DAMSM R-precision run {r + 1}/{self.runs}: {n} images")
            fake_vec = model.embed_images(generate_all(model, captions, seed=1000 + r)).float().cpu()
            rp_gen.append(r_precision(fake_vec, txt, generator=torch.Generator().manual_seed(r)))
            rp_real.append(r_precision(real_vec, txt, generator=torch.Generator().manual_seed(r)))
            # Image i was generated from caption shuffle[i] but is asked to find caption i.
            shuf = generate_all(model, [captions[int(j)] for j in shuffle], seed=1000 + r)
            rp_shuf.append(
                r_precision(model.embed_images(shuf).float().cpu(), txt, generator=torch.Generator().manual_seed(r))
            )
        gen = _mean_std(rp_gen)
        swaps = damsm_word_swaps(model, real_vec, captions, txt[:n])  # txt embeds the pool, captions = pool[:n]
        out = Evaluation(scores={"r_precision_damsm": gen["mean"], "r_precision_damsm_std": gen["std"], **swaps})
        out.baselines["real_images"] = {"r_precision_damsm": _mean_std(rp_real)["mean"]}
        out.baselines["shuffled_captions"] = {"r_precision_damsm": _mean_std(rp_shuf)["mean"]}
        out.provenance["r-precision-damsm"] = {
            "protocol": f"top-1 retrieval of the true caption among {self.candidates} (1 true + "
            f"{self.candidates - 1} drawn from the caption pool) by cosine similarity of the model's own DAMSM image "
            f"and sentence vectors (biased: the generator was trained against them); mean over {self.runs} runs "
            "(noise seeds 1000 + run, distractor seeds = run)",
            "reference": f"{ctx.data} val split, images of captions 0..{n - 1}, caption pool 0..{len(pool) - 1}",
            "word_swaps": "damsm_swap_<attribute>: share of the N real val images whose own caption has a higher DAMSM "
            "sentence score than every caption made from it by changing its first word of that attribute "
            f"({', '.join(f'{a}: {len(w)} words' for a, w in SWAP_WORDS.items())}; chance 1 / words)",
            "n": n,
            "runs": self.runs,
        }
        return out


# The captions of the docs' sample grid (and of the quality benchmark's picture): one object, then two objects with
# their relation, in the phrasings of shapes-captions.
SHOWCASE_CAPTIONS = (
    "a large red circle on the left",
    "a small blue square at the top",
    "a large yellow triangle at the bottom",
    "a large green cross on the right",
    "a small white circle above a large purple square",
    "a large blue triangle left of a small yellow circle",
    "there is a small red square below a large green circle",
    "a large purple cross and a small white triangle , the purple one on the left",
)


def pictures(model: Any, out: Path, seed: int = 0) -> list[Path]:
    """The grids and attention maps of the docs page."""
    from ganzoo.utils.images import save_grid

    from .maps import save_attention_maps

    per = 6
    imgs = model.generate_from_captions([c for c in SHOWCASE_CAPTIONS for _ in range(per)], seed=seed)
    paths = [save_grid(imgs, out / "attngan_samples.png", nrow=per)]
    # One word changed per row pair: the colour of the first object, same noise.
    swaps = ["a large red circle on the left", "a large blue circle on the left", "a large green circle on the left"]
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(per, model.config.nz, generator=g)
    eps = torch.randn(per, model.config.c_dim, generator=g)
    rows = [model.generate_from_captions([c] * per, z=z, eps=eps) for c in swaps]
    paths.append(save_grid(torch.cat(rows), out / "attngan_colour_swap.png", nrow=per))
    details = model.generate_details(["a small white circle above a large purple square"], n=2, seed=seed)
    paths.append(save_attention_maps(details, out / "attngan_attention.png", rows=2, cell=64))
    details = model.generate_details(["a large blue triangle left of a small yellow circle"], n=2, seed=seed + 1)
    paths.append(save_attention_maps(details, out / "attngan_attention2.png", rows=2, cell=64))
    val = ShapesCaptionsDataset(model.image_size, model.config.channels, "val", 0)
    real = torch.stack([val[i]["image"] for i in range(48)]).float().div(127.5).sub(1)
    paths.append(save_grid(real, out / "attngan_real.png", nrow=8))
    return paths


def main(argv: list[str] | None = None) -> int:
    from ganzoo.api import load

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="run directory or .safetensors file of a text-to-image model")
    p.add_argument(
        "--out", default="attngan_eval", help="folder for results.json and the pictures (default: %(default)s)"
    )
    p.add_argument("--n", type=int, default=1000, help="held-out captions (val split scenes) (default: %(default)s)")
    p.add_argument(
        "--runs",
        type=int,
        default=10,
        help="repetitions with fresh noise and distractors, for mean +- std (default: %(default)s)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch (default: %(default)s)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load(args.model)
    res = evaluate(model, args.n, args.runs, log=lambda m: print(m, file=sys.stderr))
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    for path in pictures(model, out):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
