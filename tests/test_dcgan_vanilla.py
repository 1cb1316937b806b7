"""Architectures of the first two variants against the reference numbers."""

import pytest
import torch

import ganzoo


def count(m):
    return sum(p.numel() for p in m.parameters())


def test_dcgan_64_matches_pytorch_examples_parameter_counts():
    v = ganzoo.create("dcgan")  # 64x64, nz 100, ngf = ndf = 64
    assert count(v.G) == 3_576_704
    assert count(v.D) == 2_765_568
    z = torch.randn(2, 100, 1, 1)
    x = v.G(z)
    assert x.shape == (2, 3, 64, 64) and x.abs().max() <= 1
    assert v.D(x).shape == (2,)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (128, 3)])
def test_dcgan_sizes(size, channels):
    v = ganzoo.create("dcgan", image_size=size, channels=channels, ngf=8, ndf=8)
    x = v.G(torch.randn(3, 100, 1, 1))
    assert x.shape == (3, channels, size, size)
    assert v.D(x).shape == (3,)


def test_dcgan_init_is_n0_002():
    v = ganzoo.create("dcgan")
    w = v.G.main[3].weight
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3


def test_dcgan_bad_size_is_a_config_error():
    with pytest.raises(ganzoo.ConfigError, match="image_size"):
        ganzoo.create("dcgan", image_size=30)


def test_conditional_dcgan_uses_labels():
    torch.manual_seed(0)
    v = ganzoo.create("dcgan.cond", image_size=32, ngf=8, ndf=8).eval()
    z = torch.randn(1, 100, 1, 1).repeat(2, 1, 1, 1)
    out = v.generate(z=z, labels=torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])  # same noise, different class -> different image
    assert v.D(out, torch.tensor([0, 1])).shape == (2,)


def test_packing_divides_the_discriminator_batch():
    v = ganzoo.create("dcgan.pac2", image_size=32, ngf=8, ndf=8)
    assert v.D.features[0].in_channels == 6
    assert v.D(torch.randn(8, 3, 32, 32)).shape == (4,)
    with pytest.raises(ganzoo.ConfigError, match="divisible"):
        ganzoo.create("dcgan", pack=3, batch_size=64)


def test_vanilla_keras_architecture():
    v = ganzoo.create("vanilla")
    assert [m.out_features for m in v.G.main if isinstance(m, torch.nn.Linear)] == [128, 784]
    assert [m.out_features for m in v.D.main if isinstance(m, torch.nn.Linear)] == [128, 1]
    assert v.generate(n=3).shape == (3, 1, 28, 28)


def test_vanilla_2d_pacgan_architecture():
    v = ganzoo.create("vanilla.ring8")
    linear = [m for m in v.G.main if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear] == [400, 400, 400, 400, 2]
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in v.G.main)
    assert v.generate(n=5).shape == (5, 2)
    assert v.D(torch.randn(6, 2)).shape == (6,)


def test_r1_and_gp_phases_train():
    from ganzoo.testing import check_variant

    check_variant("dcgan", resume=False, r1_gamma=1.0, r1_every=1)
    check_variant("dcgan", resume=False, loss="wgan", gp_weight=10.0)


def test_demo_tag_is_the_make_demo_recipe():
    from pathlib import Path

    v = ganzoo.create("dcgan.demo")
    c = v.config
    assert (c.image_size, c.ngf, c.ndf, c.batch_size, c.lr_g, c.lr_d) == (32, 32, 32, 16, 1e-3, 1e-3)
    assert v.default_steps == 3000 and v.batch_size == 16
    # `make demo` trains the tag by name, for the tag's own length.
    make = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    demo_line = next(line for line in make.splitlines() if "dcgan.demo" in line)
    assert "--steps" not in demo_line and "--batch-size" not in demo_line


def test_mnist_tag_is_the_recipe_of_the_benchmarks():
    # docs/benchmarks.md "MNIST recipe": the tag by name trains the FC networks at batch 128, D 2e-4 and G 1e-3
    # decaying linearly to 0 over the last 30 % of its 6,000 steps.
    v = ganzoo.create("dcgan.mnist")
    c = v.config
    assert (c.image_size, c.channels, c.data, c.fc, c.batch_size) == (28, 1, "mnist", 256, 128)
    assert (c.lr_g, c.lr_d, c.beta1, c.lr_decay) == (1e-3, 2e-4, 0.5, 0.3)
    assert v.default_steps == 6000 and v.batch_size == 128
    d, g = v.stages()[0].phases
    assert v.lr_factor(d, 4199, 6000) == 1.0 and v.lr_factor(g, 5100, 6000) == pytest.approx(0.5, abs=1e-3)


def test_dcgan_fc_layers_are_infogans_mnist_networks():
    # fc=1024 at 28x28: InfoGAN's MNIST nets (G: FC 1024, FC 7x7x128, deconv 64, deconv 1; D: conv 64, conv 128,
    # FC 1024, logit), each layer but the first of D and the last of G with batch norm.
    v = ganzoo.create("dcgan.mnist", fc=1024)  # the tag's own fc is 256
    assert count(v.G) == 100 * 1024 + 2 * 1024 + 1024 * 6272 + 2 * 6272 + 128 * 64 * 16 + 2 * 64 + 64 * 16
    assert count(v.D) == 64 * 16 + 64 * 128 * 16 + 2 * 128 + 6272 * 1024 + 2 * 1024 + 1024
    x = v.G(torch.randn(3, 100, 1, 1))
    assert x.shape == (3, 1, 28, 28) and x.abs().max() <= 1 and v.D(x).shape == (3,)
    # Without fc the networks and their checkpoint keys are the DCGAN paper's, as before the option.
    plain = ganzoo.create("dcgan", image_size=28, channels=1)
    assert plain.G.fc is None and list(plain.G.state_dict())[0] == "main.0.weight"
    assert list(plain.D.state_dict())[-1] == "head.weight"
    cond = ganzoo.create("dcgan.cond", image_size=32, ngf=8, ndf=8, fc=16)
    out = cond.G(torch.randn(4, 100, 1, 1), torch.tensor([0, 1, 2, 3]))
    assert cond.D(out, torch.tensor([0, 1, 2, 3])).shape == (4,) and cond.D.embed.embedding_dim == 16
    pac = ganzoo.create("dcgan.pac2", image_size=32, ngf=8, ndf=8, fc=16)
    assert pac.D(torch.randn(8, 3, 32, 32)).shape == (4,)
    with pytest.raises(ganzoo.ConfigError, match="fc must be >= 0"):
        ganzoo.create("dcgan", fc=-1)
