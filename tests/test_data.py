"""Built-in datasets and file readers: schema, determinism, the index wrap rule, and every user-facing error."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ganzoo import registry
from ganzoo.data.base import BatchDataset, DataError, DataRequest, get_items, no_arg, path_arg
from ganzoo.data.builtin import register_builtin
from ganzoo.data.files import (
    ImageFolderDataset,
    MnistDataset,
    class_layout,
    list_images,
    load_image,
    read_idx,
)
from ganzoo.data.procedural import SHAPE_NAMES, ShapesDataset, counter_normal, counter_uniform, stream_key
from ganzoo.data.toy2d import GRID25_STD, RING8_STD, GaussianMixture2D, grid25_modes, ring8_modes
from ganzoo.data.translation import Jitter, jitter_options
from ganzoo.train.data import build_dataset
from ganzoo.variant import Task


def _builtin() -> dict[str, tuple]:
    found = {}

    def register(name, factory, tasks=(), help=""):
        found[name] = (factory, tuple(tasks), help)

    register_builtin(register)
    return found


def _shared_data() -> Path:
    env = os.environ.get("GANZOO_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


# ------------------------------------------------------------------------------------------------- registration


def test_register_builtin_names_and_tasks():
    found = _builtin()
    assert set(found) == {"shapes", "ring8", "grid25", "mnist", "stacked-mnist", "folder"}
    for factory, tasks, help_text in found.values():
        assert callable(factory) and tasks == ("unconditional",)
        assert help_text and "\n" not in help_text


def test_factories_reject_wrong_arg_and_path(tmp_path):
    found = _builtin()
    with pytest.raises(DataError, match="takes no argument"):
        found["ring8"][0]("oops", DataRequest(task="unconditional"))
    with pytest.raises(DataError, match="needs a path"):
        found["mnist"][0](None, DataRequest(task="unconditional"))
    with pytest.raises(DataError, match="not found"):
        found["folder"][0](str(tmp_path / "missing"), DataRequest(task="unconditional"))
    with pytest.raises(DataError, match="split"):
        found["shapes"][0](None, DataRequest(task="unconditional", split="training"))


@pytest.mark.parametrize("name", sorted(registry.datasets()))
def test_build_dataset_checks_the_registered_tasks_once_for_every_dataset(name):
    """Factories leave the task to ``build_dataset``, which refuses a variant of a task the dataset was not
    registered for, naming the dataset, the task asked for and the tasks it serves."""
    entry = registry.get("dataset", name)
    assert entry.tasks, f"{name} registers no tasks"
    other = next(str(t) for t in Task if str(t) not in entry.tasks)
    variant = SimpleNamespace(name="some-variant", task=other)
    with pytest.raises(DataError) as err:
        build_dataset(f"{name}:/nonexistent", variant)
    message = str(err.value)
    assert f"{name!r}" in message and other in message and "/".join(entry.tasks) in message
    assert "\n" not in message


def test_no_arg_and_path_arg():
    no_arg("shapes", None)
    no_arg("shapes", "")
    with pytest.raises(DataError, match=r"dataset 'shapes' takes no argument, got shapes:x; use plain 'shapes'"):
        no_arg("shapes", "x")
    assert path_arg("folder", "~/imgs") == Path("~/imgs").expanduser()
    with pytest.raises(DataError, match=r"dataset 'mnist' needs a path: mnist:/path/to/mnist_dir"):
        path_arg("mnist", None, "mnist_dir")
    with pytest.raises(DataError, match=r"aligned:/path/to/dataset"):
        path_arg("aligned", "")


class _Counting(BatchDataset):
    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __len__(self) -> int:
        return 10

    def __getitems__(self, indices):
        self.calls.append(list(indices))
        return [{"x": torch.tensor(i % 10)} for i in indices]


class _ItemOnly(Dataset):
    def __len__(self) -> int:
        return 3

    def __getitem__(self, index):
        return {"x": torch.tensor(index * 2)}


def test_batch_dataset_item_is_a_batch_of_one_and_get_items_uses_the_batch_path():
    ds = _Counting()
    assert int(ds[13]["x"]) == 3 and ds.calls == [[13]]
    items = get_items(ds, (4, 1, 4))
    assert [int(it["x"]) for it in items] == [4, 1, 4] and ds.calls[-1] == [4, 1, 4] and len(ds.calls) == 2
    assert [int(it["x"]) for it in get_items(_ItemOnly(), [2, 0])] == [4, 0]
    assert get_items(_ItemOnly(), []) == []
    with pytest.raises(NotImplementedError, match="_Bare must implement __getitems__"):
        type("_Bare", (BatchDataset,), {"__len__": lambda self: 1})()[0]


@pytest.mark.parametrize("name", ["shapes", "ring8", "shapes-pairs", "shapes-sr", "shapes-anomaly", "shapes-captions"])
def test_items_equal_their_batched_form(name):
    entry = registry.get("dataset", name)
    options = {"scale": 4} if name == "shapes-sr" else {}
    ds = entry.obj(None, DataRequest(entry.tasks[0], "test", 16, 3, seed=2, options=options))
    indices = [0, 3, len(ds) + 3]
    for k, batched in zip(indices, get_items(ds, indices)):
        single = ds[k]
        assert single.keys() == batched.keys()
        for key, value in single.items():
            assert torch.equal(value, batched[key]) if torch.is_tensor(value) else value == batched[key]


def test_jitter_options():
    cfg = SimpleNamespace(image_size=256, load_size=0, jitter=True, flip=True)
    assert jitter_options(cfg) == {"load_size": 286, "crop": True, "flip": True}
    cfg = SimpleNamespace(image_size=64, load_size=0, jitter=True, flip=False)
    assert jitter_options(cfg) == {"load_size": 72, "crop": True, "flip": False}
    cfg = SimpleNamespace(image_size=64, load_size=80, jitter=False, flip=True)
    assert jitter_options(cfg) == {"load_size": 64, "crop": False, "flip": True}
    opts = jitter_options(SimpleNamespace(image_size=16, load_size=20, jitter=True, flip=True))
    jitter = Jitter(16, opts, train=True, key=7)
    assert (jitter.load_size, jitter.crop, jitter.flip) == (20, True, True)


# ------------------------------------------------------------------------------------------------ counter RNG


def test_counter_rng_is_pure_and_well_spread():
    key = stream_key("test", 3, "train")
    assert key == stream_key("test", 3, "train") and key != stream_key("test", 3, "val")
    u = counter_uniform(key, range(20_000), 4)
    assert np.array_equal(u[100:200], counter_uniform(key, range(100, 200), 4))
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.03
    z = counter_normal(key, range(20_000), 3)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03


# ------------------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3), (64, 1)])
def test_shapes_schema(size, channels):
    ds = _builtin()["shapes"][0](None, DataRequest(task="unconditional", image_size=size, channels=channels))
    item = ds[7]
    assert set(item) == {"image", "label"}
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (channels, size, size)
    assert item["label"].dtype == torch.int64 and item["label"].ndim == 0
    assert 0 <= int(item["label"]) < ds.num_classes == len(SHAPE_NAMES) == len(ds.class_names)


def test_shapes_determinism_and_wrap_rule():
    ds = ShapesDataset(32, 3, "train", seed=0)
    assert len(ds) == 50_000 and len(ShapesDataset(32, 3, "val")) == len(ShapesDataset(32, 3, "test")) == 10_000
    a, b = ds[123], ShapesDataset(32, 3, "train", seed=0)[123]
    assert torch.equal(a["image"], b["image"]) and a["label"] == b["label"]
    assert not torch.equal(ds[123]["image"], ds[124]["image"])
    assert not torch.equal(ds[123]["image"], ShapesDataset(32, 3, "train", seed=1)[123]["image"])
    assert not torch.equal(ds[123]["image"], ShapesDataset(32, 3, "val", seed=0)[123]["image"])
    # Virtual index k + len: same item (class) as k, freshly drawn appearance, itself reproducible.
    far = ds[123 + 3 * len(ds)]
    assert far["label"] == a["label"] and not torch.equal(far["image"], a["image"])
    assert torch.equal(far["image"], ShapesDataset(32, 3, "train", seed=0)[123 + 3 * len(ds)]["image"])
    with pytest.raises(IndexError):
        ds[-1]


def test_shapes_batched_path_matches_single_items():
    ds = ShapesDataset(28, 1, "train", seed=5)
    indices = [0, 9, 4, 9, 10**12]
    batch = ds.__getitems__(indices)
    for k, item in zip(indices, batch):
        single = ds[k]
        assert torch.equal(item["image"], single["image"]) and item["label"] == single["label"]
    assert ds.__getitems__([]) == []


def test_shapes_classes_balanced_and_images_contrasted():
    ds = ShapesDataset(32, 1, "train", seed=0)
    counts = torch.bincount(ds.labels_of(range(12_000)), minlength=ds.num_classes)
    assert counts.min() > 0.85 * 2000 and counts.max() < 1.15 * 2000
    items = ds.__getitems__(list(range(600)))
    labels = torch.stack([it["label"] for it in items])
    assert set(labels.tolist()) == set(range(ds.num_classes))
    images = torch.stack([it["image"] for it in items]).float()
    spread = images.amax(dim=(1, 2, 3)) - images.amin(dim=(1, 2, 3))
    assert spread.min() > 60, "every grayscale shape must stand out from its background"
    # The ink covers a fair part of the frame but never all of it.
    assert images.std(dim=(1, 2, 3)).min() > 10


def test_shapes_grayscale_is_luma_of_colour():
    colour = ShapesDataset(32, 3, "train", seed=2)[11]["image"].float()
    gray = ShapesDataset(32, 1, "train", seed=2)[11]["image"].float()
    luma = (colour * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
    assert (luma - gray).abs().max() <= 2


def test_shapes_rejects_bad_channels_and_size():
    with pytest.raises(DataError, match="channels"):
        ShapesDataset(32, 4)
    with pytest.raises(DataError, match="image_size"):
        ShapesDataset(4, 3)


def test_shapes_dataloader_collates():
    ds = ShapesDataset(32, 3)
    batch = next(iter(DataLoader(ds, batch_size=8, shuffle=True)))
    assert batch["image"].shape == (8, 3, 32, 32) and batch["image"].dtype == torch.uint8
    assert batch["label"].shape == (8,) and batch["label"].dtype == torch.int64


# ------------------------------------------------------------------------------------------------------ toy 2D


def test_mode_constants():
    ring, grid = ring8_modes(), grid25_modes()
    assert ring.shape == (8, 2) and torch.allclose(ring.norm(dim=1), torch.ones(8))
    assert grid.shape == (25, 2) and set(grid[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert torch.equal(grid[5 * 3 + 1], torch.tensor([2.0, -2.0]))
    assert RING8_STD == 0.01 and GRID25_STD == 0.05


@pytest.mark.parametrize(
    "name,modes,std", [("ring8", ring8_modes(), RING8_STD), ("grid25", grid25_modes(), GRID25_STD)]
)
def test_gaussian_mixture_statistics(name, modes, std):
    ds = _builtin()[name][0](None, DataRequest(task="unconditional", image_size=0, channels=0))
    assert len(ds) == 100_000
    items = ds.__getitems__(list(range(20_000)))
    points = torch.stack([it["image"] for it in items])
    labels = torch.stack([it["label"] for it in items])
    assert points.dtype == torch.float32 and points.shape == (20_000, 2) and labels.dtype == torch.int64
    assert torch.equal(torch.cdist(points, modes).argmin(dim=1), labels)
    assert torch.bincount(labels, minlength=len(modes)).min() > 0.8 * 20_000 / len(modes)
    offsets = points - modes[labels]
    assert torch.allclose(offsets.mean(dim=0), torch.zeros(2), atol=4 * std / 100)
    assert torch.allclose(offsets.std(dim=0), torch.full((2,), std), rtol=0.04)


def test_gaussian_mixture_determinism_and_wrap():
    ds = GaussianMixture2D("ring8", ring8_modes(), RING8_STD, seed=4, length=1000)
    assert torch.equal(
        ds[17]["image"], GaussianMixture2D("ring8", ring8_modes(), RING8_STD, seed=4, length=1000)[17]["image"]
    )
    assert not torch.equal(ds[17]["image"], ds[18]["image"])
    assert ds[17 + 1000]["label"] == ds[17]["label"]
    assert not torch.equal(ds[17 + 1000]["image"], ds[17]["image"])
    batch = next(iter(DataLoader(ds, batch_size=8)))
    assert batch["image"].shape == (8, 2) and batch["image"].dtype == torch.float32


# --------------------------------------------------------------------------------------------------------- IDX


def _idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, gz):
    images = np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4)
    assert np.array_equal(read_idx(_write(tmp_path / "a.idx", _idx_bytes(images), gz)), images)
    wide = np.array([[1, -2], [70000, 4]], dtype=np.int32)
    out = read_idx(_write(tmp_path / "b.idx", _idx_bytes(wide, 0x0C), gz))
    assert out.dtype == np.int32 and np.array_equal(out, wide)


def test_read_idx_rejects_corrupt_files(tmp_path):
    good = _idx_bytes(np.zeros((4, 28, 28), np.uint8))
    cases = {
        "truncated.idx": good[:-10],
        "padded.idx": good + b"\0",
        "magic.idx": b"\x08\x03" + good[2:],
        "header.idx": good[:9],
        "empty.idx": b"",
    }
    for name, data in cases.items():
        path = _write(tmp_path / name, data)
        with pytest.raises(DataError, match=name):
            read_idx(path)
    broken_gz = _write(tmp_path / "cut.gz", gzip.compress(good)[:-20])
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(broken_gz)
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "absent.idx")


def _fake_mnist(root: Path, n: int = 12, gz: bool = True, labels_n: int | None = None) -> np.ndarray:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(labels_n or n) % 10).astype(np.uint8)
    ext = ".gz" if gz else ""
    for prefix in ("train", "t10k"):
        _write(root / f"{prefix}-images-idx3-ubyte{ext}", _idx_bytes(images), gz)
        _write(root / f"{prefix}-labels-idx1-ubyte{ext}", _idx_bytes(labels), gz)
    return images


def test_mnist_reader_on_small_files(tmp_path):
    images = _fake_mnist(tmp_path / "m", gz=False)
    ds = MnistDataset(tmp_path / "m", "train", 28, 1)
    assert len(ds) == 12 and torch.equal(ds[3]["image"][0], torch.from_numpy(images[3]))
    assert ds[3]["label"] == 3 and ds[3 + 12]["label"] == 3 and ds[3]["label"].dtype == torch.int64
    big = MnistDataset(tmp_path / "m", "test", 32, 3)
    item = big[5]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.uint8
    assert torch.equal(item["image"][0], item["image"][2])
    batch = next(iter(DataLoader(big, batch_size=8)))
    assert batch["image"].shape == (8, 3, 32, 32)


def test_mnist_reader_errors(tmp_path):
    _fake_mnist(tmp_path / "mismatch", labels_n=11)
    with pytest.raises(DataError, match="11 labels"):
        MnistDataset(tmp_path / "mismatch")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        MnistDataset(tmp_path / "empty")
    with pytest.raises(DataError, match="not found"):
        MnistDataset(tmp_path / "nowhere")
    _fake_mnist(tmp_path / "m")
    with pytest.raises(DataError, match="channels"):
        MnistDataset(tmp_path / "m", channels=2)


def test_stacked_mnist_stacks_three_independent_digits(tmp_path):
    images = _fake_mnist(tmp_path / "m", gz=False)
    make = _builtin()["stacked-mnist"][0]
    ds = make(str(tmp_path / "m"), DataRequest(task="unconditional", image_size=28, channels=3, seed=4))
    again = make(str(tmp_path / "m"), DataRequest(task="unconditional", image_size=28, channels=3, seed=4))
    assert len(ds) == 12
    labels = set()
    for k in range(12):
        item = ds[k]
        assert item["image"].shape == (3, 28, 28) and torch.equal(item["image"], again[k]["image"])
        digits = []
        for c in range(3):  # every channel is one of the MNIST images, and the label spells their digits
            j = next(i for i in range(12) if np.array_equal(item["image"][c].numpy(), images[i]))
            digits.append(j % 10)
        assert int(item["label"]) == digits[0] * 100 + digits[1] * 10 + digits[2]
        labels.add(int(item["label"]))
    assert len(labels) > 3  # the channels are drawn independently, not the same image three times
    assert torch.equal(ds[13]["image"], ds[1]["image"])
    with pytest.raises(DataError, match="3 channels"):
        make(str(tmp_path / "m"), DataRequest(task="unconditional", image_size=28, channels=1))


def test_real_mnist():
    root = _shared_data() / "mnist"
    if not (root / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {root} (set GANZOO_SHARED_DATA to the shared data folder)")
    train = _builtin()["mnist"][0](str(root), DataRequest(task="unconditional", image_size=28, channels=1))
    assert len(train) == 60_000
    assert [int(train[i]["label"]) for i in range(5)] == [5, 0, 4, 1, 9]
    assert torch.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    image = train[0]["image"]
    assert image.shape == (1, 28, 28) and image.max() == 255 and image.min() == 0
    test = MnistDataset(root, "test")
    assert len(test) == 10_000 and torch.bincount(test.labels)[0] == 980


# ----------------------------------------------------------------------------------------------- image folders


def _png(path: Path, size=(20, 12), colour=(200, 30, 60), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def test_folder_with_class_subfolders(tmp_path):
    for name in ("b1", "b2", "b3"):
        _png(tmp_path / "dogs" / f"{name}.png")
    _png(tmp_path / "cats" / "deep" / "a.PNG", colour=(10, 240, 10))
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    _png(tmp_path / ".hidden" / "x.png")
    ds = _builtin()["folder"][0](str(tmp_path), DataRequest(task="unconditional", image_size=16, channels=3))
    assert ds.class_names == ["cats", "dogs"] and ds.num_classes == 2 and len(ds) == 4
    assert ds.labels.tolist() == [0, 1, 1, 1]
    item = ds[0]
    assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.uint8
    assert item["image"][:, 8, 8].tolist() == [10, 240, 10] and item["label"] == 0
    assert torch.equal(ds[5]["image"], ds[1]["image"])  # wrap rule
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["label"].tolist() == [0, 1, 1, 1]


def test_folder_without_classes_and_mixed(tmp_path):
    _png(tmp_path / "flat" / "a.png")
    _png(tmp_path / "flat" / "b.jpg")
    ds = ImageFolderDataset(tmp_path / "flat", image_size=8, channels=1)
    assert ds.class_names == [] and ds.labels.tolist() == [-1, -1]
    assert ds[1]["image"].shape == (1, 8, 8) and ds[1]["label"] == -1
    _png(tmp_path / "mixed" / "top.png")
    _png(tmp_path / "mixed" / "sub" / "inner.png")
    files = list_images(tmp_path / "mixed")
    assert class_layout(tmp_path / "mixed", files) == ([-1, -1], [])


def test_load_image_modes_and_crop(tmp_path):
    wide = Image.new("RGB", (40, 20), (0, 0, 255))
    wide.paste((255, 0, 0), (0, 0, 10, 20))  # a red strip on the left edge, cropped away by the centre crop
    wide.save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png", 3, size=10)
    assert out.shape == (3, 10, 10) and out[:, :, 0].tolist()[0][0] < 30
    assert load_image(tmp_path / "wide.png", 3).shape == (3, 20, 40)
    _png(tmp_path / "rgba.png", colour=(50, 100, 150, 0), mode="RGBA")
    assert load_image(tmp_path / "rgba.png", 3)[:, 0, 0].tolist() == [50, 100, 150]
    Image.new("P", (6, 6), 3).save(tmp_path / "pal.png", transparency=3)
    assert load_image(tmp_path / "pal.png", 1).shape == (1, 6, 6)
    Image.fromarray(np.full((6, 6), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png", 1).max() == 255
    _png(tmp_path / "big.jpg", size=(400, 300), colour=(120, 120, 120))
    assert (load_image(tmp_path / "big.jpg", 1, size=32).float() - 120).abs().max() < 3


def test_folder_errors(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        ImageFolderDataset(tmp_path / "empty")
    with pytest.raises(DataError, match="not found"):
        ImageFolderDataset(tmp_path / "missing")
    _png(tmp_path / "d" / "good.png")
    (tmp_path / "d" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    truncated = (tmp_path / "d" / "good.png").read_bytes()
    (tmp_path / "d" / "cut.png").write_bytes(truncated[: len(truncated) // 2])
    with pytest.raises(DataError, match="not a folder"):
        ImageFolderDataset(tmp_path / "d" / "good.png")
    with pytest.raises(DataError, match="channels"):
        ImageFolderDataset(tmp_path / "d", channels=4)
    ds = ImageFolderDataset(tmp_path / "d", image_size=8)
    assert [p.name for p in ds.files] == ["bad.png", "cut.png", "good.png"]
    for k, name in ((0, "bad.png"), (1, "cut.png")):
        with pytest.raises(DataError, match=name) as info:
            ds[k]
        assert "\n" not in str(info.value)
    assert ds[2]["image"].shape == (3, 8, 8)
