"""AttnGAN: vocabulary and tokenization, captioned datasets, DAMSM, save/load with the vocabulary, the generate
command. (Both stages and exact resume are covered by the conformance kit in test_conformance.py.)"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.data.base import DataError, DataRequest
from ganzoo.data.captions import (
    ATTR_CLASSES,
    CaptionFolderDataset,
    ShapesCaptionsDataset,
    Vocabulary,
    scene_captions,
    tokenize,
)
from ganzoo.errors import ConfigError
from ganzoo.testing import stage_steps, tiny_variant
from ganzoo.train import TrainConfig, Trainer
from ganzoo.train.data import build_dataset, first_items, to_device


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny attngan trained 3 steps (both stages) and exported."""
    out = tmp_path_factory.mktemp("attngan")
    torch.manual_seed(0)
    v = tiny_variant("attngan")
    cfg = TrainConfig(steps=3, device="cpu", precision="fp32", progress=False, tensorboard=False, num_workers=0)
    cfg.sample_every = cfg.ckpt_every = 0
    t = Trainer(v, cfg, out=out)
    t.fit()
    return t, out / "model.safetensors"


# ---- vocabulary ------------------------------------------------------------------------------------------------------


def test_vocabulary_order_is_frequency_then_alphabet():
    v = Vocabulary().fit(["b a c", "a b", "a, D!", "zz"])
    assert v.words == ["<pad>", "<unk>", "a", "b", "c", "d", "zz"]
    assert (v.PAD, v.UNK) == (0, 1)
    assert tokenize("A Red-Circle, on the LEFT.") == ["a", "red", "circle", "on", "the", "left"]


def test_vocabulary_capacity_keeps_most_frequent():
    v = Vocabulary().fit(["a a a b b c"], max_size=4)
    assert v.words == ["<pad>", "<unk>", "a", "b"]
    assert v.ids("a c") == [2, v.UNK]


def test_unknown_words_are_unk_and_captions_truncate_and_pad():
    v = Vocabulary().fit(["a red circle on the left"])
    tokens, length = v.encode("a zebra circle", max_words=5)
    assert tokens.tolist() == [v.ids("a")[0], v.UNK, v.ids("circle")[0], 0, 0] and length == 3
    tokens, length = v.encode("a red circle on the left a red circle", max_words=4)
    assert length == 4 and tokens.tolist() == v.ids("a red circle on")
    tokens, length = v.encode("!!!", max_words=3)  # no word at all: one UNK, never an empty sequence
    assert tokens.tolist() == [v.UNK, 0, 0] and length == 1
    batch, lengths = v.encode_batch(["a red", "left"], max_words=3)
    assert batch.shape == (2, 3) and lengths.tolist() == [2, 1]


def test_vocabulary_rejects_bad_lists():
    with pytest.raises(DataError, match="must start with"):
        Vocabulary(["a", "b"])


# ---- datasets --------------------------------------------------------------------------------------------------------


def test_shapes_captions_items_are_deterministic_and_consistent():
    ds = ShapesCaptionsDataset(16, 3, "train", 0, max_words=12)
    a, b = ds[5], ds[5]
    assert torch.equal(a["image"], b["image"]) and a["caption"] == b["caption"]
    assert a["image"].dtype == torch.uint8 and a["image"].shape == (3, 16, 16)
    assert a["tokens"].shape == (12,) and a["tokens"].dtype == torch.int64
    assert a["caption"] in ds.captions_of(5)
    assert ds.vocab.decode(a["tokens"], int(a["length"])) == tokenize(a["caption"])
    # The same scene in a later epoch keeps its attributes (and so its captions) but may read another phrasing.
    assert torch.equal(ds[5 + len(ds)]["attrs"], a["attrs"])
    attrs = ds.attrs
    assert ((attrs[:, 0] == 1) | (attrs[:, 0] == 2)).all()
    for j, k in enumerate(ATTR_CLASSES[1:], start=1):
        col = attrs[:, j]
        assert col.max() < k and ((col >= 0) | (attrs[:, 0] == 1)).all()
    # Every split shares the train split's vocabulary.
    assert ShapesCaptionsDataset(16, 3, "val", 0).vocab == ShapesCaptionsDataset(16, 3, "train", 0).vocab


def test_one_attribute_change_changes_one_word():
    ds = ShapesCaptionsDataset(16, split="val")
    scene = ds.attrs[0].tolist()
    other = list(scene)
    other[1] = (scene[1] + 1) % 6 if (scene[1] + 1) % 6 != scene[5] else (scene[1] + 2) % 6
    for x, y in zip(scene_captions(scene), scene_captions(other)):
        diff = [(p, q) for p, q in zip(x.split(), y.split()) if p != q]
        assert len(x.split()) == len(y.split()) and len(diff) >= 1 and all(p != q for p, q in diff)


def test_prepare_data_adopts_the_training_vocabulary_which_the_data_options_pass_as_words():
    v = tiny_variant("attngan")
    assert v.vocab.is_empty and v.data_options()["vocab"] is None
    ds = build_dataset("shapes-captions", v)
    assert v.vocab.is_empty  # building the data leaves the model as it is
    v.prepare_data(ds)
    assert v.vocab == ds.vocab and v.vocab is not ds.vocab and len(v.vocab) <= v.config.vocab_size
    assert v.data_options()["vocab"] == v.vocab.to_list()  # plain words, no shared object
    assert build_dataset("shapes-captions", v, split="val").vocab == v.vocab
    # A model with a vocabulary (resumed, fine-tuned) keeps it, and its data tokenizes with it.
    own = tiny_variant("attngan")
    own.vocab.load(["<pad>", "<unk>", "red", "circle"])
    mine = build_dataset("shapes-captions", own)
    assert mine.vocab == own.vocab and mine[0]["tokens"].max() <= 3
    own.prepare_data(mine)
    assert own.vocab.words == ["<pad>", "<unk>", "red", "circle"]
    with pytest.raises(ConfigError, match="its own vocabulary"):
        own.prepare_data(ds)
    with pytest.raises(ConfigError, match="has none"):
        v.prepare_data([{"image": torch.zeros(3, 16, 16)}])


def test_resume_is_exact_and_keeps_the_vocabulary(tmp_path):
    def fit(out, steps, resume=False):
        torch.manual_seed(0)
        cfg = TrainConfig(steps=steps, device="cpu", precision="fp32", progress=False, tensorboard=False, num_workers=0)
        cfg.sample_every, cfg.ckpt_every, cfg.n_samples = 0, 1, 4
        t = Trainer(tiny_variant("attngan"), cfg, out=out, resume=resume, variant_name="attngan")
        t.fit()
        return t

    steps = stage_steps("attngan")  # into the last stage; twice that crosses the stage boundary on resume too
    straight = fit(tmp_path / "a", 2 * steps)
    fit(tmp_path / "b", steps)
    resumed = fit(tmp_path / "b", 2 * steps, resume=True)
    assert resumed.variant.vocab == straight.variant.vocab and not resumed.variant.vocab.is_empty
    assert resumed.dataset.vocab == straight.dataset.vocab
    a, b = straight.variant.state_dict(), resumed.variant.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _write_folder(root, n=3, captions=True):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (20, 24), (40 * i, 90, 200)).save(root / f"img{i}.png")
        if captions:
            (root / f"img{i}.txt").write_text(f"a blue picture number {i}\n\nanother caption {i}\n")


def test_captions_folder_reads_images_and_captions(tmp_path):
    _write_folder(tmp_path / "d")
    ds = CaptionFolderDataset(tmp_path / "d", image_size=16, channels=3)
    assert len(ds) == 3
    item = ds[4]  # virtual index: item 1
    assert item["image"].shape == (3, 16, 16)
    assert item["caption"] in ("a blue picture number 1", "another caption 1")
    assert ds.vocab.decode(item["tokens"], int(item["length"])) == tokenize(item["caption"])
    assert {ds[1 + 3 * k]["caption"] for k in range(20)} == {"a blue picture number 1", "another caption 1"}


def test_captions_folder_missing_or_empty_txt_is_a_data_error(tmp_path):
    _write_folder(tmp_path / "d", captions=False)
    with pytest.raises(DataError, match=r"caption file missing: .*img0\.txt"):
        CaptionFolderDataset(tmp_path / "d")
    _write_folder(tmp_path / "e")
    (tmp_path / "e" / "img2.txt").write_text("\n  \n")
    with pytest.raises(DataError, match=r"img2\.txt is empty"):
        CaptionFolderDataset(tmp_path / "e")


def test_captions_factory_checks_task_and_path(tmp_path):
    from ganzoo import registry

    entry = registry.get("dataset", "captions")
    with pytest.raises(DataError, match="needs a path"):
        entry.obj(None, DataRequest(task="text_to_image"))
    with pytest.raises(DataError, match="'shapes-captions' yields text_to_image data, but 'dcgan' is a unconditional"):
        build_dataset("shapes-captions", tiny_variant("dcgan"))
    _write_folder(tmp_path / "d")
    v = tiny_variant("attngan")
    ds = build_dataset(f"captions:{tmp_path / 'd'}", v)
    assert "blue" in ds.vocab.words and ds[0]["image"].shape[-1] == v.image_size


# ---- DAMSM -----------------------------------------------------------------------------------------------------------


def test_damsm_loss_is_finite_and_decreases():
    torch.manual_seed(0)
    v = tiny_variant("attngan", rnn_dropout=0.0)
    ds = build_dataset("shapes-captions", v)
    batch = to_device(first_items(ds, 8), torch.device("cpu"))
    params = list(v.text_encoder.parameters()) + list(v.image_encoder.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    v.train()
    losses = []
    for step in range(12):
        out = v.loss("damsm", batch, ganzoo.StepState(step, "damsm"))
        assert torch.isfinite(out["loss"]) and torch.isfinite(out["words"]) and torch.isfinite(out["sent"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < losses[0] * 0.9, losses


def test_word_attention_ignores_padding():
    from ganzoo_attngan.text import word_mask, word_scores

    torch.manual_seed(0)
    regions, words = torch.randn(3, 8, 2, 2), torch.randn(3, 8, 5)
    lengths = torch.tensor([5, 3, 1])
    mask = word_mask(lengths, 5)
    scores, attn = word_scores(regions, words, mask, 4.0, 5.0)
    words2 = words.clone()
    words2[1, :, 3:] = 99.0  # padding content must not matter
    words2[2, :, 1:] = -5.0
    scores2, _ = word_scores(regions, words2, mask, 4.0, 5.0)
    assert torch.allclose(scores, scores2) and scores.shape == (3, 3)
    assert attn.shape == (3, 5, 2, 2) and torch.isfinite(scores).all()


# ---- save / load / generate ------------------------------------------------------------------------------------------


def test_reloaded_model_keeps_vocabulary_and_generates_identically(trained):
    t, path = trained
    model = ganzoo.load(path)
    assert model.vocab == t.variant.vocab and not model.vocab.is_empty
    caps = ["a small red circle on the left", "a large blue square above a green zebra"]
    tok_a, len_a = model.tokenize(caps)
    tok_b, len_b = t.variant.tokenize(caps)
    assert torch.equal(tok_a, tok_b) and torch.equal(len_a, len_b)
    assert Vocabulary.UNK in tok_a[1].tolist()  # "zebra" was never seen
    again = ganzoo.load(path)
    x, y = model.generate_from_captions(caps, seed=3), again.generate_from_captions(caps, seed=3)
    assert x.shape == (2, 3, model.image_size, model.image_size) and torch.equal(x, y)
    assert not torch.equal(x, again.generate_from_captions(caps, seed=4))
    assert model.generate_from_captions("a red circle", n=3, seed=0).shape[0] == 3


def test_generate_details_and_embeddings(trained):
    _, path = trained
    model = ganzoo.load(path)
    out = model.generate_details(["a red circle on the left"], seed=0)
    assert [im.shape[-1] for im in out["images"]] == model.sizes
    assert out["attention"][0].shape[:2] == (1, model.config.max_words)
    assert out["words"][0] == tokenize("a red circle on the left")
    img_vec = model.embed_images(out["images"][-1])
    txt_vec = model.embed_captions(["a red circle on the left"])
    assert img_vec.shape == txt_vec.shape == (1, model.config.nef)


def test_generate_command_writes_pngs(trained, tmp_path):
    from ganzoo.cli import main

    _, path = trained
    out, maps = tmp_path / "g.png", tmp_path / "maps.png"
    rc = main(
        [
            "generate",
            str(path),
            "a red circle above a small blue square",
            "-n",
            "3",
            "-o",
            str(out),
            "--seed",
            "1",
            "--attention-maps",
            str(maps),
        ]
    )
    assert rc == 0
    with Image.open(out) as im:
        assert im.format == "PNG"
    with Image.open(maps) as im:
        assert im.format == "PNG" and im.width > im.height


def test_generate_command_rejects_a_noise_model(tmp_path, capsys):
    from ganzoo.api import save_model
    from ganzoo.cli import main

    p = save_model(tiny_variant("dcgan"), tmp_path / "d.safetensors", name="dcgan")
    assert main(["generate", str(p), "a red circle", "-o", str(tmp_path / "x.png")]) == 2
    assert "text_to_image" in capsys.readouterr().err


def test_config_errors_are_one_line():
    from ganzoo.errors import ConfigError

    with pytest.raises(ConfigError, match="base_size"):
        ganzoo.create("attngan", base_size=12)
    with pytest.raises(ConfigError, match="branches"):
        ganzoo.create("attngan", branches=1)


def test_evaluation_protocol_runs(trained, tmp_path, monkeypatch):
    from ganzoo_attngan.evaluate import evaluate, pictures

    from ganzoo.metrics.scenes import SceneRecipe, attribute_accuracy

    _, path = trained
    model = ganzoo.load(path)
    # A few steps of the scene classifier: this checks the protocol runs, not its numbers (tests/test_scene_eval.py).
    recipe = SceneRecipe(batch_size=8, max_steps=2, check_every=1, val_items=16, width=4)
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path))
    res = evaluate(model, n=100, runs=2, recipe=recipe, min_accuracy=None)
    for kind in ("", "damsm_"):
        for key in ("generated", "real", "shuffled"):
            row = res[f"r_precision_{kind}{key}"]
            assert 0.0 <= row["mean"] <= 1.0 and row["runs"] == 2
    assert res["classifier"]["recipe"]["max_steps"] == 2
    assert 0.0 <= res["colour_swap"]["new_colour_seen"]["mean"] <= 1.0
    attrs = torch.tensor([[1, 0, 1, 0, 2, -1, -1, -1, -1], [2, 3, 0, 1, 0, 4, 2, 0, 1]])
    acc = attribute_accuracy(attrs.clone(), attrs)
    assert acc["mean"] == 1.0 and acc["all_correct"] == 1.0
    wrong = attrs.clone()
    wrong[1, 5] = 0
    assert attribute_accuracy(wrong, attrs)["colour_b"] == 0.0
    assert all(p.is_file() for p in pictures(model, tmp_path))


class _BagOfWords:
    """A hand-made sentence encoder for the word-swap score: one dimension per word, so a caption's vector is the
    count of each of its words."""

    def __init__(self, words):
        self.index = {w: i for i, w in enumerate(words)}

    def embed_captions(self, captions):
        out = torch.zeros(len(captions), len(self.index))
        for row, cap in enumerate(captions):
            for word in cap.split():
                out[row, self.index[word]] += 1
        return out


def test_damsm_word_swaps_count_the_images_whose_own_caption_wins():
    from ganzoo_attngan.evaluate import damsm_word_swaps

    from ganzoo.data.captions import COLOURS, SHAPES, SIZES

    enc = _BagOfWords([*COLOURS, *SHAPES, *SIZES, "a", "on", "the", "left", "digit", "seven"])
    captions = ["a large red circle on the left", "a small blue square on the left", "a large green cross"]
    # Images that look exactly like their captions win every one-word change.
    assert damsm_word_swaps(enc, enc.embed_captions(captions), captions) == {
        "damsm_swap_shape": 1.0,
        "damsm_swap_colour": 1.0,
        "damsm_swap_size": 1.0,
    }
    # The first image shows a square: its caption now loses to the change "circle" -> "square" (a tie loses too).
    shown = enc.embed_captions(["a large red square on the left", *captions[1:]])
    assert damsm_word_swaps(enc, shown, captions) == pytest.approx(
        {"damsm_swap_shape": 2 / 3, "damsm_swap_colour": 1.0, "damsm_swap_size": 1.0}
    )
    # Captions without an attribute's words take no part; no caption with them at all leaves the attribute out.
    assert damsm_word_swaps(enc, enc.embed_captions(["a digit seven"]), ["a digit seven"]) == {}


def _write_idx(path, array):
    import gzip

    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()))


def test_mnist_captions(tmp_path):
    import numpy as np

    from ganzoo.data.captions import DIGIT_WORDS, MnistCaptionsDataset, mnist_captions

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    ds = MnistCaptionsDataset(tmp_path, image_size=32, split="train", max_words=10)
    item = ds[37]  # virtual index: digit 7
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.uint8
    assert item["attrs"][0] == 7 and DIGIT_WORDS[7] in item["caption"]
    assert item["caption"] in mnist_captions(item["attrs"].tolist())
    assert ds.vocab.decode(item["tokens"], int(item["length"])) == tokenize(item["caption"])
    assert MnistCaptionsDataset(tmp_path, 32, split="test").vocab == ds.vocab
    with pytest.raises(DataError, match="needs a path"):
        from ganzoo import registry

        registry.get("dataset", "mnist-captions").obj(None, DataRequest(task="text_to_image"))
