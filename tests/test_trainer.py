"""The trainer: phases, gradient toggling, checkpoints (atomic, verified, kept), exact resume, logs, EMA."""

import json

import pytest
import torch

import ganzoo
from ganzoo.errors import CheckpointError
from ganzoo.testing import tiny_variant
from ganzoo.train import TrainConfig, Trainer
from ganzoo.train import checkpoint as ckpt
from ganzoo.utils.files import atomic_write_bytes


def cfg(**kw):
    base = dict(device="cpu", precision="fp32", progress=False, tensorboard=False, log_every=1, n_samples=4)
    base.update(kw)
    return TrainConfig(**base)


def test_fit_writes_everything(tmp_path):
    t = Trainer(tiny_variant("dcgan"), cfg(steps=4, sample_every=2, ckpt_every=2, keep=1), out=tmp_path)
    res = t.fit()
    assert res["step"] == 4
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step-00000002.png", "step-00000004.png"]
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [4]  # keep=1
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert {"d/loss", "g/loss", "d/real", "d/fake", "img_per_s", "lr/d", "lr/g"} <= set(records[0])
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["variant"] == "dcgan" and run["config"]["ngf"] == 8
    model = ganzoo.load(tmp_path / "model.safetensors")
    assert model.generate(n=2, seed=0).shape == (2, 3, 32, 32)


def test_d_weights_get_no_gradient_in_g_phase_and_g_forward_runs_once(tmp_path):
    v = tiny_variant("dcgan")
    calls = {"G": 0}
    v.G.register_forward_hook(lambda *a: calls.__setitem__("G", calls["G"] + 1))
    grads_seen = {}

    orig = v.loss

    def spy(phase, batch, state):
        out = orig(phase, batch, state)
        grads_seen[phase] = {n: p.requires_grad for n, p in v.D.named_parameters()}
        return out

    v.loss = spy
    Trainer(v, cfg(steps=3, sample_every=0, ckpt_every=0), out=tmp_path).fit()
    assert not any(grads_seen["g"].values())  # D frozen during G's phase
    assert all(grads_seen["d"].values())
    # 3 training steps -> 3 generator forwards (+1 for the final sample grid).
    assert calls["G"] == 3 + 1


def test_resume_is_exact(tmp_path):
    torch.manual_seed(0)
    a = Trainer(tiny_variant("vanilla"), cfg(steps=6, ckpt_every=3), out=tmp_path / "a")
    a.fit()
    torch.manual_seed(0)
    Trainer(tiny_variant("vanilla"), cfg(steps=3, ckpt_every=3), out=tmp_path / "b").fit()
    b = Trainer(tiny_variant("vanilla"), cfg(steps=6, ckpt_every=3), out=tmp_path / "b", resume=True)
    b.fit()
    for (k, x), y in zip(a.variant.state_dict().items(), b.variant.state_dict().values()):
        assert torch.equal(x, y), k


def test_resume_with_other_batch_size_is_refused(tmp_path):
    Trainer(tiny_variant("vanilla"), cfg(steps=2), out=tmp_path).fit()
    t = Trainer(tiny_variant("vanilla"), cfg(steps=4, batch_size=8), out=tmp_path, resume=True)
    with pytest.raises(ganzoo.ConfigError, match="batch size 4"):
        t.fit()


def test_tampered_and_truncated_checkpoints_are_detected_and_skipped(tmp_path):
    Trainer(tiny_variant("vanilla"), cfg(steps=4, ckpt_every=2), out=tmp_path).fit()
    (s4, p4), (s2, p2) = ckpt.list_checkpoints(tmp_path / "checkpoints")
    data = bytearray(p4.read_bytes())
    data[-10] ^= 0xFF  # flip bits inside the last tensor
    p4.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="integrity"):
        ckpt.load_tensors(p4)
    t = Trainer(tiny_variant("vanilla"), cfg(steps=5), out=tmp_path, resume=True)
    assert t.fit()["step"] == 5  # fell back to step 2 and trained on
    p2.write_bytes(p2.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ckpt.load_tensors(p2)


def test_pickle_files_are_refused(tmp_path):
    p = tmp_path / "model.pth"
    torch.save({"x": torch.zeros(1)}, p)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        ganzoo.load(p)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary left behind


def test_atomically_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    path = tmp_path / "samples.png"
    atomic_write_bytes(path, b"png")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's private 0600


def test_ema_tracks_generator_and_is_used_for_export(tmp_path):
    t = Trainer(tiny_variant("dcgan"), cfg(steps=3, ema_decay=0.9), out=tmp_path)
    t.fit()
    ema_w = t.ema.emas["G"].module.main[0].weight
    assert not torch.equal(ema_w, t.variant.G.main[0].weight)
    exported = ganzoo.load(tmp_path / "model.safetensors")
    assert torch.equal(exported.G.main[0].weight, ema_w)
    raw = ganzoo.load(tmp_path, ema=False)
    assert torch.equal(raw.G.main[0].weight, t.variant.G.main[0].weight)


def test_ema_warm_up_caps_the_decay_as_the_help_says():
    # TrainConfig.ema_decay's help and EMA's docstring: step t averages with min(decay, 1 - (1 + t)^(-2/3)), so a
    # decay of 0.999 only binds after about 31,600 steps and shorter runs average their last few hundred steps.
    from ganzoo.train.ema import EMA

    emas = EMA(tiny_variant("dcgan"), 0.999).emas["G"]
    assert emas.get_decay(0) == 0.0
    assert abs(emas.get_decay(8001) - (1 - 8001 ** (-2 / 3))) < 1e-12 and emas.get_decay(8001) < 0.998
    assert emas.get_decay(20_000) < 0.999 and emas.get_decay(40_000) == 0.999


def test_lazy_phase_runs_every_k_steps(tmp_path):
    Trainer(tiny_variant("dcgan", r1_gamma=1.0, r1_every=2), cfg(steps=4), out=tmp_path).fit()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [("d_r1/loss" in r) for r in records] == [True, False, True, False]


def test_bf16_autocast_step_is_finite(tmp_path):
    res = Trainer(tiny_variant("dcgan"), cfg(steps=2, precision="bf16"), out=tmp_path).fit()
    assert all(v == v for v in res["losses"].values())


def test_train_event_hook_sees_the_run(tmp_path):
    from ganzoo import hookimpl
    from ganzoo.plugins import register_plugin, unregister_plugin

    events = []

    class Watcher:
        @hookimpl
        def ganzoo_train_event(self, event, trainer, info):
            events.append((event, info.get("step")))

    register_plugin(Watcher(), "watcher")
    try:
        Trainer(tiny_variant("vanilla"), cfg(steps=2, log_every=2, ckpt_every=2), out=tmp_path).fit()
    finally:
        unregister_plugin("watcher")
    names = [e for e, _ in events]
    assert names[0] == "stage" or names[0] == "start"
    assert {"start", "stage", "log", "checkpoint", "sample", "end"} <= set(names)
    assert ("log", 2) in events


def test_bad_train_config_values():
    with pytest.raises(ganzoo.ConfigError, match="steps must be >= 1"):
        TrainConfig(steps=0).validate()
    with pytest.raises(ganzoo.ConfigError, match="CUDA is not available"):
        if torch.cuda.is_available():
            pytest.skip("CUDA present")
        TrainConfig(device="cuda").validate()
    with pytest.raises(ganzoo.ConfigError, match="not valid"):
        TrainConfig(device="gpu0").validate()


def test_a_model_file_with_missing_or_extra_weights_is_refused(tmp_path):
    v = tiny_variant("dcgan")
    path = ganzoo.save_model(v, tmp_path / "m.safetensors")
    tensors, meta = ckpt.load_tensors(path)
    meta = {k: v for k, v in meta.items() if not k.startswith("ganzoo.") or k in ("ganzoo.variant", "ganzoo.config")}
    dropped = dict(tensors)
    dropped.pop(next(k for k in dropped if k.endswith("weight")))
    ckpt.save_tensors(tmp_path / "missing.safetensors", dropped, meta, ckpt.FORMAT_MODEL)
    with pytest.raises(CheckpointError, match="missing"):
        ganzoo.load(tmp_path / "missing.safetensors")
    ckpt.save_tensors(
        tmp_path / "extra.safetensors", {**tensors, "model/G.extra": torch.zeros(1)}, meta, ckpt.FORMAT_MODEL
    )
    with pytest.raises(CheckpointError, match="unexpected"):
        ganzoo.load(tmp_path / "extra.safetensors")


# ---- the variant lifecycle -------------------------------------------------------------------------------------------


def recording_variant(**overrides):
    """A tiny vanilla GAN that records every lifecycle call, in order, with its arguments."""
    base = tiny_variant("vanilla", **overrides)

    class Recording(type(base)):
        def __init__(self, config):
            super().__init__(config)
            self.calls = []
            self.prepared = 0  # saved with the model: shows whether prepare_data ran after a checkpoint restore
            self.calibrated = None

        def prepare_data(self, dataset):
            self.calls.append(("prepare_data", dataset, self.prepared))
            self.prepared += 1

        def loss(self, phase, batch, state):
            if not self.calls or self.calls[-1][:2] != ("loss", state.step):
                self.calls.append(("loss", state.step))
            return super().loss(phase, batch, state)

        def on_step_end(self, step, losses):
            self.calls.append(("on_step_end", step, losses))

        def on_train_end(self, info):
            self.calls.append(("on_train_end", info, (info.out / "model.safetensors").exists(), self.training))
            self.calibrated = float(self.G.main[0].weight.sum())  # with the weights being exported (EMA)

        def extra_metadata(self):
            return {"prepared": self.prepared, "calibrated": self.calibrated}

        def load_extra_metadata(self, data):
            self.prepared = data.get("prepared", 0)
            self.calibrated = data.get("calibrated")

    return Recording(base.config)


def test_lifecycle_calls_in_order_with_their_arguments(tmp_path):
    v = recording_variant()
    t = Trainer(v, cfg(steps=3, log_every=3, ckpt_every=0, ema_decay=0.5), out=tmp_path)
    t.fit()
    names = [c[0] for c in v.calls]
    assert names == ["prepare_data"] + ["loss", "on_step_end"] * 3 + ["on_train_end"]
    _, dataset, _ = v.calls[0]
    assert dataset is t.dataset and len(dataset) > 0
    steps = [c for c in v.calls if c[0] == "on_step_end"]
    assert [s for _, s, _ in steps] == [1, 2, 3]
    for _, _, losses in steps:
        assert {"d/loss", "g/loss"} <= set(losses) and "skipped" not in losses
        assert all(k.count("/") == 1 for k in losses)
        assert all(torch.is_tensor(x) and not x.requires_grad and x.dim() == 0 for x in losses.values())
    _, info, exported_yet, training = v.calls[-1]
    assert isinstance(info, ganzoo.TrainInfo)
    assert info.dataset is t.dataset and info.step == 3 and info.out == tmp_path and info.main
    assert info.device == torch.device("cpu") and info.data_spec == t.data_spec and info.seed == 0
    assert not exported_yet and not training  # before the export, in eval mode
    # The export, written once after on_train_end, carries its result, computed with the EMA weights exported.
    _, meta = ckpt.load_tensors(tmp_path / "model.safetensors")
    model = ganzoo.load(tmp_path / "model.safetensors")
    assert meta["ganzoo.extra"]["calibrated"] == pytest.approx(float(model.G.main[0].weight.detach().sum()))
    assert float(t.variant.G.main[0].weight.detach().sum()) != pytest.approx(meta["ganzoo.extra"]["calibrated"])


def test_prepare_data_runs_after_the_checkpoint_is_restored(tmp_path):
    first = recording_variant()
    Trainer(first, cfg(steps=2, ckpt_every=2), out=tmp_path).fit()
    assert first.calls[0][2] == 0
    again = recording_variant()
    Trainer(again, cfg(steps=4, ckpt_every=2), out=tmp_path, resume=True).fit()
    assert again.calls[0][0] == "prepare_data" and again.calls[0][2] == 1  # the restored state was in place
    assert [c[1] for c in again.calls if c[0] == "on_step_end"] == [3, 4]


def test_on_train_end_is_not_called_when_training_stops_early(tmp_path):
    v = recording_variant()

    def interrupt(step, losses):
        v.calls.append(("on_step_end", step, losses))
        raise KeyboardInterrupt

    v.on_step_end = interrupt
    with pytest.raises(KeyboardInterrupt):
        Trainer(v, cfg(steps=3), out=tmp_path).fit()
    assert "on_train_end" not in [c[0] for c in v.calls]
    assert not (tmp_path / "model.safetensors").exists()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [1]


def test_a_directly_built_variant_gets_its_loss_picture(tmp_path):
    created = tiny_variant("vanilla")
    v = type(created)(created.config)  # not through create(): no registered name
    assert not hasattr(v, "registered_name")
    t = Trainer(v, cfg(steps=2), out=tmp_path)
    t.fit()
    assert (tmp_path / "losses.png").stat().st_size > 0
    assert ganzoo.load(tmp_path / "model.safetensors").registered_name == "vanilla"


def test_run_json_records_the_configuration_that_ran(tmp_path, capsys):
    from ganzoo.cli import main

    argv = ["train", "dcgan", "--set", "ngf=8", "--set", "ndf=8", "--set", "nz=8", "--set", "image_size=32"]
    argv += ["--batch-size", "16", "--steps", "1", "--device", "cpu", "--precision", "fp32", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path)]) == 0, capsys.readouterr().err
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["batch_size"] == 16 and run["train"]["batch_size"] == 16
    assert run["config"]["batch_size"] == 16  # the paper's 64 did not run
    assert run["train_overrides"]["batch_size"] == {"config": 64, "ran": 16}
    assert run["config"]["ngf"] == 8
    # Every 'auto' and default is resolved to what ran.
    assert run["train"]["device"] == "cpu" and run["train"]["precision"] == "fp32"
    assert run["train"]["num_workers"] == 0 and isinstance(run["train"]["channels_last"], bool)


def test_max_minutes_stops_the_loop_finishes_the_run_and_resume_continues(tmp_path, capsys):
    events = []
    t = Trainer(tiny_variant("vanilla"), cfg(steps=100_000, max_minutes=1e-4, ckpt_every=0), out=tmp_path)
    t.log.event = lambda name, info: events.append((name, info))  # the hook fan-out, observed
    res = t.fit()
    stopped = res["step"]
    assert 1 <= stopped < 100_000
    assert ("time_limit", {"step": stopped, "max_minutes": 1e-4}) in events
    assert "--max-minutes 0.0001 reached at step" in capsys.readouterr().err
    # Finished as at the end: a checkpoint at the stop step and an exported model.
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [stopped]
    assert ganzoo.load(tmp_path / "model.safetensors").generate(n=2, seed=0).shape[0] == 2
    # The next session resumes where the limit stopped the run.
    res2 = Trainer(tiny_variant("vanilla"), cfg(steps=stopped + 3, ckpt_every=0), out=tmp_path, resume=True).fit()
    assert res2["step"] == stopped + 3


def test_max_minutes_must_be_finite_and_not_negative():
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ganzoo.ConfigError, match="max_minutes"):
            cfg(max_minutes=bad).validate()
