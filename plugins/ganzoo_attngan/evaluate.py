"""Evaluate an AttnGAN model on ``shapes-captions`` (PROTOCOLS.md section 5):

* R-precision: rank each generated image's true caption among 100 (1 true + 99 random) by cosine similarity of the
  DAMSM image and sentence vectors; top-1, mean +- std over 10 runs (fresh noise and distractors per run). Real
  images give the ceiling; images generated from shuffled captions the chance-level baseline.
* Attribute accuracy: a small classifier trained on real ``shapes-captions`` train images reads count, colour,
  shape, size and place of each object from generated images of held-out (val split) captions.
* Colour swap: change one word (the first object's colour) of a caption, keep the noise, and count how often the
  classifier sees the new colour (and the old shape still there).

``python -m ganzoo_attngan.evaluate MODEL --out DIR`` writes ``DIR/results.json`` and the pictures of the docs.
R-precision and attribute accuracy are also registered as evaluators of the ``text_to_image`` task
(:class:`RPrecisionEvaluator`, :class:`AttributesEvaluator`), so ``ganzoo eval`` reports them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.data.captions import ATTR_CLASSES, ATTR_NAMES, COLOURS, ShapesCaptionsDataset, scene_captions
from ganzoo.errors import ConfigError
from ganzoo.metrics.ranking import r_precision


class AttributeClassifier(nn.Module):
    """A small CNN with one softmax head per attribute of :data:`ATTR_NAMES`."""

    def __init__(self, channels: int = 3, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        ch = channels
        for i, out in enumerate((width, width * 2, width * 4, width * 4)):
            layers += [nn.Conv2d(ch, out, 3, 1 if i == 0 else 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
            ch = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(ch * 16, 256), nn.ReLU(True), nn.Linear(256, sum(ATTR_CLASSES)))

    def forward(self, x: Tensor) -> list[Tensor]:
        return list(self.fc(self.features(x)).split(ATTR_CLASSES, dim=1))


def _targets(attrs: Tensor) -> Tensor:
    t = attrs.clone()
    t[:, 0] = t[:, 0] - 1  # count 1/2 -> class 0/1
    return t


def _images(ds: ShapesCaptionsDataset, indices: list[int]) -> tuple[Tensor, Tensor, list[str]]:
    items = ds.__getitems__(indices)
    x = torch.stack([it["image"] for it in items]).float().div(127.5).sub(1)
    return x, torch.stack([it["attrs"] for it in items]), [it["caption"] for it in items]


def train_classifier(image_size: int, channels: int, steps: int = 1500, batch: int = 64, seed: int = 0) -> nn.Module:
    """Train :class:`AttributeClassifier` on real train-split images (fresh jitter every epoch)."""
    torch.manual_seed(seed)
    ds = ShapesCaptionsDataset(image_size, channels, "train", seed)
    clf = AttributeClassifier(channels)
    opt = torch.optim.Adam(clf.parameters(), 1e-3)
    perm = torch.randperm(steps * batch, generator=torch.Generator().manual_seed(seed)).tolist()
    clf.train()
    for s in range(steps):
        x, attrs, _ = _images(ds, perm[s * batch : (s + 1) * batch])
        t = _targets(attrs)
        loss = sum(F.cross_entropy(o, t[:, j], ignore_index=-1) for j, o in enumerate(clf(x)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return clf.eval()


@torch.no_grad()
def predict(clf: nn.Module, images: Tensor, chunk: int = 500) -> Tensor:
    preds = [
        torch.stack([o.argmax(1) for o in clf(images[i : i + chunk].float())], 1) for i in range(0, len(images), chunk)
    ]
    p = torch.cat(preds)
    p[:, 0] += 1
    return p


def attribute_accuracy(pred: Tensor, attrs: Tensor) -> dict[str, float]:
    """Accuracy per attribute over the scenes where it exists, their mean, and all-attributes-right."""
    out = {}
    for j, name in enumerate(ATTR_NAMES):
        present = attrs[:, j] >= 0
        out[name] = float((pred[present, j] == attrs[present, j]).float().mean())
    out["mean"] = sum(out[n] for n in ATTR_NAMES) / len(ATTR_NAMES)
    present = attrs >= 0
    out["all_correct"] = float(((pred == attrs) | ~present).all(1).float().mean())
    return out


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


def load_or_train_classifier(
    path: str | Path | None, image_size: int, channels: int, steps: int, seed: int = 0
) -> tuple[nn.Module, float]:
    """The attribute classifier cached at ``path`` (a safetensors file) or a new one, saved there; and the
    seconds spent training it (0 when loaded)."""
    from safetensors.torch import load_file, save_file

    if path is not None and Path(path).is_file():
        clf = AttributeClassifier(channels)
        clf.load_state_dict(load_file(str(path)))
        return clf.eval(), 0.0
    t0 = time.perf_counter()
    with torch.enable_grad():
        clf = train_classifier(image_size, channels, steps, seed=seed)
    if path is not None:
        save_file({k: v.contiguous() for k, v in clf.state_dict().items()}, str(path))
    return clf, time.perf_counter() - t0


@torch.no_grad()
def evaluate(
    model: Any,
    n: int = 1000,
    runs: int = 10,
    clf_steps: int = 1500,
    seed: int = 0,
    classifier: str | Path | None = None,
) -> dict[str, Any]:
    size, channels = model.image_size, model.config.channels
    t0 = time.perf_counter()
    clf, clf_seconds = load_or_train_classifier(classifier, size, channels, clf_steps, seed)
    val = ShapesCaptionsDataset(size, channels, "val", seed, vocab=model.vocab, max_words=model.config.max_words)
    real, attrs, captions = _images(val, list(range(n)))
    train_caps = {
        c for a in ShapesCaptionsDataset.scene_attrs(seed, "train", 10_000).tolist() for c in scene_captions(a)
    }
    seen = sum(c in train_caps for c in captions) / n

    txt = model.embed_captions(captions).float().cpu()
    real_vec = model.embed_images(real).float().cpu()
    shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 99))
    res: dict[str, Any] = {"n": n, "runs": runs, "image_size": size, "val_captions_seen_in_train": seen}
    res["classifier_train_seconds"] = round(clf_seconds, 1)
    rp_gen, rp_real, rp_shuf, acc_gen, acc_shuf = [], [], [], [], []
    swap_ok, swap_shape_kept, orig_ok = [], [], []
    real_pred = predict(clf, real)
    res["attr_acc_real"] = attribute_accuracy(real_pred, attrs)
    for r in range(runs):
        fake = generate_all(model, captions, seed=1000 + r)
        fake_vec = model.embed_images(fake).float().cpu()
        g = torch.Generator().manual_seed(r)
        rp_gen.append(r_precision(fake_vec, txt, generator=g))
        rp_real.append(r_precision(real_vec, txt, generator=torch.Generator().manual_seed(r)))
        # Baseline: image i was generated from caption shuffle[i] but is asked to find caption i.
        shuf_fake = generate_all(model, [captions[int(j)] for j in shuffle], seed=1000 + r)
        rp_shuf.append(
            r_precision(model.embed_images(shuf_fake).float().cpu(), txt, generator=torch.Generator().manual_seed(r))
        )
        pred = predict(clf, fake)
        acc_gen.append(attribute_accuracy(pred, attrs))
        acc_shuf.append(attribute_accuracy(predict(clf, shuf_fake), attrs))
        # Colour swap: same template, same noise, one word changed.
        gen = torch.Generator().manual_seed(500 + r)
        swapped = _swap_colour(attrs, gen)
        which = [scene_captions(attrs[i].tolist()).index(captions[i]) for i in range(n)]
        swap_caps = [scene_captions(swapped[i].tolist())[which[i]] for i in range(n)]
        swap_fake = generate_all(model, swap_caps, seed=1000 + r)
        sp = predict(clf, swap_fake)
        swap_ok.append(float((sp[:, 1] == swapped[:, 1]).float().mean()))
        swap_shape_kept.append(float((sp[:, 2] == pred[:, 2]).float().mean()))
        orig_ok.append(float((pred[:, 1] == attrs[:, 1]).float().mean()))
    res["r_precision_generated"] = _mean_std(rp_gen)
    res["r_precision_real"] = _mean_std(rp_real)
    res["r_precision_shuffled"] = _mean_std(rp_shuf)
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


# ---- evaluators for `ganzoo eval` ------------------------------------------------------------------------------------


def _val_items(model: Any, ctx: Any, count: int) -> tuple[Any, list[int]]:
    ds = ctx.dataset(model, "val")
    return ds, list(range(min(count, len(ds))))


class RPrecisionEvaluator:
    """R-precision with the model's own DAMSM encoders (PROTOCOLS.md section 5): each of N images generated from
    held-out (val) captions ranks its caption among 100 (1 true + 99 others of the first max(N, 100) val captions);
    top-1, mean over ``runs`` runs of fresh noise and distractors. Real val images are the ceiling, images generated
    from shuffled captions the chance level. For N >= 100 the numbers equal :func:`evaluate`'s."""

    name = "attngan-r-precision"
    tasks = ("text_to_image",)
    metrics = ("r-precision",)
    default_n = 1000
    help = "R-precision (top-1 of 100 captions, DAMSM encoders); real images and shuffled captions as baselines"
    candidates = 100

    def __init__(self, runs: int = 10) -> None:
        self.runs = runs

    def applies(self, model: Any, data: str) -> bool:
        """AttnGAN models: R-precision needs their DAMSM text and image encoders."""
        from .variant import AttnGAN

        return isinstance(model, AttnGAN)

    def evaluate(self, model: Any, ctx: Any) -> Any:
        """Scores on the first N captions of the val split of ``ctx.data``."""
        from ganzoo.metrics.evaluate import iter_batches, to_pm1
        from ganzoo.metrics.evaluators import Evaluation
        from ganzoo.tasks import TextToImageGenerator, require

        require(model, TextToImageGenerator, purpose="the R-precision evaluator")
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
            ctx.say(f"R-precision run {r + 1}/{self.runs}: {n} images")
            fake_vec = model.embed_images(generate_all(model, captions, seed=1000 + r)).float().cpu()
            rp_gen.append(r_precision(fake_vec, txt, generator=torch.Generator().manual_seed(r)))
            rp_real.append(r_precision(real_vec, txt, generator=torch.Generator().manual_seed(r)))
            # Image i was generated from caption shuffle[i] but is asked to find caption i.
            shuf = generate_all(model, [captions[int(j)] for j in shuffle], seed=1000 + r)
            rp_shuf.append(
                r_precision(model.embed_images(shuf).float().cpu(), txt, generator=torch.Generator().manual_seed(r))
            )
        gen = _mean_std(rp_gen)
        out = Evaluation(scores={"r_precision": gen["mean"], "r_precision_std": gen["std"]})
        out.baselines["real_images"] = {"r_precision": _mean_std(rp_real)["mean"]}
        out.baselines["shuffled_captions"] = {"r_precision": _mean_std(rp_shuf)["mean"]}
        out.provenance["r-precision"] = {
            "protocol": f"top-1 retrieval of the true caption among {self.candidates} (1 true + "
            f"{self.candidates - 1} drawn from the caption pool) by cosine similarity of the model's DAMSM image and "
            f"sentence vectors; mean over {self.runs} runs (noise seeds 1000 + run, distractor seeds = run)",
            "reference": f"{ctx.data} val split, images of captions 0..{n - 1}, caption pool 0..{len(pool) - 1}",
            "n": n,
            "runs": self.runs,
        }
        return out


class AttributesEvaluator:
    """Attribute accuracy on ``shapes-captions`` (PROTOCOLS.md section 5): a small classifier trained on real
    train images (cached in ``$GANZOO_CACHE/attngan``) reads count, colour, shape, size and place of each object
    from images generated for N held-out captions; real images are the ceiling, shuffled captions the chance
    level."""

    name = "attngan-attributes"
    tasks = ("text_to_image",)
    metrics = ("attributes",)
    default_n = 1000
    help = "attribute accuracy of generated shapes-captions scenes (trained attribute classifier)"

    def __init__(self, runs: int = 10, clf_steps: int = 1500) -> None:
        self.runs, self.clf_steps = runs, clf_steps

    def applies(self, model: Any, data: str) -> bool:
        """AttnGAN models on ``shapes-captions`` (the only data with attribute labels)."""
        from ganzoo.metrics.evaluate import spec_name

        from .variant import AttnGAN

        return isinstance(model, AttnGAN) and spec_name(data) == "shapes-captions"

    def classifier_path(self, model: Any, seed: int) -> Path:
        """Where the attribute classifier for ``model``'s image size and channels is cached."""
        from ganzoo.utils.download import cache_dir

        name = f"attributes-{model.image_size}px-{model.channels}ch-{self.clf_steps}steps-seed{seed}.safetensors"
        return cache_dir() / "attngan" / name

    def evaluate(self, model: Any, ctx: Any) -> Any:
        """Mean attribute accuracy and all-attributes-right over the first N val scenes."""
        from ganzoo.metrics.evaluate import iter_batches, to_pm1
        from ganzoo.metrics.evaluators import Evaluation
        from ganzoo.tasks import TextToImageGenerator, require

        require(model, TextToImageGenerator, purpose="the attributes evaluator")
        path = self.classifier_path(model, ctx.data_seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file():
            ctx.say(f"training the attribute classifier ({self.clf_steps} steps), cached at {path}")
        clf, _ = load_or_train_classifier(path, model.image_size, model.channels, self.clf_steps, ctx.data_seed)
        ds, idx = _val_items(model, ctx, ctx.n)
        batches = list(iter_batches(ds, idx, ctx.batch_size))
        captions = [c for b in batches for c in b["caption"]]
        attrs = torch.cat([b["attrs"] for b in batches])
        real = torch.cat([to_pm1(b["image"], "cpu") for b in batches])
        n = len(captions)
        shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(ctx.seed + 99))
        acc_gen, acc_shuf = [], []
        for r in range(self.runs):
            ctx.say(f"attribute run {r + 1}/{self.runs}: {n} images")
            acc_gen.append(attribute_accuracy(predict(clf, generate_all(model, captions, seed=1000 + r)), attrs))
            shuf = generate_all(model, [captions[int(j)] for j in shuffle], seed=1000 + r)
            acc_shuf.append(attribute_accuracy(predict(clf, shuf), attrs))
        real_acc = attribute_accuracy(predict(clf, real), attrs)

        def pick(accs: list[dict[str, float]]) -> dict[str, float]:
            return {
                "attr_acc": _mean_std([a["mean"] for a in accs])["mean"],
                "attr_all_correct": _mean_std([a["all_correct"] for a in accs])["mean"],
            }

        out = Evaluation(scores=pick(acc_gen))
        out.baselines["real_images"] = pick([real_acc])
        out.baselines["shuffled_captions"] = pick(acc_shuf)
        out.provenance["attributes"] = {
            "protocol": "per-attribute accuracy (count, colours, shapes, sizes, places) of a CNN trained on real "
            f"train images, mean over attributes and over {self.runs} runs; all_correct = every attribute right",
            "classifier": str(path),
            "classifier_steps": self.clf_steps,
            "reference": f"{ctx.data} val split, items 0..{n - 1}",
            "n": n,
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
    p.add_argument(
        "--clf-steps", type=int, default=1500, help="training steps of the attribute classifier (default: %(default)s)"
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch (default: %(default)s)")
    p.add_argument("--classifier", help="attribute classifier weights (.safetensors): loaded if present, else saved")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load(args.model)
    res = evaluate(model, args.n, args.runs, args.clf_steps, classifier=args.classifier)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    for path in pictures(model, out):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
