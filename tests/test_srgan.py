"""SRGAN / SRResNet: stages, resume, export, tiled inference, SR data, content losses, CLI and the bicubic row."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.cli import main
from ganzoo.data.base import DataError, DataRequest
from ganzoo.data.sr import ShapesSRDataset, SRFolderDataset, SRPairsDataset, bicubic_downscale
from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.testing import check_variant, tiny_variant
from ganzoo.train.data import build_dataset, first_items, to_device
from ganzoo.variant import Phase, StepState


def _rgb(path: Path, w: int, h: int, seed: int = 0, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    # Smooth plus noise, so bicubic rounding is exercised on both flat and busy areas.
    base = np.linspace(0, 200, w)[None, :, None] if mode == "RGB" else np.linspace(0, 200, w)[None, :]
    arr = (base + rng.integers(0, 55, size=shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(arr, mode).save(path)
    return path


def _pairs_dir(root: Path, scale: int = 4) -> Path:
    (root / "HR").mkdir(parents=True)
    (root / f"LR_x{scale}").mkdir()
    for i, (w, h, mode) in enumerate([(48, 40, "RGB"), (32, 36, "L")]):
        hr = Image.open(_rgb(root / "HR" / f"img_{i:03d}.png", w, h, seed=i, mode=mode))
        bicubic_downscale(hr, scale).save(root / f"LR_x{scale}" / f"img_{i:03d}.png")
    return root


# ---- the variant -------------------------------------------------------------------------------------------------


def test_srresnet_tag_trains_only_the_pretrain_stage():
    v = ganzoo.create("srgan.srresnet")
    assert [s.name for s in v.stages()] == ["pretrain"]
    assert [s.name for s in ganzoo.create("srgan").stages()] == ["pretrain", "gan"]
    result = check_variant("srgan.srresnet", resume=True)
    assert result["losses"]["stage"] == "pretrain"


def test_both_stages_and_exact_resume_x2():
    # The conformance test covers srgan at x4; this covers another scale through both stages and a resume.
    result = check_variant("srgan", scale=2, image_size=8)
    assert result["losses"]["stage"] == "gan" and "g/content" in result["losses"]


def test_paper_defaults_and_sizes():
    v = ganzoo.create("srgan")
    c = v.config
    assert (c.scale, c.image_size, c.batch_size, c.n_blocks, c.n_feats) == (4, 96, 16, 16, 64)
    assert (c.lr_g, c.beta1, c.adv_weight, c.loss, c.content_loss) == (1e-4, 0.9, 1e-3, "standard", "vgg54")
    assert sum(p.numel() for p in v.G.parameters()) == 1_549_462
    with torch.no_grad():
        v.eval()
        assert v.G(torch.zeros(1, 3, 24, 24)).shape == (1, 3, 96, 96)
        # Any HR crop size reaches the discriminator's dense layers through the adaptive pool.
        assert v.D(torch.zeros(2, 3, 96, 96)).shape == (2,)
        assert v.D(torch.zeros(2, 3, 40, 56)).shape == (2,)
    for tag, scale in (("srgan.x2", 2), ("srgan.x8", 8)):
        g = ganzoo.create(tag, n_feats=4, n_blocks=1, image_size=64).G.eval()
        with torch.no_grad():
            assert g(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8 * scale, 8 * scale)


def test_config_errors():
    with pytest.raises(ConfigError, match="scale"):
        ganzoo.create("srgan", scale=3)
    with pytest.raises(ConfigError, match="multiple of scale"):
        ganzoo.create("srgan", image_size=90)
    with pytest.raises(UnknownNameError, match="vgg54"):
        ganzoo.create("srgan", content_loss="vgg")


def test_gan_stage_learning_rate_drops_tenfold():
    v = ganzoo.create("srgan", pretrain_steps=10, gan_lr_decay_at=5)
    g = Phase("g", ("G",))
    assert v.lr_factor(g, 14, 100) == 1.0 and v.lr_factor(g, 15, 100) == 0.1
    assert v.lr_factor(Phase("g_mse", ("G",)), 50, 100) == 1.0


def test_export_load_round_trip(tmp_path):
    v = tiny_variant("srgan").eval()
    path = ganzoo.save_model(v, tmp_path / "m.safetensors", name="srgan")
    again = ganzoo.load(path)
    lr = torch.rand(1, 3, 7, 9) * 2 - 1
    assert torch.equal(v.upscale(lr), again.upscale(lr))
    assert not any("vgg" in k for k in again.state_dict())  # the content network never lands in model files


def test_tiled_upscaling_equals_untiled():
    torch.manual_seed(0)
    v = tiny_variant("srgan")
    # Non-trivial BN statistics, then eval mode: convolutions only, so tiling is exact given enough context.
    with torch.no_grad():
        v.G.train()
        v.G(torch.randn(4, 3, 16, 16))
    v.eval()
    lr = torch.rand(1, 3, 37, 53) * 2 - 1
    full = v.upscale(lr)
    radius = v.G.receptive_radius()
    tiled = v.upscale(lr, tile=10, overlap=radius)
    assert tiled.shape == full.shape == (1, 3, 148, 212)
    s = v.config.scale
    inner = (slice(None), slice(None), slice(2 * s, -2 * s), slice(2 * s, -2 * s))
    assert (tiled[inner] - full[inner]).abs().max() < 1e-5
    # Too little context changes the output near tile seams (so the test above is not vacuous).
    assert (v.upscale(lr, tile=10, overlap=0) - full).abs().max() > 1e-4


def test_sample_grid_and_generate_shapes():
    v = tiny_variant("srgan").eval()
    ds = build_dataset("shapes-sr", v)
    batch = to_device(first_items(ds, 3), torch.device("cpu"))
    inputs = v.sample_inputs(64, torch.Generator(), batch=batch)
    grid = v.sample_images(inputs)
    imgs = grid.images
    assert list(grid.columns) == ["bicubic", "output", "HR"] and grid.ncol is not None and grid.ncol % 3 == 0
    assert imgs.shape == (9, 3, 16, 16) and imgs.min() >= -1 and imgs.max() <= 1
    assert v.upscale(batch["lr"][0]).shape == (3, 16, 16)


# ---- content losses ----------------------------------------------------------------------------------------------


def _vgg_file(tmp_path: Path) -> Path:
    from torchvision.models import vgg19

    torch.manual_seed(0)
    with torch.device("meta"):
        feats = vgg19(weights=None).features[:36]
    feats = feats.to_empty(device="cpu")
    for m in feats.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.reset_parameters()
    path = tmp_path / "vgg19-random.pth"
    torch.save({f"features.{k}": t for k, t in feats.state_dict().items()}, path)
    return path


def test_vgg54_content_loss_with_a_weights_file(tmp_path, monkeypatch):
    from ganzoo_srgan.model import VGGContent

    path = _vgg_file(tmp_path)
    v = tiny_variant("srgan", content_loss="vgg54", vgg_weights=str(path), image_size=32)
    assert isinstance(v.content, VGGContent) and v.content.path == str(path)
    batch = {"lr": torch.rand(2, 3, 8, 8) * 2 - 1, "hr": torch.rand(2, 3, 32, 32) * 2 - 1}
    state = StepState(step=1, stage="gan")
    v.loss("d", batch, state)
    out = v.loss("g", batch, state)
    assert torch.isfinite(out["loss"]) and out["content"] > 0
    out["loss"].backward()
    assert v.G.tail.weight.grad is not None and v.G.tail.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in v.content.net.parameters())
    # Found through the environment variable too; a named file that is missing is an error, not a fallback.
    monkeypatch.setenv("GANZOO_VGG19_WEIGHTS", str(path))
    assert isinstance(tiny_variant("srgan", content_loss="vgg54").content, VGGContent)
    monkeypatch.setenv("GANZOO_VGG19_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(ConfigError, match="nope.pth"):
        _ = tiny_variant("srgan", content_loss="vgg54").content


def test_vgg54_falls_back_to_mse_with_a_warning(tmp_path, monkeypatch):
    from ganzoo_srgan.model import MSEContent

    monkeypatch.delenv("GANZOO_VGG19_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    v = tiny_variant("srgan", content_loss="vgg54")
    with pytest.warns(UserWarning, match="GANZOO_VGG19_WEIGHTS"):
        assert isinstance(v.content, MSEContent)


def test_bad_vgg_file(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ConfigError, match="lack"):
        _ = tiny_variant("srgan", content_loss="vgg54", vgg_weights=str(bad)).content


# ---- data --------------------------------------------------------------------------------------------------------


def test_sr_folder_lr_is_pil_bicubic_exactly(tmp_path):
    _rgb(tmp_path / "a.png", 60, 50, seed=1)
    _rgb(tmp_path / "b.png", 44, 70, seed=2)
    ds = SRFolderDataset(tmp_path, scale=4, crop=32, seed=3)
    full = {0: Image.open(tmp_path / "a.png").convert("RGB"), 1: Image.open(tmp_path / "b.png").convert("RGB")}
    for k in range(6):
        item = ds[k]
        assert item["hr"].shape == (3, 32, 32) and item["lr"].shape == (3, 8, 8)
        assert item["hr"].dtype == item["lr"].dtype == torch.uint8
        hr = Image.fromarray(item["hr"].permute(1, 2, 0).numpy())
        expected = np.asarray(hr.resize((8, 8), Image.Resampling.BICUBIC))
        assert np.array_equal(item["lr"].permute(1, 2, 0).numpy(), expected)
        # The HR crop really is a crop of the file.
        src = np.asarray(full[k % 2])
        hits = [
            (y, x)
            for y in range(src.shape[0] - 31)
            for x in range(src.shape[1] - 31)
            if np.array_equal(src[y : y + 32, x : x + 32], item["hr"].permute(1, 2, 0).numpy())
        ]
        assert hits
    assert torch.equal(ds[5]["hr"], SRFolderDataset(tmp_path, scale=4, crop=32, seed=3)[5]["hr"])
    assert not torch.equal(ds[0]["hr"], ds[2]["hr"])  # a new epoch, a new crop


def test_augmented_crops_take_all_eight_orientations_of_the_same_crop(tmp_path):
    _rgb(tmp_path / "a.png", 60, 50, seed=1)
    plain = SRFolderDataset(tmp_path, scale=4, crop=32, seed=3)
    turned = SRFolderDataset(tmp_path, scale=4, crop=32, seed=3, augment=True)
    seen = set()
    for k in range(64):
        hr, ref = turned[k]["hr"], plain[k]["hr"]  # the same crop position, maybe turned
        views = {
            (t, f): torch.rot90(ref.flip(-1) if f else ref, t, dims=(-2, -1)) for t in range(4) for f in (False, True)
        }
        match = [key for key, v in views.items() if torch.equal(v, hr)]
        assert match, f"item {k} is not an orientation of its crop"
        seen.add(match[0])
        # The LR input is made from the turned crop, so the pair stays a bicubic pair.
        im = Image.fromarray(hr.permute(1, 2, 0).numpy())
        assert np.array_equal(turned[k]["lr"].permute(1, 2, 0).numpy(), np.asarray(bicubic_downscale(im, 4)))
    assert len(seen) == 8
    assert torch.equal(turned[9]["hr"], SRFolderDataset(tmp_path, scale=4, crop=32, seed=3, augment=True)[9]["hr"])


def test_augmented_pairs_turn_hr_and_lr_together_and_only_training_crops(tmp_path):
    from ganzoo.data.sr import sr_folder_factory, sr_pairs_factory

    root = _pairs_dir(tmp_path / "set")
    plain = SRPairsDataset(root, scale=4, crop=16, channels=3, seed=1)
    turned = SRPairsDataset(root, scale=4, crop=16, channels=3, seed=1, augment=True)
    changed = 0
    for k in range(16):
        a, b = plain[k], turned[k]
        for t in range(4):
            for f in (False, True):
                if torch.equal(torch.rot90(a["hr"].flip(-1) if f else a["hr"], t, dims=(-2, -1)), b["hr"]):
                    assert torch.equal(torch.rot90(a["lr"].flip(-1) if f else a["lr"], t, dims=(-2, -1)), b["lr"])
        changed += not torch.equal(a["hr"], b["hr"])
    assert changed >= 8
    opts = {"scale": 4, "crop": 16, "augment": True}
    test = sr_pairs_factory(str(root), DataRequest(task="super_resolution", split="test", options=opts))
    assert torch.equal(test[0]["hr"], SRPairsDataset(root, scale=4, crop=0)[0]["hr"])  # whole, unturned
    with pytest.raises(DataError, match=r"augment 'yes' is not valid"):
        sr_folder_factory(str(root / "HR"), DataRequest(task="super_resolution", options={**opts, "augment": "yes"}))


def test_recipe_options_batch_norm_pixel_loss_and_augment():
    v = tiny_variant("srgan", batch_norm=False, pixel_loss="l1", augment=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in v.G.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in tiny_variant("srgan").G.modules())
    assert v.data_options()["augment"] is True
    torch.manual_seed(0)
    batch = {"lr": torch.rand(2, 3, 4, 4) * 2 - 1, "hr": torch.rand(2, 3, 16, 16) * 2 - 1}
    out = v.loss("g_mse", batch, StepState(step=0, stage="pretrain"))
    with torch.no_grad():
        err = v.G(batch["lr"]) - batch["hr"]
    assert torch.allclose(out["loss"], err.abs().mean(), atol=1e-6)
    assert torch.allclose(out["psnr"], 10 * torch.log10(4 / err.square().mean()), atol=1e-4)
    with pytest.raises(UnknownNameError, match=r"pixel loss 'l2'.*l1, mse"):
        ganzoo.create("srgan", pixel_loss="l2")
    check_variant("srgan", batch_norm=False, pixel_loss="l1")


def test_sr_folder_small_image_is_a_data_error(tmp_path):
    _rgb(tmp_path / "big.png", 64, 64)
    _rgb(tmp_path / "tiny.png", 20, 80)
    ds = SRFolderDataset(tmp_path, scale=4, crop=32)
    with pytest.raises(DataError, match=r"tiny\.png is 20x80, smaller than the 32x32"):
        ds[1]


def test_registered_datasets(tmp_path):
    v = tiny_variant("srgan")
    for spec in ("shapes-sr", f"sr-folder:{_rgb(tmp_path / 'x.png', 40, 40).parent}"):
        ds = build_dataset(spec, v)
        item = ds[7]
        assert item["hr"].shape == (3, 16, 16) and item["lr"].shape == (3, 4, 4)
    with pytest.raises(DataError, match="super_resolution"):
        build_dataset("shapes-sr", ganzoo.create("dcgan"))
    with pytest.raises(DataError, match="needs a path"):
        build_dataset("sr-folder", v)


def test_shapes_sr_is_deterministic_and_textured():
    a, b = ShapesSRDataset(4, 32, seed=1), ShapesSRDataset(4, 32, seed=1)
    assert torch.equal(a[123]["hr"], b[123]["hr"]) and torch.equal(a[123]["lr"], b[123]["lr"])
    assert not torch.equal(a[0]["hr"], a[1]["hr"])
    # Fine texture: bicubic re-upsampling of the LR loses much of the HR detail.
    hr = a[5]["hr"]
    lr = Image.fromarray(a[5]["lr"].permute(1, 2, 0).numpy())
    up = torch.from_numpy(np.array(lr.resize((32, 32), Image.Resampling.BICUBIC))).permute(2, 0, 1)
    assert (up.float() - hr.float()).abs().mean() > 3


def test_sr_pairs(tmp_path):
    root = _pairs_dir(tmp_path / "set")
    ds = SRPairsDataset(root, scale=4, crop=0)
    assert ds.names() == ["img_000.png", "img_001.png"]
    assert ds[0]["hr"].shape == (3, 40, 48) and ds[0]["lr"].shape == (3, 10, 12)
    cropped = SRPairsDataset(root, scale=4, crop=16, channels=3)[3]
    assert cropped["hr"].shape == (3, 16, 16) and cropped["lr"].shape == (3, 4, 4)
    with pytest.raises(DataError, match="LR_x2"):
        SRPairsDataset(root, scale=2)
    req = DataRequest(task="super_resolution", options={"scale": 4, "crop": 16})
    from ganzoo.data.sr import sr_pairs_factory

    assert len(sr_pairs_factory(str(root), req)) == 2


# ---- CLI and evaluation ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    v = tiny_variant("srgan").eval()
    return ganzoo.save_model(v, tmp_path_factory.mktemp("m") / "sr.safetensors", name="srgan")


def test_upscale_command(tmp_path, tiny_model, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _rgb(src / "colour.png", 30, 21)
    _rgb(src / "gray.png", 17, 25, mode="L")
    assert main(["upscale", str(tiny_model), str(src), "-o", str(tmp_path / "out"), "--tile", "8"]) == 0
    col, gray = Image.open(tmp_path / "out" / "colour.png"), Image.open(tmp_path / "out" / "gray.png")
    assert col.size == (120, 84) and col.mode == "RGB"
    assert gray.size == (68, 100) and gray.mode == "L"
    assert main(["upscale", str(tiny_model), str(tmp_path / "missing.png"), "-o", str(tmp_path)]) == 2
    assert "missing.png" in capsys.readouterr().err


def test_sr_eval_command(tmp_path, tiny_model, capsys):
    root = _pairs_dir(tmp_path / "set")
    assert (
        main(["sr-eval", str(tiny_model), "--data", f"sr-pairs:{root}", "--json", "--save", str(tmp_path / "o")]) == 0
    )
    (res,) = json.loads(capsys.readouterr().out)
    assert res["n"] == 2 and set(res["rows"]) == {"bicubic", "model"}
    assert res["rows"]["bicubic"]["psnr"] > 20 and len(res["rows"]["model"]["psnr_per_image"]) == 2
    assert (tmp_path / "o" / "set" / "img_001.png").is_file()
    assert main(["sr-eval", "--data", f"folder:{root}"]) == 2


def test_bicubic_row_reproduces_the_published_set5_set14(shared_data_dir):
    from ganzoo_srgan.upscale import evaluate_sr

    sr = shared_data_dir / "sr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        set5 = evaluate_sr(None, sr / "Set5", 4)["rows"]["bicubic"]["psnr"]
        set14 = evaluate_sr(None, sr / "Set14", 4)["rows"]["bicubic"]["psnr"]
    assert 28.415 <= set5 < 28.435 and 25.985 <= set14 < 25.995
