"""ONNX export: every built-in variant's inference network, run in onnxruntime, gives what its PyTorch inference
method gives, to a maximum absolute difference of ATOL (1e-4, fp32), at two batch sizes (and two image sizes where
the graph allows any), through one file."""

import json
import sys

import pytest
import torch

from ganzoo import GANVariant, Task
from ganzoo.cli import main
from ganzoo.errors import ConfigError
from ganzoo.export_onnx import ATOL, InferenceGraph, InferenceNet, export_onnx, plain_copy, run_onnx
from ganzoo.testing import tiny_variant

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _model(name, scale=None, **overrides):
    torch.manual_seed(0)
    model = tiny_variant(name, **overrides).eval()
    if scale is not None:
        # Tiny untrained DCGAN and AttnGAN images are ~1e-4 everywhere (their init is N(0, 0.02)); larger weights
        # make the comparison, and its dependence on labels and words, meaningful.
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model


def _export(variant, tmp_path, stem):
    written = export_onnx(variant, tmp_path / f"{stem}.onnx")
    for path, diff in written:
        assert path.is_file() and diff <= ATOL
    return [p for p, _ in written]


def _close(got, want):
    assert got.shape == want.shape
    diff = float((got.double() - want.double().cpu()).abs().max())
    assert diff <= ATOL, diff


def _metadata(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _images(*shape, seed):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("name", ["vanilla", "vanilla.ring8", "dcgan"])
def test_noise_generators(tmp_path, name):
    v = _model(name, scale=0.3 if name == "dcgan" else None)
    (path,) = _export(v, tmp_path, "g")
    out = "points" if name.endswith("ring8") else "image"
    meta = _metadata(path)
    assert meta["ganzoo.variant"] == name and meta["ganzoo.graph"] == "generator"
    assert json.loads(meta["ganzoo.config"])["nz"] == v.config.nz
    latent = (v.config.nz, 1, 1) if name == "dcgan" else (v.config.nz,)
    for batch in (1, 5):
        z = _randn(batch, *latent, seed=batch)
        (got,) = run_onnx(path, [z], ["z"])
        want = v.generate(z=z)
        assert want.std() > 0.01  # a real comparison, not of constants
        _close(got, want)
        assert got.shape[1:] == ((2,) if out == "points" else (v.channels, v.image_size, v.image_size))


def test_class_conditional_generator(tmp_path):
    v = _model("dcgan.cond", scale=0.2)
    (path,) = _export(v, tmp_path, "cond")
    assert _metadata(path)["num_classes"] == str(v.num_classes)
    for batch in (2, 7):
        z = _randn(batch, v.config.nz, 1, 1, seed=batch)
        labels = (torch.arange(batch) * 5) % v.num_classes
        (got,) = run_onnx(path, [z, labels], ["z", "labels"])
        _close(got, v.generate(z=z, labels=labels))
    # The labels reach the graph: the same noise under another class is another image.
    z = _randn(1, v.config.nz, 1, 1, seed=0)
    a, b = (run_onnx(path, [z, torch.tensor([k])], ["z", "labels"])[0] for k in (0, 1))
    assert (a - b).abs().max() > 1e-3


def test_paired_translator(tmp_path):
    v = _model("pix2pix", scale=0.15)
    (path,) = _export(v, tmp_path, "p2p")
    stride = int(_metadata(path)["stride"])
    for batch, h, w in ((1, stride, stride), (3, 2 * stride, 3 * stride)):
        x = _images(batch, v.channels, h, w, seed=batch)
        (got,) = run_onnx(path, [x], ["a"])
        want = v.translate(x)
        assert want.std() > 0.05
        _close(got, want)


def test_unpaired_translator_writes_one_file_per_direction(tmp_path):
    v = _model("cyclegan")
    paths = _export(v, tmp_path, "cg")
    assert [p.name for p in paths] == ["cg.a2b.onnx", "cg.b2a.onnx"]
    for path, direction, src in zip(paths, ("a2b", "b2a"), ("a", "b")):
        assert _metadata(path)["ganzoo.graph"] == direction
        for batch, side in ((2, 32), (3, 44)):
            x = _images(batch, v.channels, side, side + 4, seed=batch)
            (got,) = run_onnx(path, [x], [src])
            want = v.translate(x, direction)
            assert want.std() > 0.05
            _close(got, want)


def test_upscaler_has_dynamic_batch_and_size(tmp_path):
    v = _model("srgan")
    (path,) = _export(v, tmp_path, "sr")
    s = v.scale
    for batch, h, w in ((1, 6, 6), (4, 9, 13)):
        x = _images(batch, v.channels, h, w, seed=h)
        (got,) = run_onnx(path, [x], ["lr"])
        assert got.shape == (batch, v.channels, s * h, s * w)
        want = v.upscale(x)
        assert want.std() > 0.02
        _close(got, want)


def test_text_to_image_includes_the_text_encoder(tmp_path):
    from ganzoo.data.captions import Vocabulary, tokenize

    v = _model("attngan", scale=0.3)
    captions = [
        "a large red circle on the left",
        "a small blue square above a large green triangle and a very long tail of many words",
        "yellow",
        "a small white triangle left of a large purple circle",
        "an unseen zebra",
    ]
    v.vocab.fit(captions[:4])
    (path,) = _export(v, tmp_path, "t2i")
    meta = _metadata(path)
    words = json.loads(meta["vocab"])
    assert words == v.vocab.to_list() and int(meta["max_words"]) == v.config.max_words

    def encode(caps):
        # Tokenized from the file's metadata alone, as a runtime without ganzoo would.
        index = {w: i for i, w in enumerate(words)}
        n = int(meta["max_words"])
        ids = [[index.get(t, Vocabulary.UNK) for t in tokenize(c)][:n] or [Vocabulary.UNK] for c in caps]
        tokens = torch.tensor([i + [Vocabulary.PAD] * (n - len(i)) for i in ids])
        return tokens, torch.tensor([len(i) for i in ids])

    names = ["tokens", "lengths", "z", "eps"]
    for caps in (captions[:1], captions):
        z, eps = _randn(len(caps), v.config.nz, seed=2), _randn(len(caps), v.config.c_dim, seed=3)
        (got,) = run_onnx(path, [*encode(caps), z, eps], names)
        want = v.generate_from_captions(caps, z=z, eps=eps)
        assert want.std() > 0.05
        _close(got, want)
    # The words reach the image: two captions under the same noise give two images.
    z, eps = _randn(1, v.config.nz, seed=4).repeat(2, 1), _randn(1, v.config.c_dim, seed=5).repeat(2, 1)
    (got,) = run_onnx(path, [*encode(captions[2:4]), z, eps], names)
    assert (got[0] - got[1]).abs().max() > 1e-2


@pytest.mark.parametrize("complexity", ["none", "tv"])
def test_anomaly_scorer(tmp_path, complexity):
    v = _model("ganomaly", complexity=complexity)
    x = _images(6, v.channels, v.image_size, v.image_size, seed=0)
    raw = v.raw_score(x)
    v.calibration = {"min": float(raw.min()), "max": float(raw.max()), "threshold": 0.5}
    (path,) = _export(v, tmp_path, "score")
    meta = _metadata(path)
    assert meta["score"] == "latent" and float(meta["threshold"]) == 0.5 and meta["calibrated"] == "true"
    assert meta["complexity"] == complexity
    for xs in (x, x[:1]):
        (got,) = run_onnx(path, [xs], ["image"])
        _close(got, v.score(xs))
    # Normalized with the calibration baked into the graph: the calibration images span 0..1.
    (got,) = run_onnx(path, [x], ["image"])
    assert float(got.min()) == pytest.approx(0, abs=ATOL) and float(got.max()) == pytest.approx(1, abs=ATOL)


def test_export_runs_the_plain_torch_layers_and_leaves_the_model_alone():
    from ganzoo.nn import fast

    v = _model("pix2pix")
    fast_layers = [type(m) for m in v.G.modules() if getattr(type(m), "reference_class", None)]
    assert fast_layers and all(t.__module__ == fast.__name__ for t in fast_layers)
    copied = plain_copy(v.G)
    assert not any(getattr(type(m), "reference_class", None) for m in copied.modules())
    assert not copied.training and copied.state_dict().keys() == v.G.state_dict().keys()
    assert [type(m) for m in v.G.modules() if getattr(type(m), "reference_class", None)] == fast_layers
    x = _images(1, v.channels, 32, 32, seed=0)
    with torch.no_grad():
        _close(copied(x), v.G(x))


@pytest.mark.parametrize("name", ["vanilla.ring8", "vanilla.grid25", "dcgan"])
def test_a_drs_model_adds_its_acceptance_graph(tmp_path, name):
    from ganzoo import rejection

    v = _model(name, scale=0.3 if name == "dcgan" else None)
    latent = (v.config.nz, 1, 1) if name == "dcgan" else (v.config.nz,)
    assert (name == "vanilla.grid25") == isinstance(v.ratio_net(), rejection.FourierCritic)  # the grid's critic
    with torch.no_grad():
        v.drs_calibration = rejection.calibrate(v.ratio_net()(v.G(_randn(2000, *latent, seed=0))), 50.0)
    paths = _export(v, tmp_path, "m")
    assert [p.name for p in paths] == ["m.generator.onnx", "m.acceptance.onnx"]
    meta = _metadata(paths[1])
    assert meta["ganzoo.graph"] == "acceptance" and json.loads(meta["drs"]) == v.drs_calibration.to_dict()
    for batch in (1, 7):
        z = _randn(batch, *latent, seed=batch)
        (got,) = run_onnx(paths[1], [z], ["z"])
        _close(got, v.acceptance_probability(z))
    assert v.acceptance_probability(_randn(500, *latent, seed=9)).std() > 0.01  # a real comparison, not of constants


@pytest.mark.parametrize("name", ["vanilla", "dcgan", "pix2pix", "cyclegan", "srgan", "attngan", "ganomaly"])
def test_every_builtin_variant_has_inference_graphs(name):
    graphs = _model(name).inference_graphs()
    assert graphs and all(isinstance(g, InferenceGraph) for g in graphs)
    assert len({g.name for g in graphs}) == len(graphs)


class _NoExport(GANVariant):
    name = "noexport"
    task = Task.UNCONDITIONAL

    class Config:
        pass


def test_a_variant_without_graphs_and_a_wrong_suffix_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="noexport has no ONNX export"):
        export_onnx(_NoExport(), tmp_path / "x.onnx")
    with pytest.raises(ConfigError, match=r"end in \.onnx"):
        export_onnx(_model("dcgan"), tmp_path / "x.safetensors")


def test_graph_contract_is_checked():
    net = InferenceNet(lambda nets, z: nets.G(z), G=torch.nn.Identity())
    with pytest.raises(ValueError, match="'batch'"):
        InferenceGraph("g", net, (torch.zeros(1, 2),), ("z",), ("image",), {"z": {0: "batch"}})
    with pytest.raises(ValueError, match="distinct"):
        InferenceGraph("g", net, (torch.zeros(1, 2),), ("z",), ("z",), {"z": {0: "batch"}})


class _Baked:
    """Not a variant: just what export_onnx reads, with a graph whose trace bakes in the batch size."""

    name = "baked"

    def __init__(self, fn):
        self.fn = fn

    def config_dict(self):
        return {}

    def inference_graphs(self):
        net = InferenceNet(self.fn)
        return [
            InferenceGraph("g", net, (torch.ones(2, 4),), ("x",), ("y",), {"x": {0: "batch"}, "y": {0: "batch"}}),
            InferenceGraph(
                "h",
                InferenceNet(lambda nets, x: x * 2),
                (torch.ones(2, 4),),
                ("x",),
                ("y",),
                {"x": {0: "batch"}, "y": {0: "batch"}},
            ),
        ]


@pytest.mark.parametrize(
    "fn,message",
    [
        # int() of a size is a constant to the tracer: the file works at batch 2 only.
        (lambda nets, x: x.reshape(int(x.shape[0]), -1) * 2, "has shape"),
        (lambda nets, x: x.reshape(int(x.shape[0]), 4) * 2, "onnxruntime cannot run it"),
    ],
)
def test_a_graph_that_does_not_generalize_is_refused_and_nothing_is_written(tmp_path, fn, message):
    from ganzoo.export_onnx import ExportError

    with pytest.raises(ExportError, match=message):
        export_onnx(_Baked(fn), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_missing_extra_names_the_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    rc = main(["export", str(tmp_path / "no-run"), "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'ganzoo[onnx]'" in err and "onnxruntime" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_exports_a_trained_run(capsys, tmp_path):
    from ganzoo import load

    run = tmp_path / "run"
    tiny = ["--set", "ngf=8", "--set", "ndf=8", "--set", "nz=8", "--set", "image_size=32", "--batch-size", "4"]
    fast = ["--device", "cpu", "--precision", "fp32", "--no-progress"]
    assert main(["train", "dcgan", *tiny, *fast, "--steps", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "dcgan.onnx"
    rc = main(["export", str(run), "--format", "onnx", "-o", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert str(out) in printed.out and "onnxruntime matches PyTorch" in printed.out
    model = load(run)
    for batch in (3, 8):
        z = _randn(batch, 8, 1, 1, seed=batch)
        _close(run_onnx(out, [z], ["z"])[0], model.generate(z=z))
    rc = main(["export", str(run), "--format", "onnx", "-o", str(tmp_path / "dcgan.bin")])
    assert rc == 2 and ".onnx" in capsys.readouterr().err
