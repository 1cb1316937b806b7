"""`ganzoo data show` and `ganzoo data export`: every built-in dataset previews and exports, the exported files read
back through ganzoo's own readers item for item, and the commands printed after an export run on the files."""

import csv
import shlex

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.cli import main
from ganzoo.data.export import open_dataset, preview, take
from ganzoo.data.files import load_image

PROCEDURAL = ["shapes", "ring8", "grid25", "shapes-pairs", "shapes-styles", "shapes-captions", "shapes-sr"]
PROCEDURAL += ["shapes-anomaly"]


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def png(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("spec", PROCEDURAL)
def test_show_draws_every_procedural_dataset(capsys, tmp_path, spec):
    out = tmp_path / "grid.png"
    rc, stdout, err = run(capsys, "data", "show", spec, "-n", 6, "-o", out, "--size", 32)
    assert rc == 0, err
    assert f"of {spec} (test split)" in stdout
    pic = png(out)
    assert pic.shape[0] >= 32 and pic.std() > 0  # a picture, not a blank canvas


def test_show_pictures_follow_the_task(capsys, tmp_path):
    def grid(spec, n, **kw):
        ds, task = open_dataset(spec, image_size=32, **kw)
        return preview(take(ds, n), task).grid

    # Translation: an item's images side by side under their names.
    g = grid("shapes-pairs", 4)
    assert list(g.columns) == ["a", "b"] and g.ncol % 2 == 0 and g.images.shape[0] == 8
    assert list(grid("shapes-styles", 4).columns) == ["a", "b", "b_true"]
    # SR: the LR input enlarged by nearest neighbour (blocks of scale x scale equal pixels) beside the HR target.
    ds, task = open_dataset("shapes-sr", image_size=32)
    item = take(ds, 1)[0]
    g = preview([item], task).grid
    assert list(g.columns) == ["LR input", "HR target"]
    up = g.images[0]
    assert up.shape[-1] == 32 and torch.equal(up[:, :4, :4], up[:, :1, :1].expand(-1, 4, 4))
    assert torch.equal(g.images[1], item["hr"].float().div(127.5).sub(1))
    # Captions and labels under the images, and printed beside the picture.
    rc, out, _ = run(capsys, "data", "show", "shapes-captions", "-n", 3, "-o", tmp_path / "c.png", "--size", 32)
    captions = [it["caption"] for it in take(open_dataset("shapes-captions", image_size=32)[0], 3)]
    assert all(f"{i}: {c}" in out for i, c in enumerate(captions))
    assert list(grid("shapes-captions", 3).captions) == captions
    source = open_dataset("shapes", image_size=32)[0]
    items = take(source, 4)
    shown = preview(items, "unconditional", class_names=source.class_names).grid.captions
    assert list(shown) == [source.class_names[int(it["label"])] for it in items]
    assert list(grid("shapes", 4).captions) == [f"label {int(it['label'])}" for it in items]
    rc, out, _ = run(capsys, "data", "show", "shapes-anomaly", "-n", 8, "-o", tmp_path / "a.png", "--size", 32)
    labels = [int(it["label"]) for it in take(open_dataset("shapes-anomaly", image_size=32)[0], 8)]
    assert f"anomalous ({sum(labels)} of 8)" in out
    g = grid("shapes-anomaly", 8)
    assert list(g.captions) == ["anomalous" if x else "normal" for x in labels]
    # The frame says normal (green) or anomalous (red).
    for img, lab in zip(g.images, labels):
        r, gr = float(img[0, 0, 0]), float(img[1, 0, 0])
        assert (r > gr) == (lab == 1)


def test_export_unconditional_reads_back_as_a_folder_with_its_classes(capsys, tmp_path):
    source, _ = open_dataset("shapes", image_size=32)
    items = take(source, 12)
    rc, out, err = run(capsys, "data", "export", "shapes", "-n", 12, tmp_path / "x", "--size", 32)
    assert rc == 0, err
    assert f"--data folder:{tmp_path / 'x'}" in out
    ds, _ = open_dataset(f"folder:{tmp_path / 'x'}", image_size=32)
    assert len(ds) == 12
    by_index = {int(f.stem): i for i, f in enumerate(ds.files)}
    assert sorted(by_index) == list(range(12))
    # The class subfolders carry the dataset's class names (circle, square ...), which the folder reader reads back.
    assert set(ds.class_names) == {source.class_names[int(it["label"])] for it in items}
    for k, it in enumerate(items):
        back = ds[by_index[k]]
        assert torch.equal(back["image"], it["image"])
        assert ds.class_names[int(back["label"])] == source.class_names[int(it["label"])]


def test_export_pairs_and_styles_keep_every_image_by_name(capsys, tmp_path):
    for spec, keys in (("shapes-pairs", ["a", "b"]), ("shapes-styles", ["a", "b", "b_true"])):
        items = take(open_dataset(spec, image_size=32)[0], 5)
        rc, out, err = run(capsys, "data", "export", spec, "-n", 5, tmp_path / spec, "--size", 32)
        assert rc == 0, err
        assert sorted(p.name for p in (tmp_path / spec).iterdir()) == keys
        for key in keys:
            back, _ = open_dataset(f"folder:{tmp_path / spec / key}", image_size=32)
            for k, it in enumerate(items):
                assert back.files[k].name == f"{k:05d}.png"
                assert torch.equal(back[k]["image"], it[key])


def test_export_super_resolution_reads_back_as_sr_pairs(capsys, tmp_path):
    items = take(open_dataset("shapes-sr", image_size=48, options={"scale": 2})[0], 4)
    rc, out, err = run(
        capsys, "data", "export", "shapes-sr", "-n", 4, tmp_path / "sr", "--size", 48, "--set", "scale=2"
    )
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "sr").iterdir()) == ["HR", "LR_x2"]
    back, _ = open_dataset(f"sr-pairs:{tmp_path / 'sr'}", image_size=0, options={"scale": 2})
    for k, it in enumerate(items):
        assert torch.equal(back[k]["hr"], it["hr"]) and torch.equal(back[k]["lr"], it["lr"])
        assert it["hr"].shape[-1] == 2 * it["lr"].shape[-1] == 48


def test_export_captions_reads_back_as_a_captions_folder(capsys, tmp_path):
    items = take(open_dataset("shapes-captions", image_size=32)[0], 6)
    rc, out, err = run(capsys, "data", "export", "shapes-captions", "-n", 6, tmp_path / "c", "--size", 32)
    assert rc == 0, err
    back, _ = open_dataset(f"captions:{tmp_path / 'c'}", image_size=32)
    assert len(back) == 6
    for k, it in enumerate(items):
        assert back.files[k].stem == f"{k:05d}"
        assert torch.equal(back[k]["image"], it["image"])
        assert back[k]["caption"] == it["caption"]  # one caption per file: item k reads it whatever k draws
    assert f'ganzoo generate MODEL "{items[0]["caption"]}"' in out


def test_export_anomaly_labels_in_names_and_csv(capsys, tmp_path):
    items = take(open_dataset("shapes-anomaly", image_size=32)[0], 10)
    rc, out, err = run(capsys, "data", "export", "shapes-anomaly", "-n", 10, tmp_path / "an", "--size", 32)
    assert rc == 0, err
    with open(tmp_path / "an" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["label"]) for r in rows] == [int(it["label"]) for it in items]
    for r, it in zip(rows, items):
        assert r["file"].endswith("_anomalous.png" if int(it["label"]) == 1 else "_normal.png")
        assert torch.equal(load_image(tmp_path / "an" / r["file"], 3), it["image"])


def test_export_points_as_csv(capsys, tmp_path):
    items = take(open_dataset("ring8")[0], 20)
    rc, _, err = run(capsys, "data", "export", "ring8", "-n", 20, tmp_path / "pts")
    assert rc == 0, err
    with open(tmp_path / "pts" / "points.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    pts = torch.tensor([[float(r["x"]), float(r["y"])] for r in rows])
    assert torch.allclose(pts, torch.stack([it["image"] for it in items]).float(), atol=1e-6)
    assert [int(r["label"]) for r in rows] == [int(it["label"]) for it in items]


def test_split_and_seed_choose_the_items(capsys):
    test = take(open_dataset("shapes", split="test", image_size=16)[0], 4)
    train = take(open_dataset("shapes", split="train", image_size=16)[0], 4)
    again = take(open_dataset("shapes", split="test", image_size=16)[0], 4)
    other = take(open_dataset("shapes", split="test", image_size=16, seed=3)[0], 4)
    assert all(torch.equal(x["image"], y["image"]) for x, y in zip(test, again))
    assert not all(torch.equal(x["image"], y["image"]) for x, y in zip(test, train))
    assert not all(torch.equal(x["image"], y["image"]) for x, y in zip(test, other))


def test_export_refuses_a_folder_that_is_not_empty_unless_forced(capsys, tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    rc, _, err = run(capsys, "data", "export", "shapes", "-n", 2, target)
    assert rc == 2 and "not empty" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    rc, _, err = run(capsys, "data", "export", "shapes", "-n", 2, target, "--force")
    assert rc == 0, err
    assert (target / "keep.txt").read_text() == "mine" and len(list(target.rglob("*.png"))) == 2
    (tmp_path / "file").write_text("x")
    rc, _, err = run(capsys, "data", "export", "shapes", "-n", 2, tmp_path / "file", "--force")
    assert rc == 2 and "not a folder" in err


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["data", "show", "shapez"], ["unknown dataset 'shapez'", "shapes-pairs"]),
        (["data", "show", "shapes", "--split", "dev"], ["invalid choice: 'dev'", "'test'"]),
        (["data", "export", "shapes", "-n", "0", "DIR"], ["-n must be >= 1"]),
        (["data", "show", "shapes", "--size", "0"], ["image size 0 is not valid"]),
        (["data", "show", "mnist"], ["needs a path"]),
        (["data", "show", "shapes-sr", "--set", "scale=0"], ["scale 0 is not valid"]),
        (["data"], ["required"]),
    ],
)
def test_mistakes_are_one_line(capsys, tmp_path, monkeypatch, argv, needles):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, *argv)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert all(n in err for n in needles), err
    assert not (tmp_path / "DIR").exists()


# ---- the printed commands run on the exported files ------------------------------------------------------------


def _model(name, path):
    from ganzoo.api import save_model
    from ganzoo.testing import tiny_variant

    torch.manual_seed(0)
    return save_model(tiny_variant(name), path)


def _hint(out, command):
    line = next(x.strip() for x in out.splitlines() if x.strip().startswith(f"ganzoo {command} "))
    return shlex.split(line.split("    #")[0])[1:]


@pytest.mark.parametrize(
    "spec,variant,command,size",
    [
        ("shapes-pairs", "pix2pix", "translate", 32),
        ("shapes-styles", "cyclegan", "translate", 32),
        ("shapes-sr", "srgan", "upscale", 32),
        ("shapes-sr", "srgan", "sr-eval", 32),
        ("shapes-anomaly", "ganomaly", "score", 32),
        ("shapes-captions", "attngan", "generate", 32),
    ],
)
def test_the_printed_next_command_runs_on_the_export(capsys, tmp_path, spec, variant, command, size):
    model = _model(variant, tmp_path / "model.safetensors")
    rc, out, err = run(capsys, "data", "export", spec, "-n", 3, tmp_path / "ex", "--size", size)
    assert rc == 0, err
    argv = [str(model) if a == "MODEL" else a for a in _hint(out, command)]
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    if command == "translate":
        assert sorted(p.name for p in (tmp_path / "ex-translated").iterdir()) == [f"{k:05d}.png" for k in range(3)]
    if command == "upscale":
        assert len(list((tmp_path / "ex-upscaled").glob("*.png"))) == 3
    if command == "score":
        assert (tmp_path / "ex-scores.csv").is_file()


# ---- real data -------------------------------------------------------------------------------------------------


def test_mnist_show_and_export(capsys, tmp_path, shared_data_dir):
    spec = f"mnist:{shared_data_dir / 'mnist'}"
    rc, out, err = run(capsys, "data", "show", spec, "-n", 16, "-o", tmp_path / "m.png", "--size", 28)
    assert rc == 0, err
    # The test set's first labels, as the reference data's README gives them: 7 2 1 0.
    assert "  7 2 1 0" in out
    rc, out, err = run(capsys, "data", "export", spec, "-n", 8, tmp_path / "m", "--size", 28, "--channels", 1)
    assert rc == 0, err
    assert [p.parent.name for p in sorted((tmp_path / "m").rglob("*.png"), key=lambda p: p.name)] == list("72104149")
    with Image.open(tmp_path / "m" / "7" / "00000.png") as im:
        assert im.mode == "L" and im.size == (28, 28)


def test_set5_exports_whole_images_that_match_the_originals(capsys, tmp_path, shared_data_dir):
    root = shared_data_dir / "sr" / "Set5"
    rc, out, err = run(capsys, "data", "export", f"sr-pairs:{root}", "-n", 5, tmp_path / "s", "--size", 0)
    assert rc == 0, err
    originals = sorted((root / "HR").glob("*.png"))
    for k, hr in enumerate(originals):
        assert np.array_equal(png(tmp_path / "s" / "HR" / f"{k:05d}.png"), png(hr))
        assert np.array_equal(png(tmp_path / "s" / "LR_x4" / f"{k:05d}.png"), png(root / "LR_x4" / hr.name))


def test_mnist_anomaly_spread_shows_both_classes_of_the_chosen_digit(capsys, tmp_path, shared_data_dir):
    from ganzoo.data.files import MnistDataset

    root = shared_data_dir / "mnist"
    spec = f"mnist-anomaly:{root}"
    argv = ["data", "export", spec, "-n", 20, tmp_path / "a", "--size", 28, "--channels", 1, "--set", "anomaly_class=3"]
    rc, _, err = run(capsys, *argv)
    assert rc == 0, err
    with open(tmp_path / "a" / "labels.csv", newline="") as f:
        first = [int(r["label"]) for r in csv.DictReader(f)]
    assert first == [1] * 20  # the protocol's test split lists the train set's threes first
    rc, _, err = run(capsys, *argv[:5], tmp_path / "b", *argv[6:], "--spread")
    assert rc == 0, err
    with open(tmp_path / "b" / "labels.csv", newline="") as f:
        spread = [int(r["label"]) for r in csv.DictReader(f)]
    train_threes = int((MnistDataset(root, "train", 28, 1).labels == 3).sum())
    test_digits = MnistDataset(root, "test", 28, 1).labels
    size = train_threes + len(test_digits)
    rows = [k * size // 20 for k in range(20)]
    assert spread == [1 if r < train_threes else int(test_digits[r - train_threes] == 3) for r in rows]
    assert set(spread) == {0, 1}


def test_an_image_folder_exports_with_its_class_names(capsys, tmp_path):
    src = tmp_path / "src"
    colours = {"cat": (200, 30, 30), "dog": (30, 30, 200)}
    for name, colour in colours.items():
        (src / name).mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (20, 20), tuple(c + 10 * k for c in colour)).save(src / name / f"{k}.png")
    rc, out, err = run(capsys, "data", "export", f"folder:{src}", "-n", 4, tmp_path / "out", "--size", 16)
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cat", "dog"]
    a, _ = open_dataset(f"folder:{src}", image_size=16)
    b, _ = open_dataset(f"folder:{tmp_path / 'out'}", image_size=16)
    assert b.class_names == a.class_names
    assert all(torch.equal(a[k]["image"], b[k]["image"]) and int(a[k]["label"]) == int(b[k]["label"]) for k in range(4))
