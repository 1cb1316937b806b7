"""Generation options of ``ganzoo sample`` (--class, --truncation, --interpolate, --seed, -n) and the labelled sample
grids of every variant (ganzoo.utils.images.SampleGrid)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import Task, registry
from ganzoo.cli import MAX_SAMPLES, main
from ganzoo.errors import ConfigError
from ganzoo.tasks import LatentGenerator, gaussian_noise, latent_walk, require
from ganzoo.testing import tiny_variant
from ganzoo.train.checkpoint import save_model
from ganzoo.train.data import build_dataset, first_items, to_device
from ganzoo.utils.images import MIN_LABELLED_CELL, SampleGrid, class_rows, make_grid, save_animation, to_pil, wrap_text

SIZE = 32  # the tiny DCGAN's image side
PITCH = SIZE + 2  # a cell and its padding


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained tiny models written as model files: their generators are fixed random functions of (z, class),
    which is all these options need."""
    out = tmp_path_factory.mktemp("models")
    files = {}
    for name in ("dcgan", "dcgan.cond", "vanilla.ring8"):
        torch.manual_seed(0)
        files[name] = save_model(tiny_variant(name).eval(), out / f"{name}.safetensors", name=name)
    return files


def sample(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["sample", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def pixels(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(np.array(im.convert("RGB")))


# ---- --class --------------------------------------------------------------------------------------------------------


def test_class_labels_reach_the_generator() -> None:
    model = require(tiny_variant("dcgan.cond").eval(), LatentGenerator, purpose="this test")
    z = model.noise(4, seed=3)
    two, four = (model.generate(z=z, labels=torch.full((4,), k)) for k in (2, 4))
    assert not torch.allclose(two, four)
    assert torch.equal(two, model.generate(z=model.noise(4, seed=3), labels=torch.full((4,), 2)))


def test_class_option_draws_one_row_per_class(capsys, models, tmp_path) -> None:
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert sample(capsys, str(models["dcgan.cond"]), "--class", "2", "-n", "4", "--seed", "3", "-o", str(a))[0] == 0
    assert sample(capsys, str(models["dcgan.cond"]), "--class", "2", "-n", "4", "--seed", "3", "-o", str(b))[0] == 0
    rc, out, _ = sample(capsys, str(models["dcgan.cond"]), "--class", "4", "-n", "4", "--seed", "3", "-o", str(c))
    assert rc == 0 and "class 4" in out
    assert a.read_bytes() == b.read_bytes()  # same class, same seed: the same file
    assert not torch.equal(pixels(a), pixels(c))  # another class, the same noise: other images
    # Two classes (repeatable option and comma list): one labelled row each, 3 samples per row.
    rc, out, _ = sample(capsys, str(models["dcgan.cond"]), "--class", "0,5", "--class", "5", "-n", "6", "-o", str(a))
    assert rc == 0 and "classes 0, 5" in out
    grid = pixels(a)
    unlabelled_width = 3 * PITCH + 2
    assert grid.shape[0] == 2 * PITCH + 2 and grid.shape[1] > unlabelled_width
    label_strip = grid[:, : grid.shape[1] - unlabelled_width]
    assert (label_strip < 128).any()  # the row labels' ink


@pytest.mark.parametrize(
    ("model", "argv", "message"),
    [
        ("dcgan", ["--class", "1"], "without classes"),
        ("vanilla.ring8", ["--class", "1"], "without classes"),
        ("dcgan.cond", ["--class", "6"], "classes 0..5"),
        ("dcgan.cond", ["--class", "-1"], "classes 0..5"),
        ("dcgan.cond", ["--class", "two"], "class indices"),
        ("dcgan.cond", ["--class", "0,1,2", "-n", "2"], "fewer than the 3 classes"),
        ("dcgan", ["-n", "0"], f"1..{MAX_SAMPLES}"),
        ("dcgan", ["-n", str(MAX_SAMPLES + 1)], f"1..{MAX_SAMPLES}"),
        ("dcgan", ["--truncation", "0"], "truncation must be a number > 0"),
        ("dcgan", ["--truncation", "nan"], "truncation must be a number > 0"),
        ("dcgan", ["--interpolate", "1"], "2..120"),
        ("dcgan", ["--interpolate", "100", "-n", "41"], f"at most {MAX_SAMPLES}"),
        ("dcgan", ["-o", "x.gif"], "add --interpolate"),
        ("vanilla.ring8", ["--interpolate", "3"], "2D points"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, models, tmp_path, model, argv, message) -> None:
    argv = [a if a != "x.gif" else str(tmp_path / a) for a in argv]
    rc, _, err = sample(capsys, str(models[model]), "-o", str(tmp_path / "s.png"), *argv)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s.png").exists()


# ---- --truncation ---------------------------------------------------------------------------------------------------


def test_truncation_bounds_the_noise_and_keeps_what_lies_inside() -> None:
    plain = gaussian_noise((4000, 8), seed=1)
    cut = gaussian_noise((4000, 8), seed=1, truncation=0.5)
    assert cut.abs().max() <= 0.5 and plain.abs().max() > 3
    inside = plain.abs() <= 0.5
    assert torch.equal(cut[inside], plain[inside])  # only the values beyond psi are redrawn
    # The redrawn values follow the normal law restricted to [-0.5, 0.5]: nearly uniform there, std 0.28.
    assert abs(float(cut.std()) - 0.2841) < 0.01
    assert torch.equal(gaussian_noise((4000, 8), seed=1, truncation=1e3), plain)  # a large psi changes nothing
    with pytest.raises(ConfigError, match="truncation"):
        gaussian_noise((2, 2), truncation=-0.5)


def test_truncation_reduces_sample_variance(capsys, models, tmp_path) -> None:
    model = require(tiny_variant("dcgan").eval(), LatentGenerator, purpose="this test")
    spread = {
        psi: float(model.generate(z=model.noise(128, seed=0, truncation=psi)).std(dim=0).mean())
        for psi in (None, 1.0, 0.2)
    }
    assert spread[0.2] < spread[1.0] < spread[None]
    # Through the command: the grid of truncated samples varies less from cell to cell.
    cells = {}
    for psi in ("0.2", None):
        out = tmp_path / f"t{psi}.png"
        extra = ["--truncation", psi] if psi else []
        assert sample(capsys, str(models["dcgan"]), "-n", "16", "-o", str(out), *extra)[0] == 0
        grid = pixels(out).float()
        at = [(2 + r * PITCH, 2 + c * PITCH) for r in range(4) for c in range(4)]
        cells[psi] = torch.stack([grid[y : y + SIZE, x : x + SIZE] for y, x in at])
    assert cells["0.2"].std(dim=0).mean() < cells[None].std(dim=0).mean()


# ---- --interpolate --------------------------------------------------------------------------------------------------


def test_latent_walk_is_a_spherical_path_between_its_ends() -> None:
    a, b = gaussian_noise((3, 16), seed=0), gaussian_noise((3, 16), seed=1)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)  # ends of equal norm: a circular arc
    path = latent_walk(a, b, 7)
    assert path.shape == (3, 7, 16)
    assert torch.allclose(path[:, 0], a, atol=1e-6) and torch.allclose(path[:, -1], b, atol=1e-6)
    # On the great circle through both ends: equal angles between neighbouring frames, the norm kept.
    assert torch.allclose(path.norm(dim=-1), a.norm(dim=-1, keepdim=True).expand(3, 7), rtol=1e-5)
    unit = path / path.norm(dim=-1, keepdim=True)
    steps = (unit[:, 1:] * unit[:, :-1]).sum(-1).clamp(-1, 1).acos()
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=1e-5)
    same = latent_walk(a, a, 4)  # no direction to turn in: a straight (constant) walk, not NaN
    assert torch.allclose(same, a[:, None].expand(3, 4, 16), atol=1e-6)
    with pytest.raises(ConfigError, match="2 frames"):
        latent_walk(a, b, 1)


def test_interpolate_writes_a_grid_of_walks(capsys, models, tmp_path) -> None:
    out = tmp_path / "walk.png"
    rc, text, _ = sample(capsys, str(models["dcgan"]), "--interpolate", "5", "-n", "3", "-o", str(out))
    assert rc == 0 and "3 latent walks of 5 frames" in text
    grid = pixels(out)
    assert grid.shape[:2] == (3 * PITCH + 2, 5 * PITCH + 2)  # a row per walk, a column per frame
    # Walk r ends where walk r + 1 starts (one chain through n + 1 random latents).
    last_of_first = grid[2:PITCH, 2 + 4 * PITCH : 5 * PITCH]
    first_of_second = grid[2 + PITCH : 2 * PITCH, 2:PITCH]
    assert (last_of_first.int() - first_of_second.int()).abs().max() <= 1


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_interpolate_writes_an_animation_with_one_frame_per_step(capsys, models, tmp_path, suffix) -> None:
    out = tmp_path / f"walk{suffix}"
    rc, _, err = sample(capsys, str(models["dcgan.cond"]), "--interpolate", "6", "-n", "2", "-o", str(out))
    assert rc == 0, err
    with Image.open(out) as im:
        assert im.format == ("GIF" if suffix == ".gif" else "WEBP")
        assert im.n_frames == 6 and im.is_animated
        assert im.size[0] == 2 * PITCH + 2  # the two walks side by side, each captioned with its class
        assert im.size[1] > PITCH + 2


def test_save_animation_refuses_other_endings(tmp_path) -> None:
    frame = to_pil(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="gif or .webp"):
        save_animation([frame], tmp_path / "x.png")


# ---- seeds --------------------------------------------------------------------------------------------------------


def test_a_seed_gives_the_same_samples_and_another_seed_others(capsys, models, tmp_path) -> None:
    files = {}
    for key, seed, extra in [("a", "7", []), ("b", "7", []), ("c", "8", []), ("t", "7", ["--truncation", "0.7"])]:
        files[key] = tmp_path / f"{key}.png"
        assert sample(capsys, str(models["dcgan"]), "-n", "9", "--seed", seed, "-o", str(files[key]), *extra)[0] == 0
    assert files["a"].read_bytes() == files["b"].read_bytes()
    assert files["a"].read_bytes() != files["c"].read_bytes()
    assert files["a"].read_bytes() != files["t"].read_bytes()
    # generate(n, seed) is generate(z=noise(n, seed)), so the command's path through noise() changes no sample.
    for name in ("dcgan", "dcgan.cond", "vanilla"):
        model = require(tiny_variant(name).eval(), LatentGenerator, purpose="this test")
        assert torch.equal(model.generate(n=5, seed=11), model.generate(z=model.noise(5, seed=11)))


def test_points_are_drawn_as_one_scatter(capsys, models, tmp_path) -> None:
    out = tmp_path / "ring.png"
    rc, text, _ = sample(capsys, str(models["vanilla.ring8"]), "-n", "300", "--truncation", "1", "-o", str(out))
    assert rc == 0 and "300 samples" in text
    with Image.open(out) as im:
        assert im.size == (256, 256)


# ---- labelled grids -------------------------------------------------------------------------------------------------


def test_labelled_grid_is_taller_and_its_captions_have_ink() -> None:
    images = torch.full((6, 3, SIZE, SIZE), -1.0)  # black cells: any white-to-black pixel outside them is text
    plain = SampleGrid(images, ncol=3).render()
    assert plain.size == to_pil(make_grid(images, 3)).size  # without text: make_grid's picture
    labelled = SampleGrid(images, ncol=3, columns=["input", "output", "target"], captions=["a"] * 6).render()
    assert labelled.size[0] == plain.size[0] and labelled.size[1] > plain.size[1]
    page = torch.from_numpy(np.array(labelled.convert("L")))
    header = page[: labelled.size[1] - plain.size[1] - 2 * 12]
    assert (header < 128).any() and (header == 255).any()  # the column captions' ink on the white margin
    # Captions repeat over groups of columns, and must fit the grid.
    assert SampleGrid(images, ncol=6, columns=["in", "out", "tgt"]).render().size[0] == 6 * PITCH + 2
    with pytest.raises(ValueError, match="do not divide"):
        SampleGrid(images, ncol=3, columns=["a", "b"])
    with pytest.raises(ValueError, match="captions for"):
        SampleGrid(images, captions=["x"])


def test_text_is_wrapped_and_cut_to_the_cell() -> None:
    lines = wrap_text("a small red circle above a large blue square on the left", 40, 2)
    assert len(lines) == 2 and lines[-1].endswith("..")
    assert wrap_text("", 40, 3) == [] and wrap_text("reconstruction", 20, 1)[0].endswith(".")


def test_class_rows_give_each_class_its_row() -> None:
    images = torch.rand(7, 1, 8, 8) * 2 - 1
    grid = class_rows(images, torch.tensor([0, 0, 0, 2, 2, 5, 5]))
    assert list(grid.rows) == ["class 0", "class 2", "class 5"] and grid.ncol == 3
    assert grid.images.shape[0] == 9 and (grid.images[5] == 1).all()  # class 2's row filled with background


def _sample_grid(name: str) -> tuple[object, SampleGrid]:
    torch.manual_seed(0)
    model = tiny_variant(name)
    data = build_dataset(model.default_data, model, split="train", seed=0)
    model.prepare_data(data)
    model.eval()
    batch = to_device(first_items(data, 4), torch.device("cpu"))
    with torch.no_grad():
        grid = model.sample_images(model.sample_inputs(4, torch.Generator().manual_seed(0), batch=batch))
    return model, grid


@pytest.mark.parametrize("name", sorted(registry.variants()) + ["dcgan.cond"])
def test_every_variant_labels_its_sample_grid(name: str) -> None:
    model, grid = _sample_grid(name)
    assert isinstance(grid, SampleGrid)
    n = grid.images.shape[0]
    task = model.task
    if task in (Task.PAIRED, Task.UNPAIRED, Task.SUPER_RESOLUTION, Task.ANOMALY):
        assert len(grid.columns) >= 2 and grid.ncol % len(grid.columns) == 0  # input / output / ... captions
    if task == Task.TEXT_TO_IMAGE:
        assert len(grid.captions) == n and all(grid.captions)  # each image's caption under it
    if task == Task.ANOMALY:
        assert any(c.startswith("score ") for c in grid.captions)
    if int(getattr(model, "num_classes", 0) or 0):
        assert grid.rows and all(r.startswith("class ") for r in grid.rows)
    labelled = bool(grid.columns or grid.captions or grid.rows or grid.title)
    assert labelled == (task != Task.UNCONDITIONAL or bool(grid.rows) or model.image_size == 0)
    picture = grid.render()
    bare = to_pil(make_grid(grid.images.float(), grid.ncol))
    if not labelled:
        assert picture.size == bare.size
    elif grid.rows:  # labels left of the rows
        assert picture.size[0] > bare.size[0] and picture.size[1] >= bare.size[1]
    else:  # captions above the columns or under the images
        assert picture.size[0] >= bare.size[0] and picture.size[1] > bare.size[1]


def test_generate_titles_its_grid_with_the_caption_read(capsys, tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny_variant("attngan")
    model.prepare_data(build_dataset(model.default_data, model, split="train", seed=0))  # the vocabulary
    path = save_model(model.eval(), tmp_path / "t2i.safetensors", name="attngan")
    out = tmp_path / "g.png"
    assert main(["generate", str(path), "a red circle zzz", "-n", "2", "-o", str(out)]) == 0
    assert "<unk>" in capsys.readouterr().out
    size = model.image_size * math.ceil(MIN_LABELLED_CELL / model.image_size)  # small images are enlarged
    with Image.open(out) as im:
        page = torch.from_numpy(np.array(im.convert("L")))
    bare_height = size + 4
    assert page.shape[1] == 2 * (size + 2) + 2 and page.shape[0] > bare_height
    title = page[: page.shape[0] - bare_height]
    assert (title < 128).any()  # the caption's ink above the images
