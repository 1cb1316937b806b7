"""CycleGAN: history pool (saved in checkpoints, resumable), both directions, unpaired data and its hidden pairing.

(The conformance kit in test_conformance.py trains every stage and checks export and exact resume, pool included.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ganzoo_cyclegan.variant import CycleGAN, HistoryPool
from PIL import Image

import ganzoo
from ganzoo.data.base import DataError, DataRequest
from ganzoo.data.translation import ShapesStylesDataset, UnalignedFolderDataset
from ganzoo.errors import ConfigError
from ganzoo.testing import tiny_variant
from ganzoo.train.data import build_dataset


def test_pool_fills_then_swaps_with_torch_rng_and_round_trips_through_state_dict():
    pool = HistoryPool(4)
    x = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 1, 2, 2)
    assert torch.equal(pool.query(x[:3]), x[:3]) and int(pool.count) == 3
    torch.manual_seed(5)
    first = pool.query(x[3:])  # one more fills the pool, the other may be swapped
    assert int(pool.count) == 4 and torch.equal(first[0], x[3])
    state = {k: v.clone() for k, v in pool.state_dict().items()}
    assert state["images"].shape == (4, 1, 2, 2)
    torch.manual_seed(7)
    out = torch.cat([pool.query(x + 10) for _ in range(5)])
    # A fresh pool loaded from the saved state, with the same RNG state, answers identically.
    again = HistoryPool(4)
    again.load_state_dict(state)
    torch.manual_seed(7)
    assert torch.equal(out, torch.cat([again.query(x + 10) for _ in range(5)]))
    # Over many queries some answers come from the pool (older images) and some are the new ones.
    assert (out < 10).any() and (out >= 10).any()
    assert torch.equal(HistoryPool(0).query(x), x)


def test_pool_is_in_checkpoints_but_not_in_exported_model_files(tmp_path):
    from safetensors import safe_open

    from ganzoo.api import load, save_model
    from ganzoo.variant import StepState

    torch.manual_seed(0)
    v = ganzoo.create("cyclegan", **CycleGAN.tiny)
    batch = {"a": torch.rand(2, 3, 32, 32) * 2 - 1, "b": torch.rand(2, 3, 32, 32) * 2 - 1}
    for step in range(2):
        state = StepState(step=step, stage="train")
        v.loss("g", batch, state)
        v.loss("d", batch, state)
    sd = v.state_dict()
    assert sd["pool_A.images"].shape == (3, 3, 32, 32) and int(sd["pool_A.count"]) == 3
    # Checkpoints hold the pool (exact resume is checked by the conformance kit); model files leave it out.
    path = save_model(v, tmp_path / "m.safetensors")
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
    assert "model/G_A.model.1.weight" in keys and not any("pool" in k for k in keys)
    back = load(path)
    assert int(back.pool_B.count) == 0 and back.pool_B._n == 0
    for k, x in v.state_dict().items():
        if "pool" not in k:
            assert torch.equal(back.state_dict()[k], x), k
    # A model without a pool (imported from the reference) loads with an empty one.
    fresh = ganzoo.create("cyclegan", **CycleGAN.tiny)
    fresh.load_state_dict({k: x for k, x in sd.items() if "pool" not in k})
    assert int(fresh.pool_A.count) == 0


def test_a_training_checkpoint_with_a_filled_pool_loads_with_and_without_ema(tmp_path):
    from ganzoo.train import TrainConfig, Trainer
    from ganzoo.train.checkpoint import list_checkpoints

    cfg = TrainConfig(
        steps=3, device="cpu", precision="fp32", log_every=1, sample_every=0, ckpt_every=3, progress=False,
        tensorboard=False, num_workers=0,
    )  # fmt: skip
    torch.manual_seed(0)
    trained = tiny_variant("cyclegan")
    Trainer(trained, cfg, data="shapes-styles", out=tmp_path / "run", variant_name="cyclegan").fit()
    (_, ckpt), *_ = list_checkpoints(tmp_path / "run" / "checkpoints")
    for ema in (False, True):
        back = ganzoo.load(ckpt, ema=ema)
        # The pool was filled in training (not the empty one a fresh model starts with) and comes back as saved.
        assert int(back.pool_A.count) == 3 and back.pool_A.images.shape == (3, 3, 32, 32)
    raw = ganzoo.load(ckpt, ema=False)
    for k, x in trained.G_A.state_dict().items():
        assert torch.equal(raw.G_A.state_dict()[k], x), k


def test_generate_both_directions_any_size():
    torch.manual_seed(0)
    v = ganzoo.create("cyclegan", **CycleGAN.tiny).eval()
    x = torch.rand(2, 3, 30, 42) * 2 - 1
    ya, yb = v.translate(x, "a2b"), v.translate(x, "b2a")
    assert ya.shape == yb.shape == x.shape and not torch.equal(ya, yb)
    assert torch.equal(ya, v.G_A(torch.nn.functional.pad(x, (0, 2, 0, 2), mode="reflect"))[..., :30, :42])
    with pytest.raises(ConfigError, match="direction"):
        v.translate(x, "a2a")
    assert CycleGAN.make_config().generator == "resnet_9blocks"  # the paper: 9 blocks at 256, 6 at 128
    assert CycleGAN.make_config(CycleGAN.tags["res128"]).generator == "resnet_6blocks"


def test_g_phase_builds_no_graph_into_the_discriminators():
    torch.manual_seed(0)
    v = ganzoo.create("cyclegan", **CycleGAN.tiny)
    batch = {"a": torch.rand(2, 3, 32, 32) * 2 - 1, "b": torch.rand(2, 3, 32, 32) * 2 - 1}
    from ganzoo.variant import StepState

    state = StepState(step=0, stage="train")
    losses = v.loss("g", batch, state)
    losses["loss"].backward()
    assert all(p.grad is None for p in v.D_A.parameters()) and all(p.requires_grad for p in v.D_A.parameters())
    assert all(p.grad is not None for p in v.G_A.parameters())
    assert set(losses) >= {"gan_a", "gan_b", "cycle_a", "cycle_b", "idt_a", "idt_b"}
    d = v.loss("d", batch, state)
    assert torch.isfinite(d["loss"]) and int(v.pool_A.count) == 2


def test_shapes_styles_unpaired_with_hidden_pairing():
    req = DataRequest("unpaired", image_size=32, options={"load_size": 36, "flip": True})
    ds = ShapesStylesDataset(req)
    item = ds[3]
    assert {k: tuple(x.shape) for k, x in item.items()} == {"a": (3, 32, 32), "b": (3, 32, 32), "b_true": (3, 32, 32)}
    assert all(torch.equal(item[k], ShapesStylesDataset(req)[3][k]) for k in item)

    def ink(x):  # foreground mask: far from the background colour (the corners' median)
        corners = torch.stack([x[:, 0, 0], x[:, 0, -1], x[:, -1, 0], x[:, -1, -1]]).float().median(0).values
        return (x.float() - corners[:, None, None]).abs().sum(0) > 60

    def iou(m, n):
        return float((m & n).sum()) / max(1, float((m | n).sum()))

    same = np.mean([iou(ink(ds[k]["a"]), ink(ds[k]["b_true"])) for k in range(12)])
    other = np.mean([iou(ink(ds[k]["a"]), ink(ds[k]["b"])) for k in range(12)])
    assert same > 0.7 and other < 0.5


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_unaligned_folder_reader(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("trainA", 3), ("trainB", 2), ("testA", 1), ("testB", 1)):
        for i in range(n):
            _save(tmp_path / name / f"{i}.png", rng.integers(0, 255, (20, 24, 3), dtype=np.uint8))
    ds = UnalignedFolderDataset(tmp_path, DataRequest("unpaired", image_size=16))
    assert len(ds) == 3
    assert ds[4]["a"].shape == (3, 16, 16) and torch.equal(ds[4]["a"], ds[1]["a"])
    assert torch.equal(ds[7]["b"], UnalignedFolderDataset(tmp_path, DataRequest("unpaired", image_size=16))[7]["b"])
    assert len({ds[k]["b"].sum().item() for k in range(12)}) == 2  # both B files get drawn
    val = UnalignedFolderDataset(tmp_path, DataRequest("unpaired", split="val", image_size=16))
    assert len(val) == 1
    (tmp_path / "testB" / "0.png").unlink()
    (tmp_path / "testB").rmdir()
    with pytest.raises(DataError, match="testB"):
        UnalignedFolderDataset(tmp_path, DataRequest("unpaired", split="test", image_size=16))
    with pytest.raises(DataError, match=r"'unaligned' yields unpaired data, but 'pix2pix' is a paired .*aligned"):
        build_dataset(f"unaligned:{tmp_path}", tiny_variant("pix2pix"))


@pytest.mark.parametrize("phase", ["g", "d"])
def test_batched_calls_give_the_losses_and_gradients_of_separate_calls(phase):
    """With instance norm each image is computed on its own, so the variant batches a network's calls; the losses
    and every gradient equal those of one call per input (the reference's order)."""
    from ganzoo.variant import StepState

    torch.manual_seed(0)
    batched = ganzoo.create("cyclegan", **{**CycleGAN.tiny, "pool_size": 0}).double()
    separate = ganzoo.create("cyclegan", **{**CycleGAN.tiny, "pool_size": 0}).double()
    separate.load_state_dict(batched.state_dict())
    separate.per_sample = False
    assert batched.per_sample
    batch = {"a": torch.rand(2, 3, 32, 32, dtype=torch.double) * 2 - 1, "b": torch.rand(2, 3, 32, 32).double() * 2 - 1}
    results = []
    for v in (batched, separate):
        state = StepState(step=0, stage="train")
        if phase == "d":
            v.loss("g", batch, state)  # leaves the fakes in the step's cache
        losses = v.loss(phase, batch, state)
        losses["loss"].backward()
        results.append((losses, {k: p.grad for k, p in v.named_parameters() if p.grad is not None}))
    (la, ga), (lb, gb) = results
    assert set(la) == set(lb) and set(ga) == set(gb) and ga
    for k in la:
        torch.testing.assert_close(la[k], lb[k])
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k])
    assert not ganzoo.create("cyclegan", **{**CycleGAN.tiny, "norm": "batch"}).per_sample


def test_shapes32_tag_is_the_recipe_of_the_benchmarks():
    # docs/variants/cyclegan.md "The recipe": 32 px, six residual blocks at ngf 16, ndf 32, batch 4, Adam 4e-4 for all
    # four networks, 12,000 steps, the rate constant for the first half and linear to 0 over the second.
    v = ganzoo.create("cyclegan.shapes32")
    c = v.config
    assert (c.image_size, c.generator, c.ngf, c.ndf, c.netD, c.batch_size) == (32, "resnet_6blocks", 16, 32, "basic", 4)
    assert (c.lr_g, c.lr_d, c.beta1, c.lambda_identity, c.pool_size) == (4e-4, 4e-4, 0.5, 0.5, 50)
    assert v.default_steps == 12000 and v.batch_size == 4
    g, d = v.stages()[0].phases
    assert v.lr_factor(g, 5998, 12000) == 1.0 and v.lr_factor(d, 8999, 12000) == pytest.approx(0.5, abs=1e-3)
    assert v.lr_factor(g, 11999, 12000) == pytest.approx(0.0, abs=1e-3)


def test_shapes32_trains_in_fp32_under_precision_auto(tmp_path, monkeypatch):
    # docs/variants/cyclegan.md "The recipe": under bf16 at two threads seeds 0 / 1 ended near 23 dB, in fp32 above 25.
    # The tag asks for fp32 through its config; the contract's default and an explicit --precision still win.
    from ganzoo.config import apply_overrides
    from ganzoo.train import TrainConfig, Trainer
    from ganzoo.train import config as train_config

    monkeypatch.setattr(train_config, "cpu_has_bf16", lambda: True)  # as on a CPU with native bf16

    def dtype(variant, **kw):
        return Trainer(variant, TrainConfig(device="cpu", **kw), out=tmp_path).dtype

    small = {"ngf": 4, "ndf": 4}
    recipe = ganzoo.create("cyclegan.shapes32", **small)
    assert recipe.config.reduced_precision is False and dtype(recipe) == torch.float32
    assert dtype(recipe, precision="bf16") == torch.bfloat16
    assert dtype(ganzoo.create("cyclegan", **CycleGAN.tiny)) == torch.bfloat16
    assert dtype(ganzoo.create("cyclegan.shapes32", **small, reduced_precision=True)) == torch.bfloat16
    assert apply_overrides(recipe.config, {"reduced_precision": "true"}).reduced_precision is True  # as --set gives it
