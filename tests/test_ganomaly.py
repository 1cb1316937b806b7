"""GANomaly: training (conformance kit), scoring, calibration through export/load, anomaly datasets, `ganzoo score`."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from ganzoo_ganomaly import GANomaly, best_f1_threshold, calibrate, evaluate
from ganzoo_ganomaly.variant import TV_EPS, total_variation
from PIL import Image

import ganzoo
from ganzoo.api import save_model
from ganzoo.cli import main
from ganzoo.data.anomaly import (
    VAL_EVERY,
    FolderAnomalyDataset,
    ImageTensorDataset,
    ShapesAnomalyDataset,
    mnist_anomaly_factory,
    mnist_anomaly_split,
)
from ganzoo.data.base import DataError, DataRequest
from ganzoo.errors import ConfigError
from ganzoo.metrics import auprc, auroc
from ganzoo.testing import check_variant, tiny_variant
from ganzoo.train import TrainConfig, Trainer


def _tiny(**kw) -> GANomaly:
    torch.manual_seed(0)
    return tiny_variant("ganomaly", **kw).eval()


def _small_set(n: int = 48, size: int = 16, channels: int = 3) -> ShapesAnomalyDataset:
    return ShapesAnomalyDataset(size, channels, "val", seed=0, size=n)


# ---- training --------------------------------------------------------------------------------------------------------


def test_autoencoder_baseline_conforms():
    # The base name runs in test_conformance.py; the baseline tag has a different stage list (no D), so run it too.
    # Exact resume is the same trainer path as the base variant's (checked there); training and export are checked here.
    result = check_variant("ganomaly.ae", resume=False)
    assert result["losses"]["stage"] == "ae"


def test_networks_have_the_paper_layout():
    m = ganzoo.create("ganomaly", channels=1)
    assert [type(x).__name__ for x in m.G.encoder1.features][:2] == ["Conv2d", "LeakyReLU"]
    widths = [x.out_channels for x in m.G.encoder1.modules() if isinstance(x, torch.nn.Conv2d)]
    assert widths == [64, 128, 256, 100]
    x = torch.zeros(2, 1, 32, 32)
    x_hat, z, z_hat = m.G(x)
    assert x_hat.shape == x.shape and z.shape == z_hat.shape == (2, 100, 1, 1)
    logits, feats = m.D(x)
    assert logits.shape == (2,) and feats.shape == (2, 256, 4, 4)


def test_discriminator_is_reinitialized_when_its_loss_collapses():
    m = _tiny(reinit_threshold=0.5, reinit_check_every=2).train()
    before = [p.clone() for p in m.D.parameters()]
    m.on_step_end(1, {"d/loss": torch.tensor(0.1), "g/loss": torch.tensor(1.0)})  # not a check step: nothing read
    m.on_step_end(2, {"d/loss": torch.tensor(0.9), "g/loss": torch.tensor(1.0)})  # above the threshold
    m.on_step_end(2, {"g/loss": torch.tensor(1.0)})  # D did not train at this step
    assert m.d_reinits == 0 and all(torch.equal(a, b) for a, b in zip(before, m.D.parameters()))
    m.on_step_end(4, {"d/loss": torch.tensor(0.1), "g/loss": torch.tensor(1.0)})
    assert m.d_reinits == 1
    assert not all(torch.equal(a, b) for a, b in zip(before, m.D.parameters()))


def test_training_ends_calibrated_in_one_export(tmp_path, monkeypatch):
    import ganzoo_ganomaly

    from ganzoo.train import checkpoint as ckpt
    from ganzoo.train.data import build_dataset

    assert not hasattr(ganzoo_ganomaly, "ganzoo_train_event")  # no variant behaviour in global hooks
    written = []
    save_model = ckpt.save_model
    monkeypatch.setattr(ckpt, "save_model", lambda v, path, **kw: written.append(path) or save_model(v, path, **kw))
    torch.manual_seed(0)
    v = tiny_variant("ganomaly")
    cfg = TrainConfig(steps=2, device="cpu", precision="fp32", progress=False, tensorboard=False, n_samples=4)
    t = Trainer(v, cfg, out=tmp_path / "run")
    t.fit()
    assert written == [tmp_path / "run" / "model.safetensors"]
    model = ganzoo.load(tmp_path / "run")
    assert model.calibration is not None and model.calibration["n_anomalous"] > 0
    # Two steps leave the model near chance: the calibration then sets no threshold and says why.
    if model.calibration["auroc"] >= 0.6:
        assert 0.0 <= model.threshold <= 1.0
    else:
        assert model.threshold is None and "AUROC" in model.calibration["warning"]
    # Calibrated with the weights that were exported (the EMA generator): the loaded model calibrates the same.
    saved = dict(model.calibration)
    assert calibrate(model, build_dataset(t.data_spec, model, split="val", seed=0)) == saved


def test_calibration_can_be_turned_off(tmp_path):
    v = tiny_variant("ganomaly", calibrate=False)
    cfg = TrainConfig(steps=1, device="cpu", precision="fp32", progress=False, tensorboard=False, n_samples=4)
    Trainer(v, cfg, out=tmp_path).fit()
    assert ganzoo.load(tmp_path).calibration is None


# ---- scoring and calibration -----------------------------------------------------------------------------------------


def test_score_generate_and_auroc_on_a_small_set():
    m = _tiny()
    ds = _small_set()
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    labels = torch.stack([ds[i]["label"] for i in range(len(ds))])
    assert 0 < int(labels.sum()) < len(labels)
    raw = m.score(images)  # uncalibrated: the raw latent distance
    assert raw.shape == (len(ds),) and torch.isfinite(raw).all() and (raw >= 0).all()
    # uint8 and [-1, 1] inputs are the same images
    assert torch.allclose(raw, m.score(images.float() / 127.5 - 1), atol=1e-6)
    recon = m.reconstruct(images[:3])["recon"]
    assert recon.shape == (3, 3, 16, 16) and recon.abs().max() <= 1
    res = evaluate(m, ds)
    assert res["auroc"] == pytest.approx(auroc(raw, labels))
    assert res["auprc"] == pytest.approx(auprc(raw, labels))
    assert 0.0 <= res["auroc"] <= 1.0
    with pytest.raises(DataError, match="do not fit"):
        m.score(torch.zeros(2, 1, 16, 16, dtype=torch.uint8))


def test_recon_score_of_the_autoencoder_baseline():
    m = tiny_variant("ganomaly.ae").eval()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    expected = (x - m.reconstruct(x)["recon"]).square().flatten(1).mean(1)
    assert torch.allclose(m.score(x), expected, atol=1e-6)


def test_complexity_divides_the_score_by_the_inputs_total_variation():
    plain, tv = _tiny(), _tiny(complexity="tv")
    tv.load_state_dict(plain.state_dict())
    torch.manual_seed(3)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    x[0] = 0.25  # a flat image: total variation 0, so its score is the latent error over TV_EPS, finite
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3))
    dx = (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3))
    assert torch.allclose(total_variation(x), dy + dx) and total_variation(x)[0] == 0
    r = plain.reconstruct(x)
    assert torch.equal(r["score"], r["latent"]) and torch.equal(plain.score(x), r["latent"])
    got = tv.score(x)
    assert torch.allclose(got, r["latent"] / (dy + dx + TV_EPS), rtol=1e-5) and torch.isfinite(got).all()
    # Equal latent error, unequal complexity: the simpler input is now the more anomalous one.
    assert (got[0] / r["latent"][0]) > (got[1:] / r["latent"][1:]).max()
    assert tv.inference_graphs()[0].metadata["complexity"] == "tv"


def test_the_mnist_recipe_scores_by_complexity_and_its_baseline_as_the_protocol_says():
    assert ganzoo.create("ganomaly.mnist").config.complexity == "tv"
    ae = ganzoo.create("ganomaly.mnist_ae").config
    assert (ae.score, ae.complexity) == ("recon", "none")
    assert ganzoo.create("ganomaly").config.complexity == "none"


def test_complexity_is_checked():
    with pytest.raises(ConfigError, match="complexity"):
        tiny_variant("ganomaly", complexity="png")


def test_best_f1_threshold():
    scores = torch.tensor([0.1, 0.2, 0.3, 0.8, 0.9, 0.35])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    t, f1 = best_f1_threshold(scores, labels)
    # flagging {0.8, 0.9} gives F1 0.8; flagging {0.35, 0.8, 0.9} all three anomalies: F1 1.0, cut between 0.3 and 0.35
    assert f1 == pytest.approx(1.0) and t == pytest.approx(0.325)
    with pytest.raises(ValueError, match="both"):
        best_f1_threshold(scores, torch.zeros(6, dtype=torch.long))


def test_calibration_is_saved_and_restored_through_export_and_load(tmp_path):
    m = _tiny()
    ds = _small_set()
    record = calibrate(m, ds)
    assert set(record) >= {"min", "max", "threshold", "f1", "auroc"}
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    scores = m.score(images)
    assert scores.min() == pytest.approx(0.0, abs=1e-6) and scores.max() == pytest.approx(1.0, abs=1e-6)
    path = save_model(m, tmp_path / "m.safetensors")
    again = ganzoo.load(path)
    assert again.calibration == record and again.threshold == m.threshold
    assert torch.equal(again.score(images), scores)
    # A normal-only reference set still gives a threshold: the largest normal score.
    normal_images = images[ds.labels_of(range(len(ds))) == 0]
    normal = ImageTensorDataset(normal_images, torch.zeros(len(normal_images), dtype=torch.long), 3)
    assert calibrate(m, normal)["threshold"] == 1.0


# ---- datasets --------------------------------------------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    code = 0x08
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    train_labels = np.arange(40) % 10  # 4 of each digit, positions 0..39
    test_labels = (np.arange(20) * 3) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (40, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", train_labels)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", test_labels)
    return tmp_path


def _request(split: str, anomaly: int = 0, size: int = 32, channels: int = 1) -> DataRequest:
    return DataRequest(
        task="anomaly", split=split, image_size=size, channels=channels, options={"anomaly_class": anomaly}
    )


def test_mnist_anomaly_splits_on_small_idx_files(tiny_mnist):
    train_labels = torch.arange(40) % 10
    carved = torch.arange(40) % VAL_EVERY == VAL_EVERY - 1
    train = mnist_anomaly_factory(str(tiny_mnist), _request("train", anomaly=3))
    assert len(train) == int(((train_labels != 3) & ~carved).sum())
    assert all(int(train[i]["label"]) == 0 for i in range(len(train)))
    assert train[0]["image"].shape == (1, 32, 32) and train[0]["image"].dtype == torch.uint8
    val = mnist_anomaly_factory(str(tiny_mnist), _request("val", anomaly=3))
    assert len(val) == int(carved.sum()) and [int(val[i]["label"]) for i in range(len(val))] == [0, 0, 0, 0]
    val9 = mnist_anomaly_factory(str(tiny_mnist), _request("val", anomaly=9))  # positions 9, 19, 29, 39 are digit 9
    assert [int(val9[i]["label"]) for i in range(len(val9))] == [1, 1, 1, 1]
    test = mnist_anomaly_factory(str(tiny_mnist), _request("test", anomaly=3, channels=3))
    # all 20 test images plus the 4 train images of digit 3; anomalies: those 4 and test's digit 3s
    test_labels = (torch.arange(20) * 3) % 10
    assert len(test) == 24
    assert sum(int(test[i]["label"]) for i in range(len(test))) == 4 + int((test_labels == 3).sum())
    assert test[0]["image"].shape == (3, 32, 32)
    # the train images of the anomaly digit come first, and are really the digit-3 rows
    tr_rows, te_rows, labels = mnist_anomaly_split(train_labels, test_labels, 3, "test")
    assert tr_rows.tolist() == [3, 13, 23, 33] and len(te_rows) == 20 and len(labels) == 24


def test_mnist_anomaly_errors(tiny_mnist):
    with pytest.raises(DataError, match="anomaly_class 11"):
        mnist_anomaly_factory(str(tiny_mnist), _request("train", anomaly=11))
    with pytest.raises(DataError, match="needs a path"):
        mnist_anomaly_factory(None, _request("train"))
    with pytest.raises(DataError, match="not found"):
        mnist_anomaly_factory(str(tiny_mnist / "nope"), _request("train"))
    from ganzoo.train.data import build_dataset

    with pytest.raises(DataError, match="'mnist-anomaly' yields anomaly data, but 'dcgan' is a unconditional"):
        build_dataset(f"mnist-anomaly:{tiny_mnist}", tiny_variant("dcgan"))


def test_mnist_anomaly_on_the_real_data(shared_data_dir):
    root = shared_data_dir / "mnist"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    counts_train = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    counts_test = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    digit = 7
    # 28x28 skips the resize: the split logic is what is tested here
    test = mnist_anomaly_factory(str(root), _request("test", anomaly=digit, size=28))
    assert len(test) == 10_000 + counts_train[digit]
    assert int(test.labels.sum()) == counts_train[digit] + counts_test[digit]
    train = mnist_anomaly_factory(str(root), _request("train", anomaly=digit, size=28))
    val = mnist_anomaly_factory(str(root), _request("val", anomaly=digit, size=28))
    assert len(val) == 6_000 and int(train.labels.sum()) == 0
    assert len(train) + int((val.labels == 0).sum()) == 60_000 - counts_train[digit]


def test_shapes_anomaly_dataset():
    train = ShapesAnomalyDataset(16, 3, "train")
    assert len(train) == 50_000 and train.labels_of(range(200)).sum() == 0
    test = ShapesAnomalyDataset(32, 1, "test", size=200)
    labels = test.labels_of(range(200))
    assert 60 < int(labels.sum()) < 140
    a, b = test.__getitems__([5, 205]), test.__getitems__([5, 205])
    assert torch.equal(a[0]["image"], b[0]["image"]) and torch.equal(a[0]["image"], a[1]["image"])  # k % len, fixed
    assert a[0]["image"].shape == (1, 32, 32) and a[0]["image"].dtype == torch.uint8
    # an anomalous item is its normal scene plus a defect that changes a visible patch
    k = int(torch.nonzero(labels)[0])
    normal_scene = test.shapes[k]["image"]
    changed = (test[k]["image"].int() - normal_scene.int()).abs() > 30
    assert 3 <= int(changed.sum()) < 32 * 32 // 2


def test_folder_anomaly_layout(tmp_path):
    def img(path: Path, value: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 24, 3), value, np.uint8)).save(path)

    for i in range(20):
        img(tmp_path / "train" / "good" / f"{i:03d}.png", 10)
    for kind, n in (("good", 10), ("scratch", 5), ("hole", 5)):
        for i in range(n):
            img(tmp_path / "test" / kind / f"{i:03d}.png", 200)
    train = FolderAnomalyDataset(tmp_path, "train", 16, 3)
    val = FolderAnomalyDataset(tmp_path, "val", 16, 1)
    test = FolderAnomalyDataset(tmp_path, "test", 16, 3)
    assert len(train) == 18 and int(train.labels.sum()) == 0
    assert len(val) == 2 + 2 + 1 + 1 and int(val.labels.sum()) == 2
    assert len(test) == 8 + 4 + 4 and int(test.labels.sum()) == 8
    assert not set(val.files) & set(test.files) and not set(val.files) & set(train.files)
    assert test[0]["image"].shape == (3, 16, 16) and val[0]["image"].shape == (1, 16, 16)
    with pytest.raises(DataError, match="train/good"):
        FolderAnomalyDataset(tmp_path / "train", "test")


# ---- the score command -----------------------------------------------------------------------------------------------


def _separable_set(m: GANomaly) -> ImageTensorDataset:
    """The small set labelled by the untrained model's own raw scores (its top third anomalous), so that its
    calibration is far from chance and sets a threshold."""
    ds = _small_set()
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    raw = m.raw_score(images)
    labels = (raw >= raw.quantile(2 / 3)).long()
    return ImageTensorDataset(images, labels, 3)


@pytest.fixture
def model_file(tmp_path) -> Path:
    m = _tiny()
    assert calibrate(m, _separable_set(m))["threshold"] is not None
    return save_model(m, tmp_path / "gano.safetensors")


def test_near_chance_calibration_sets_no_threshold_and_score_says_why(tmp_path, capsys):
    m = _tiny()
    ds = _small_set()
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    # Labels that the scores cannot separate: alternate items by score rank, so AUROC is about 0.5.
    order = torch.argsort(m.raw_score(images))
    labels = torch.zeros(len(images), dtype=torch.long)
    labels[order[::2]] = 1
    record = calibrate(m, ImageTensorDataset(images, labels, 3))
    assert 0.4 < record["auroc"] < 0.6
    assert record["threshold"] is None and m.threshold is None
    assert "AUROC" in record["warning"] and "--threshold" in record["warning"]
    path = save_model(m, tmp_path / "chance.safetensors")
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(img)
    assert main(["score", str(path), str(img)]) == 0
    out = capsys.readouterr()
    assert out.out.rstrip().endswith("-")  # no verdict
    assert "barely separate" in out.err and "--threshold" in out.err


def test_score_command_on_image_files(tmp_path, model_file, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "b.png")
    single = tmp_path / "c.jpg"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(single)
    out_csv, pics = tmp_path / "s.csv", tmp_path / "pics"
    rc = main(["score", str(model_file), str(folder), str(single), "--csv", str(out_csv), "--pictures", str(pics)])
    assert rc == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [Path(r["path"]).name for r in rows] == ["a.png", "b.png", "c.jpg"]
    assert all(r["verdict"] in ("normal", "anomalous") for r in rows)
    assert len(list(pics.glob("*.png"))) == 3
    assert Image.open(sorted(pics.glob("*.png"))[0]).size[0] >= 3 * 96
    assert "a.png" in capsys.readouterr().out
    # an explicit threshold overrides the calibrated one
    rc = main(["score", str(model_file), str(single), "--csv", str(out_csv), "--threshold=-1e9"])
    assert rc == 0 and next(csv.DictReader(out_csv.open()))["verdict"] == "anomalous"


def test_score_command_evaluates_and_calibrates_on_a_dataset(tmp_path, model_file, capsys):
    saved = tmp_path / "calibrated.safetensors"
    rc = main(
        ["score", str(model_file), "--data", "shapes-anomaly", "--max-items", "64", "--calibrate", "--save", str(saved)]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "auroc" in out and "auprc" in out and "calibrated on the val split" in out
    assert ganzoo.load(saved).calibration["n_normal"] + ganzoo.load(saved).calibration["n_anomalous"] == 2000


def test_score_command_user_errors(tmp_path, model_file, capsys):
    assert main(["score", str(model_file)]) == 2
    assert main(["score", str(model_file), str(tmp_path / "missing.png")]) == 2
    assert "input not found" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert main(["score", str(model_file), str(bad)]) == 2
    assert main(["score", str(model_file), "--calibrate"]) == 2
