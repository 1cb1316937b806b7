"""Pix2Pix: networks with the reference's key names, checkpoint interop, paired data, jitter, translate, schedule.

(The conformance kit in test_conformance.py trains every stage and checks export and exact resume.)
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from ganzoo_pix2pix.interop import (
    export_reference_state_dict,
    infer_config,
    load_reference_state_dict,
    read_reference_file,
    save_reference_state_dict,
)
from ganzoo_pix2pix.variant import Pix2Pix
from PIL import Image

import ganzoo
from ganzoo.data.base import DataError, DataRequest
from ganzoo.data.translation import AlignedFolderDataset, Jitter, ShapesPairsDataset
from ganzoo.errors import CheckpointError, ConfigError
from ganzoo.nn import build_discriminator, build_generator
from ganzoo.schedules import linear_decay
from ganzoo.testing import tiny_variant
from ganzoo.train.data import build_dataset
from ganzoo.utils.images import as_pm1

# ---- the reference's key names, written out independently of model.py ----------------------------------------------
# From pytorch-CycleGAN-and-pix2pix models/networks.py: UnetSkipConnectionBlock layer lists (outermost: down conv,
# submodule, relu, up conv, tanh; middle: lrelu, down conv, norm, submodule, relu, up conv, norm[, dropout];
# innermost: lrelu, down conv, relu, up conv, norm), NLayerDiscriminator and ResnetGenerator sequences.


def _bn(prefix: str, ch: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (ch,),
        f"{prefix}.bias": (ch,),
        f"{prefix}.running_mean": (ch,),
        f"{prefix}.running_var": (ch,),
        f"{prefix}.num_batches_tracked": (),
    }


def expected_unet_batchnorm(num_downs: int, ngf: int = 64, nc: int = 3) -> dict[str, tuple[int, ...]]:
    # Level widths (outer, inner) from the outermost level inwards.
    levels = [(nc, ngf), (ngf, ngf * 2), (ngf * 2, ngf * 4), (ngf * 4, ngf * 8)]
    levels += [(ngf * 8, ngf * 8)] * (num_downs - 4)
    keys: dict[str, tuple[int, ...]] = {}
    prefix = "model.model"
    for i, (outer, inner) in enumerate(levels):
        if i == 0:
            keys[f"{prefix}.0.weight"] = (inner, nc, 4, 4)
            keys[f"{prefix}.3.weight"] = (inner * 2, outer, 4, 4)
            keys[f"{prefix}.3.bias"] = (outer,)
            prefix += ".1.model"
        elif i == len(levels) - 1:
            keys[f"{prefix}.1.weight"] = (inner, outer, 4, 4)
            keys[f"{prefix}.3.weight"] = (inner, outer, 4, 4)
            keys.update(_bn(f"{prefix}.4", outer))
        else:
            keys[f"{prefix}.1.weight"] = (inner, outer, 4, 4)
            keys.update(_bn(f"{prefix}.2", inner))
            keys[f"{prefix}.5.weight"] = (inner * 2, outer, 4, 4)
            keys.update(_bn(f"{prefix}.6", outer))
            prefix += ".3.model"
    return keys


def expected_resnet_instance(n_blocks: int, ngf: int = 64, nc: int = 3) -> dict[str, tuple[int, ...]]:
    keys = {"model.1.weight": (ngf, nc, 7, 7), "model.1.bias": (ngf,)}
    keys.update({"model.4.weight": (ngf * 2, ngf, 3, 3), "model.4.bias": (ngf * 2,)})
    keys.update({"model.7.weight": (ngf * 4, ngf * 2, 3, 3), "model.7.bias": (ngf * 4,)})
    for b in range(n_blocks):
        for conv in (1, 5):
            keys[f"model.{10 + b}.conv_block.{conv}.weight"] = (ngf * 4, ngf * 4, 3, 3)
            keys[f"model.{10 + b}.conv_block.{conv}.bias"] = (ngf * 4,)
    up = 10 + n_blocks
    keys.update({f"model.{up}.weight": (ngf * 4, ngf * 2, 3, 3), f"model.{up}.bias": (ngf * 2,)})
    keys.update({f"model.{up + 3}.weight": (ngf * 2, ngf, 3, 3), f"model.{up + 3}.bias": (ngf,)})
    keys.update({f"model.{up + 7}.weight": (nc, ngf, 7, 7), f"model.{up + 7}.bias": (nc,)})
    return keys


def expected_basic_d_batchnorm(nc: int, ndf: int = 64) -> dict[str, tuple[int, ...]]:
    keys = {"model.0.weight": (ndf, nc, 4, 4), "model.0.bias": (ndf,)}
    keys["model.2.weight"] = (ndf * 2, ndf, 4, 4)
    keys.update(_bn("model.3", ndf * 2))
    keys["model.5.weight"] = (ndf * 4, ndf * 2, 4, 4)
    keys.update(_bn("model.6", ndf * 4))
    keys["model.8.weight"] = (ndf * 8, ndf * 4, 4, 4)
    keys.update(_bn("model.9", ndf * 8))
    keys.update({"model.11.weight": (1, ndf * 8, 4, 4), "model.11.bias": (1,)})
    return keys


def _shapes(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


@pytest.fixture(scope="module")
def pix2pix_256():
    torch.manual_seed(0)
    return ganzoo.create("pix2pix")


@pytest.fixture(scope="module")
def narrow_256():
    """unet_256 and the basic D at width 8: the reference's structure, in files of a few MB."""
    return ganzoo.create("pix2pix", ngf=8, ndf=8)


def test_reference_key_names_unet256_and_basic_d(pix2pix_256):
    assert _shapes(pix2pix_256.G.state_dict()) == expected_unet_batchnorm(8)
    assert _shapes(pix2pix_256.D.state_dict()) == expected_basic_d_batchnorm(6)
    # The reference prints 54.414 M and 2.769 M parameters for these two.
    assert sum(p.numel() for p in pix2pix_256.G.parameters()) == 54_413_955
    assert sum(p.numel() for p in pix2pix_256.D.parameters()) == 2_768_705


def test_reference_key_names_resnet9():
    v = ganzoo.create("cyclegan")
    assert _shapes(v.G_A.state_dict()) == expected_resnet_instance(9)
    assert sum(p.numel() for p in v.G_A.parameters()) == 11_378_179


@pytest.mark.parametrize("ngf", [4, 8])
def test_core_networks_build_the_reference_key_names(ngf):
    """ganzoo.nn builds the reference's trees by architecture name, whichever variant asks for them."""
    assert _shapes(build_generator("unet_256", 3, 3, ngf).state_dict()) == expected_unet_batchnorm(8, ngf)
    assert _shapes(build_generator("unet_64", 1, 1, ngf).state_dict()) == expected_unet_batchnorm(6, ngf, nc=1)
    resnet = build_generator("resnet_6blocks", 3, 3, ngf, norm="instance")
    assert _shapes(resnet.state_dict()) == expected_resnet_instance(6, ngf)
    assert _shapes(build_discriminator("basic", 6, ngf).state_dict()) == expected_basic_d_batchnorm(6, ngf)
    with pytest.raises(ValueError, match="resnet_9blocks"):
        build_generator("unet_100", 3, 3)
    with pytest.raises(ValueError, match="basic, n_layers, pixel"):
        build_discriminator("patch", 3)


def _random_state(shapes: dict[str, tuple[int, ...]], seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in shapes.items():
        out[k] = torch.zeros((), dtype=torch.long) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g)
    return out


def test_reference_files_load_strictly_and_export_back(tmp_path, narrow_256):
    pix2pix_256 = narrow_256
    g_state = _random_state(expected_unet_batchnorm(8, ngf=8))
    d_state = _random_state(expected_basic_d_batchnorm(6, ndf=8), seed=2)
    torch.save(g_state, tmp_path / "latest_net_G.pth")
    torch.save(d_state, tmp_path / "latest_net_D.pth")
    load_reference_state_dict(pix2pix_256, tmp_path / "latest_net_G.pth", "G")
    load_reference_state_dict(pix2pix_256, tmp_path / "latest_net_D.pth", "D")
    out = export_reference_state_dict(pix2pix_256, "G")
    assert out.keys() == g_state.keys() and all(torch.equal(out[k], g_state[k]) for k in g_state)
    path = save_reference_state_dict(pix2pix_256, tmp_path / "again_net_D.pth", "D")
    back = torch.load(path, map_location="cpu", weights_only=True)
    assert all(torch.equal(back[k], d_state[k]) for k in d_state)


def test_reference_quirks_dataparallel_prefix_and_instance_norm_stats(tmp_path):
    v = ganzoo.create("cyclegan", netG="resnet_6blocks", ngf=8, ndf=8, image_size=64)
    state = _random_state(expected_resnet_instance(6, ngf=8))
    # Pre-2019 reference files tracked InstanceNorm statistics; DataParallel adds "module.".
    state["model.2.running_mean"] = torch.zeros(8)
    state["model.2.running_var"] = torch.ones(8)
    torch.save({f"module.{k}": t for k, t in state.items()}, tmp_path / "latest_net_G_B.pth")
    load_reference_state_dict(v, tmp_path / "latest_net_G_B.pth", "G_B")
    assert torch.equal(v.G_B.state_dict()["model.1.weight"], state["model.1.weight"])


def test_mismatched_architecture_is_a_clear_error(tmp_path, narrow_256):
    torch.save(_random_state(expected_unet_batchnorm(7, ngf=8)), tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match="netG=unet_256.*missing keys"):
        load_reference_state_dict(narrow_256, tmp_path / "latest_net_G.pth", "G")
    torch.save(_random_state(expected_unet_batchnorm(8, ngf=16)), tmp_path / "wide_net_G.pth")
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_reference_state_dict(narrow_256, tmp_path / "wide_net_G.pth", "G")
    with pytest.raises(ConfigError, match="valid: G, D"):
        load_reference_state_dict(narrow_256, tmp_path / "latest_net_G.pth", "G_A")


class NotATensor:
    pass


def test_pickles_that_need_code_are_refused(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save({"model.model.0.weight": torch.zeros(1), "evil": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="never unpickles code"):
        read_reference_file(path)
    with open(tmp_path / "raw.pth", "wb") as f:
        pickle.dump(NotATensor(), f)
    with pytest.raises(CheckpointError):
        read_reference_file(tmp_path / "raw.pth")
    torch.save({"a": torch.zeros(1), "b": 3}, tmp_path / "int.pth")
    with pytest.raises(CheckpointError, match="not tensors"):
        read_reference_file(tmp_path / "int.pth")
    with pytest.raises(CheckpointError, match="not found"):
        read_reference_file(tmp_path / "missing.pth")


def test_infer_config_from_reference_state(pix2pix_256):
    assert infer_config(pix2pix_256.G.state_dict(), "G") == {
        "netG": "unet_256",
        "ngf": 64,
        "channels": 3,
        "norm": "batch",
    }
    assert infer_config(pix2pix_256.D.state_dict(), "D") == {"netD": "basic", "ndf": 64, "n_layers_D": 3}


# ---- networks and the variant ----------------------------------------------------------------------------------------


def test_generate_any_size_and_one_phase_without_gan():
    v = ganzoo.create("pix2pix", **Pix2Pix.tiny).eval()
    x = torch.rand(2, 3, 33, 47) * 2 - 1
    assert v.translate(x).shape == x.shape
    assert v.translate((torch.rand(3, 40, 40) * 255).to(torch.uint8)).shape == (3, 40, 40)
    with pytest.raises(ConfigError, match="one way"):
        v.translate(x, "b2a")
    l1only = ganzoo.create("pix2pix", **{**v.tiny, "lambda_gan": 0})
    assert [p.name for s in l1only.stages() for p in s.phases] == ["g"]
    assert [p.name for s in v.stages() for p in s.phases] == ["d", "g"]


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="unet_256"):
        ganzoo.create("pix2pix", netG="unet_100")
    with pytest.raises(ConfigError, match="multiple of 64"):
        ganzoo.create("pix2pix", netG="unet_64", image_size=96)
    with pytest.raises(ganzoo.errors.UnknownNameError, match="basic"):
        ganzoo.create("pix2pix", netD="patch")


def test_image_helper_as_pm1():
    u8 = torch.tensor([[[[0, 255], [128, 64]]]], dtype=torch.uint8)
    out = as_pm1(u8)
    assert out.dtype == torch.float32 and out[0, 0, 0].tolist() == [-1.0, 1.0]
    torch.testing.assert_close(out, u8.double().div(127.5).sub(1).float())
    x = torch.rand(1, 1, 2, 2) * 2 - 1
    assert as_pm1(x) is x
    assert as_pm1(torch.ones(2, dtype=torch.int32)).dtype == torch.float32


def test_linear_decay_matches_reference_lambda_rule():
    # n_epochs = 3, n_epochs_decay = 3: 1, 1, 1, 3/4, 2/4, 1/4.
    assert [linear_decay(s, 6, 3, 3) for s in range(6)] == [1, 1, 1, 0.75, 0.5, 0.25]
    assert linear_decay(0, 100) == 1 and linear_decay(49, 100) == 1 and 0 < linear_decay(99, 100) < 0.05


# ---- data ----------------------------------------------------------------------------------------------------


def test_shapes_pairs_schema_and_jitter_deterministic_by_index():
    req = DataRequest("paired", image_size=32, options={"load_size": 36, "flip": True})
    ds, again = ShapesPairsDataset(req), ShapesPairsDataset(req)
    item = ds[5]
    assert item["a"].dtype == torch.uint8 and item["a"].shape == (3, 32, 32) and item["b"].shape == (3, 32, 32)
    for k in (0, 7, 5 + len(ds), 3 * len(ds) + 11):
        assert all(torch.equal(ds[k][s], again[k][s]) for s in ("a", "b"))
    # Same scene, other jitter: a virtual index a few epochs later crops/mirrors differently.
    draws = {ds.jitter.params(5 + e * len(ds)) for e in range(8)}
    assert len(draws) > 1
    assert not all(torch.equal(ds[5]["a"], ds[5 + e * len(ds)]["a"]) for e in range(1, 8))
    # The test split is not jittered and is a different stream.
    test = ShapesPairsDataset(DataRequest("paired", split="test", image_size=32, options={"load_size": 36}))
    assert not test.jitter.crop and not torch.equal(test[0]["a"], ds[0]["a"])
    gray = ShapesPairsDataset(DataRequest("paired", image_size=32, channels=1))
    assert gray[0]["b"].shape == (1, 32, 32)


def test_jitter_flip_mirrors_both_sides_together():
    req = DataRequest("paired", image_size=32, options={"flip": True})
    ds = ShapesPairsDataset(req)
    plain = ShapesPairsDataset(DataRequest("paired", image_size=32))
    flips = [k for k in range(len(ds), len(ds) + 20) if ds.jitter.params(k)[2]]
    assert flips
    k = flips[0]
    base = plain[k % len(ds)]
    assert torch.equal(ds[k]["a"], base["a"].flip(-1)) and torch.equal(ds[k]["b"], base["b"].flip(-1))
    with pytest.raises(DataError, match="load_size"):
        Jitter(32, {"load_size": 16}, True, 0)


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_aligned_folder_reader(tmp_path):
    rng = np.random.default_rng(0)
    pair = rng.integers(0, 255, (16, 32, 3), dtype=np.uint8)
    _save(tmp_path / "train" / "1.png", pair)
    _save(tmp_path / "train" / "2.png", pair[:, ::-1].copy())
    ds = AlignedFolderDataset(tmp_path, DataRequest("paired", image_size=16))
    item = ds[2]  # wraps to file 0
    assert len(ds) == 2 and torch.equal(item["a"], torch.from_numpy(pair[:, :16]).permute(2, 0, 1))
    assert torch.equal(item["b"], torch.from_numpy(pair[:, 16:]).permute(2, 0, 1))
    swapped = AlignedFolderDataset(tmp_path, DataRequest("paired", image_size=16, options={"direction": "b2a"}))
    assert torch.equal(swapped[0]["a"], item["b"])
    jittered = AlignedFolderDataset(tmp_path, DataRequest("paired", image_size=16, options={"load_size": 20}))
    assert jittered[3]["a"].shape == (3, 16, 16) and torch.equal(jittered[3]["a"], jittered[3]["a"])
    # Val falls back to test, and a missing split names what is there.
    with pytest.raises(DataError, match="found: train"):
        AlignedFolderDataset(tmp_path, DataRequest("paired", split="val", image_size=16))
    _save(tmp_path / "test" / "odd.png", rng.integers(0, 255, (16, 33, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=r"odd\.png has odd width 33"):
        AlignedFolderDataset(tmp_path, DataRequest("paired", split="val", image_size=16))
    with pytest.raises(DataError, match="not found"):
        ganzoo.registry.get("dataset", "aligned").obj(str(tmp_path / "nope"), DataRequest("paired"))
    # The task is checked once, where a spec is built for a variant, against the tasks the dataset registered.
    with pytest.raises(DataError, match=r"'aligned' yields paired data, but 'cyclegan' is a unpaired .*unaligned"):
        build_dataset(f"aligned:{tmp_path}", tiny_variant("cyclegan"))


# ---- commands ------------------------------------------------------------------------------------------------


def test_translate_command_on_files_and_folders(tmp_path, capsys):
    from ganzoo.api import save_model
    from ganzoo.cli import main

    torch.manual_seed(0)
    v = ganzoo.create("pix2pix", **Pix2Pix.tiny)
    model = save_model(v, tmp_path / "m.safetensors")
    rng = np.random.default_rng(1)
    _save(tmp_path / "in" / "x.png", rng.integers(0, 255, (37, 53, 3), dtype=np.uint8))
    _save(tmp_path / "in" / "sub" / "y.jpg", rng.integers(0, 255, (20, 24, 3), dtype=np.uint8))
    _save(tmp_path / "ab.png", rng.integers(0, 255, (20, 40, 3), dtype=np.uint8))
    assert (
        main(["translate", str(model), str(tmp_path / "in"), str(tmp_path / "ab.png"), "-o", str(tmp_path / "o")]) == 0
    )
    assert Image.open(tmp_path / "o" / "x.png").size == (53, 37)
    assert Image.open(tmp_path / "o" / "sub" / "y.png").size == (24, 20)
    assert main(["translate", str(model), str(tmp_path / "ab.png"), "--aligned", "-o", str(tmp_path / "o2")]) == 0
    assert Image.open(tmp_path / "o2" / "ab.png").size == (20, 20)
    assert main(["translate", str(model), str(tmp_path / "ab.png"), "--direction", "b2a", "-o", str(tmp_path)]) == 2
    assert main(["translate", str(model), str(tmp_path / "missing.png"), "-o", str(tmp_path)]) == 2
    assert "missing.png" in capsys.readouterr().err


def test_export_and_import_reference_commands(tmp_path):
    from ganzoo.api import load, save_model
    from ganzoo.cli import main

    torch.manual_seed(0)
    v = ganzoo.create("pix2pix", **Pix2Pix.tiny)
    model = save_model(v, tmp_path / "m.safetensors")
    assert main(["export-reference", str(model), "-o", str(tmp_path / "ref")]) == 0
    files = [str(tmp_path / "ref" / f"latest_net_{n}.pth") for n in ("G", "D")]
    out = tmp_path / "imported.safetensors"
    assert main(["import-reference", "pix2pix", *files, "-o", str(out), "--set", "image_size=32"]) == 0
    back = load(out)
    assert back.config.netG == "unet_32" and back.config.ngf == 4
    a, b = v.state_dict(), back.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_mnist_edges_pairs(shared_data_dir):
    from ganzoo.data.translation import MnistEdgesDataset

    ds = MnistEdgesDataset(shared_data_dir / "mnist", DataRequest("paired", split="test", image_size=28, channels=1))
    item = ds[0]
    assert len(ds) == 10_000 and item["a"].shape == item["b"].shape == (1, 28, 28)
    assert set(item["a"].unique().tolist()) == {0, 255} and item["b"].float().mean() > 10
