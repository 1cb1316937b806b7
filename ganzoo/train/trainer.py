"""The one trainer of every variant: set-up (device, precision, optimizers, EMA, compile), the training step
(phases, backward, non-finite guard, optimizer steps), checkpoints and resume, and :meth:`Trainer.fit`, which
orchestrates a run through the variant's lifecycle. How to run is :mod:`ganzoo.train.config`, what a run reports is
:mod:`ganzoo.train.runlog`, the EMA is :mod:`ganzoo.train.ema`, files are :mod:`ganzoo.train.checkpoint`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._version import versions
from ..config import check_batch_size, config_differences, to_dict
from ..errors import CheckpointError, ConfigError
from ..variant import GANVariant, Phase, Stage, StepState, TrainInfo
from . import checkpoint as ckpt
from . import distributed
from .config import TrainConfig, TrainingDiverged, resolve_device, resolve_precision
from .data import InfiniteSampler, build_dataset, first_items, to_device
from .ema import EMA
from .evaluation import TrainingEvaluation
from .lock import RunLock
from .optim import DenseFusedAdam
from .runlog import LossMeter, RunLog, Throughput

_PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def _stage_starts(plan: list[list[Any]]) -> list[tuple[str, int]]:
    """``(name, first step)`` of every stage of a recorded plan ``[[name, steps], ...]``."""
    starts, at = [], 0
    for name, n in plan:
        starts.append((str(name), at))
        at += int(n)
    return starts


class Trainer:
    """Train ``variant`` on ``data`` (a data spec such as ``"shapes"`` or ``"mnist:/data/mnist"``).

    Writes into ``out``: ``run.json`` (what ran), ``log.jsonl``, ``samples/step-*.png``, ``checkpoints/step-*``
    and at the end ``model.safetensors`` (the exported model, EMA weights) and ``losses.png`` (the loss curves).

    The variant's lifecycle during :meth:`fit`: ``data_options()`` and ``prepare_data(dataset)`` once before the
    first step (after set-up and resume), ``loss(...)`` per phase and ``on_step_end(step, losses)`` per step,
    ``on_train_end(info)`` once after the last step and before the export.

    :param variant: the variant to train (built by :func:`ganzoo.create` or directly).
    :param config: how to train; default :class:`TrainConfig()`.
    :param data: the data spec; default: the variant's ``default_data``.
    :param out: the run directory.
    :param resume: continue from the newest readable checkpoint in ``out`` (exactly: same weights, optimizer
        moments, RNG streams and data order as an uninterrupted run).
    :param variant_name: the registered name recorded in files and shown in the progress bar (``"dcgan.mnist"``);
        default: the variant's family name.
    :param trust_unverified: let ``resume`` (and rollback) read checkpoints that carry no ganzoo digest (written
        by an older ganzoo), with a warning; a checkpoint that fails its digest is refused regardless.
    :param resume_command: how the user continues this run, named in the message a Ctrl-C prints (the CLI passes
        its ``ganzoo train ... --resume`` line); default: the Python call.
    """

    def __init__(
        self,
        variant: GANVariant,
        config: TrainConfig | None = None,
        data: str | None = None,
        out: str | Path = "runs/run",
        resume: bool = False,
        variant_name: str | None = None,
        trust_unverified: bool = False,
        resume_command: str | None = None,
    ):
        self.config = config or TrainConfig()
        # Resume (and rollback) may read checkpoints that carry no digest (from an older ganzoo) only when asked.
        self.trust_unverified = trust_unverified
        self.config.validate()
        self.variant = variant
        self.variant_name = variant_name or getattr(variant, "registered_name", None) or variant.name
        self.data_spec = data or variant.default_data
        self.out = Path(out)
        self.resume = resume
        self.resume_command = resume_command or "Trainer(..., resume=True).fit() on the same folder"
        # The step of the last checkpoint this process wrote or restored (None: none yet): the end of the run writes
        # one only when the newest is older, and a failed run that wrote none leaves no folder behind.
        self._checkpoint_step: int | None = None
        self._wrote_checkpoint = False
        # Under torchrun (WORLD_SIZE > 1) this joins the process group and picks cuda:LOCAL_RANK.
        self.dist, self.device = distributed.init_from_env(resolve_device(self.config.device))
        self.world = self.dist.world if self.dist is not None else 1
        self.main = self.dist is None or self.dist.main  # rank 0 alone writes files, logs and fires events
        precision = self.config.precision
        if precision == "auto" and not variant.reduced_precision:
            precision = "fp32"  # the variant's data or size asks for fp32 (GANVariant.reduced_precision)
        self.dtype = resolve_precision(precision, self.device)
        self.batch_size = self.config.batch_size or variant.batch_size  # per process
        check_batch_size(variant.config, self.batch_size)  # --batch-size replaces the config's: its checks hold
        self.global_batch = self.batch_size * self.world
        self.step = 0
        self.log = RunLog(
            self.out,
            self.main,
            self.variant_name,
            self,
            progress=self.config.progress,
            tensorboard=self.config.tensorboard,
        )

    # ---- set-up ------------------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        v = self.variant.to(self.device)
        if self.dist is not None:
            distributed.convert_batchnorm(v, self.dist)
            self.dist.broadcast_module(v)
        self.channels_last = self._channels_last()
        if self.channels_last:
            v.to(memory_format=torch.channels_last)
        # Every stage's length resolved from --steps (explicit lengths win over fractions); 0-step stages refused.
        self.stages: list[Stage] = v.stage_plan(cfg.steps)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.phase_params: dict[str, list[nn.Parameter]] = {}
        for stage in self.stages:
            for ph in stage.phases:
                if ph.name in self.optimizers:
                    continue
                params = self._params_of(ph.modules)
                if not params:
                    raise ConfigError(f"phase {ph.name!r} of {v.name!r} optimizes no parameters ({ph.modules})")
                self.phase_params[ph.name] = params
                self.optimizers[ph.name] = self._make_optimizer(ph, params)
        self._current_stage: Stage | None = None
        self._consecutive_skips = torch.zeros((), device=self.device)
        self.lr_scale = 1.0
        self.ema = EMA(v, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        if cfg.compile:
            for name in v.optimized_modules():
                getattr(v, name).compile()
        if self.dist is not None and self.dist.rank:
            # Every rank draws its own noise; rank 0 keeps the single-process stream.
            torch.manual_seed(cfg.seed + 1_000_003 * self.dist.rank)

    def _params_of(self, modules: tuple[str, ...]) -> list[nn.Parameter]:
        params: list[nn.Parameter] = []
        for m in modules:
            mod = getattr(self.variant, m, None)
            if not isinstance(mod, nn.Module):
                raise ConfigError(f"phase names module {m!r}, which {self.variant.name!r} does not have")
            params.extend(mod.parameters())
        return params

    def _make_optimizer(self, ph: Phase, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        # The fused kernel updates all parameters of a phase in one launch (1.17x on a 54M U-Net, 2-core CPU), and
        # DenseFusedAdam keeps it from copying channels_last parameters to contiguous and back on every step.
        kw: dict[str, Any] = dict(lr=ph.lr, betas=ph.betas, weight_decay=ph.weight_decay)
        try:
            return DenseFusedAdam(params, **kw)
        except (RuntimeError, TypeError):
            return torch.optim.Adam(params, **kw)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _stage_at(self, step: int) -> tuple[int, Stage]:
        start = 0
        for i, st in enumerate(self.stages):
            if i == len(self.stages) - 1 or step < start + int(st.steps or 0):
                return start, st
            start += int(st.steps or 0)
        raise AssertionError("unreachable")

    def _stage_record(self) -> list[list[Any]]:
        """The resolved plan as checkpoints and ``run.json`` record it: ``[[name, steps], ...]``."""
        plan = self.stages if hasattr(self, "stages") else self.variant.stage_plan(self.config.steps)
        return [[st.name, st.steps] for st in plan]

    def _check_stage_plan(self, recorded: list[list[Any]] | None, trained_steps: Any) -> None:
        """Refuse to resume when this run's stages would start at other steps than the checkpoint's run's (a
        different ``--steps`` moves the boundaries of stages sized by fraction); the last stage may grow or shrink."""
        if not recorded:
            return  # a checkpoint from before plans were recorded
        now = self._stage_record()
        if _stage_starts(recorded) == _stage_starts(now):
            return
        was = ", ".join(f"{name}: {n}" for name, n in recorded)
        keep = [
            f"--set {st.setting}={n}"
            for st, (_, n) in zip(self.variant.stages(), recorded[:-1])
            if st.setting and st.steps is None
        ]
        raise ConfigError(
            f"the run in {str(self.out)!r} has stages {was} (--steps {trained_steps}); --steps {self.config.steps} "
            f"gives {', '.join(f'{name}: {n}' for name, n in now)}; resume with --steps {trained_steps}"
            + (f", or keep its boundaries with {' '.join(keep)}" if keep else "")
        )

    def _set_trainable(self, stage: Stage, index: int) -> None:
        """Phase ``index`` trains its own modules; modules of the phases before it in this step are frozen (their
        gradients are not needed again this step, e.g. D's weights in G's phase); modules of later phases keep
        ``requires_grad`` so a forward made now (G's output in D's phase) can be reused by them."""
        v = self.variant
        own = set(stage.phases[index].modules)
        earlier = {m for ph in stage.phases[:index] for m in ph.modules} - own
        later = {m for ph in stage.phases[index + 1 :] for m in ph.modules} - own
        for name in own | later:
            getattr(v, name).requires_grad_(True)
        for name in earlier:
            getattr(v, name).requires_grad_(False)

    def _freeze_outside(self, stage: Stage) -> None:
        used = {m for ph in stage.phases for m in ph.modules}
        for name in self.variant.optimized_modules():
            if name not in used:
                getattr(self.variant, name).requires_grad_(False)

    # ---- data --------------------------------------------------------------------------------------------------------
    def _loader(self, start: int) -> Iterator[dict[str, Any]]:
        from torch.utils.data import BatchSampler, DataLoader

        ds = self.dataset
        sampler = InfiniteSampler(len(ds), seed=self.config.seed, start=start)
        if self.dist is not None:
            batches: Any = distributed.RankBatchSampler(sampler, self.batch_size, self.dist.rank, self.world)
        else:
            batches = BatchSampler(sampler, self.batch_size, drop_last=True)
        workers = self.config.num_workers
        if workers is None:
            workers = 4 if self.device.type == "cuda" else 0
        loader = DataLoader(
            ds,
            batch_sampler=batches,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            # Its own generator: creating the iterator must not draw from the global RNG, or resume would diverge.
            generator=torch.Generator().manual_seed(self.config.seed),
        )
        return iter(loader)

    # ---- checkpoints -------------------------------------------------------------------------------------------------
    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"model/{k}": v for k, v in self.variant.state_dict().items()}
        optim_meta = {}
        for name, opt in self.optimizers.items():
            t, m = ckpt.optimizer_to_flat(opt, f"optim/{name}/")
            tensors.update(t)
            optim_meta[name] = m
        if self.ema is not None:
            tensors.update(self.ema.state_tensors())
        tensors["rng/cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng/cuda"] = torch.cuda.get_rng_state(self.device)
        if self.dist is not None:
            tensors.update(self.dist.gather_rng())  # collective: every rank calls save_checkpoint
        meta = {
            "ganzoo.variant": self.variant_name,
            "ganzoo.config": self.variant.config_dict(),
            "ganzoo.extra": self.variant.extra_metadata(),
            "ganzoo.train": to_dict(self.config),
            "ganzoo.data": self.data_spec,
            "ganzoo.state": {
                "step": self.step,
                "data_position": self.step * self.global_batch,
                "batch_size": self.batch_size,
                "world_size": self.world,
                "optimizers": optim_meta,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "lr_scale": self.lr_scale,
                "stages": self._stage_record(),
            },
            "ganzoo.versions": versions(),
        }
        return tensors, meta

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-N.safetensors`` (rank 0; every rank must call it) and drop the oldest beyond
        ``keep``. State with a NaN or an infinity is not written (a resume from it could train nothing), so the
        good checkpoints before it stay; this is said in one line.

        :returns: the path written, or ``None`` when the state was not finite.
        """
        tensors, meta = self.state_tensors()
        path = ckpt.checkpoint_path(self.ckpt_dir, self.step)
        self._checkpoint_step = self.step
        written: Path | None = path
        bad = ckpt.first_nonfinite(tensors) if self.main else None
        if bad is not None:
            newest = ckpt.list_checkpoints(self.ckpt_dir)
            self.log.note(
                f"ganzoo: no checkpoint written at step {self.step}: {bad} is not finite; "
                + (f"the newest good one is {newest[0][1]}" if newest else "there is no earlier checkpoint")
            )
            written = None
        elif self.main:
            try:
                ckpt.save_tensors(path, tensors, meta, ckpt.FORMAT_CHECKPOINT)
            except OSError as e:
                # The write is atomic: the older checkpoints are untouched and --resume continues from them.
                why = "disk full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
                raise CheckpointError(
                    f"could not write checkpoint {str(path)!r}: {why}; the previous checkpoints are intact, "
                    "free space and continue with --resume"
                ) from None
            self._wrote_checkpoint = True
            for _, old in ckpt.list_checkpoints(self.ckpt_dir)[self.config.keep :]:
                old.unlink(missing_ok=True)
            self.log.event("checkpoint", {"step": self.step, "path": str(path)})
        if self.dist is not None:
            self.dist.barrier()  # the others read it only once it is complete (rollback)
        return written

    def load_checkpoint(self, path: str | Path, loaded: tuple[dict, dict] | None = None) -> None:
        """Restore the run from ``path``; ``loaded`` is its already read and verified ``(tensors, meta)``."""
        if loaded is None:
            loaded = ckpt.load_tensors(path, ckpt.FORMAT_CHECKPOINT, self.trust_unverified)
            self._check_checkpoint(path, *loaded)
        tensors, meta = loaded
        if meta.get("ganzoo.variant", "").split(".")[0] != self.variant.name:
            raise CheckpointError(
                f"{str(path)!r} holds a {meta.get('ganzoo.variant')!r} run, not {self.variant.name!r}"
            )
        state = meta["ganzoo.state"]
        if state.get("world_size", 1) != self.world and self.main:
            print(
                f"ganzoo: the run was trained with {state.get('world_size', 1)} processes, resuming with "
                f"{self.world}: data order and noise continue approximately, not bit-exactly",
                file=sys.stderr,
            )
        if state["batch_size"] != self.batch_size:
            raise ConfigError(
                f"the run was trained with batch size {state['batch_size']}, resuming with {self.batch_size}; "
                "resume with the same --batch-size"
            )
        self._check_stage_plan(state.get("stages"), (meta.get("ganzoo.train") or {}).get("steps", "?"))
        model = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
        self.variant.load_state_dict(model)
        self.variant.load_extra_metadata(meta.get("ganzoo.extra") or {})
        for name, opt in self.optimizers.items():
            ckpt.optimizer_from_flat(opt, tensors, state["optimizers"][name], f"optim/{name}/")
        if self.ema is not None:
            self.ema.load_tensors(tensors)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        rank = self.dist.rank if self.dist is not None else 0
        cpu_rng, cuda_rng = tensors.get(f"rng/cpu/{rank}"), tensors.get(f"rng/cuda/{rank}")
        if rank == 0:
            cpu_rng, cuda_rng = tensors["rng/cpu"], tensors.get("rng/cuda")
        if cpu_rng is None:  # a rank the saving run did not have: a fresh stream, fixed by seed, step and rank
            torch.manual_seed(self.config.seed + 1_000_003 * rank + 7919 * int(state["step"]))
        else:
            torch.set_rng_state(cpu_rng)
        if self.device.type == "cuda" and cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, self.device)
        self.step = int(state["step"])
        self._checkpoint_step = self.step
        self.lr_scale = float(state.get("lr_scale", 1.0))

    def _latest_valid_checkpoint(self, finite: bool = False) -> tuple[Path, tuple[dict, dict]] | None:
        """The newest checkpoint that reads and verifies, with its contents (so it is read and hashed once);
        ``finite``: also skip checkpoints holding a NaN or an infinity (rollback)."""
        errors = []
        for _, path in ckpt.list_checkpoints(self.ckpt_dir):
            try:
                loaded = ckpt.load_tensors(path, ckpt.FORMAT_CHECKPOINT, self.trust_unverified)
                self._check_checkpoint(path, *loaded)
                bad = ckpt.first_nonfinite(loaded[0]) if finite else None
                if bad is not None:
                    raise CheckpointError(f"{str(path)!r} holds non-finite values ({bad})")
                if errors and self.main:
                    print(f"ganzoo: skipped unreadable checkpoints: {'; '.join(errors)}", file=sys.stderr)
                return path, loaded
            except CheckpointError as e:
                errors.append(str(e))
        if errors:
            raise CheckpointError("no readable checkpoint to resume from: " + "; ".join(errors))
        return None

    def _check_checkpoint(self, path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Every tensor of a checkpoint against the live model before any is used (weights, buffers, EMA, optimizer
        moments and steps, RNG state): a verified file can still be crafted, and a wrong moment shape reaches fused
        kernels that do not check."""
        state = meta.get("ganzoo.state")
        if not isinstance(state, dict) or not isinstance(state.get("optimizers"), dict):
            raise CheckpointError(f"{str(path)!r} has no training state")
        expected = {f"model/{k}": v for k, v in self.variant.state_dict().items()}
        if self.ema is not None:
            expected.update(self.ema.state_tensors())
        loose = tuple(f"{pre}{m}" for pre in ("model/", "ema/") for m in self.variant.training_state)
        try:
            ckpt.check_tensors(str(path), tensors, expected, loose)
        except CheckpointError as e:
            differ = config_differences(meta.get("ganzoo.config"), self.variant.config)
            if not differ:
                raise
            raise CheckpointError(
                f"{str(path)!r} was trained with another architecture: {', '.join(differ)}; resume without "
                "changing these, or train into another --out"
            ) from e
        # Other ranks' streams (rng/cpu/N) are optional; each that is there has the generator's size.
        rng = torch.get_rng_state()
        for key in [k for k in tensors if k.startswith("rng/cpu")] or ["rng/cpu"]:
            ckpt.check_tensors(str(path), {key: tensors[key]} if key in tensors else {}, {key: rng})
        for name, opt in self.optimizers.items():
            if name not in state["optimizers"]:
                raise CheckpointError(f"{str(path)!r} has no state for the optimizer {name!r}")
            ckpt.check_optimizer_flat(str(path), opt, tensors, state["optimizers"][name], f"optim/{name}/")

    def export(self, path: str | Path | None = None) -> Path:
        """Write the model (EMA generator weights when EMA is on) as one self-describing safetensors file.

        :param path: where to write; default ``OUT/model.safetensors``.
        :returns: the path written.
        :raises TrainingDiverged: when a weight is not finite; nothing is written then, so a model already at
            ``path`` stays as it was.
        """
        path = Path(path) if path is not None else self.out / "model.safetensors"
        with self._exported_weights():
            bad = ckpt.first_nonfinite(self.variant.state_dict())
            if bad is not None:
                raise TrainingDiverged(f"not writing {path}: the weights at step {self.step} are not finite ({bad})")
            ckpt.save_model(self.variant, path, name=self.variant_name, extra={"step": self.step})
        return path

    def _export_stage(self, name: str) -> None:
        """The model as a stage left it, ``OUT/stages/NAME.safetensors`` (e.g. SRGAN's SRResNet before its GAN
        stage): loadable, evaluable and exportable like ``model.safetensors``. Weights that are not finite are noted
        and not written; the run goes on (its checks act on them)."""
        path = self.out / "stages" / f"{name}.safetensors"
        path.parent.mkdir(exist_ok=True)
        try:
            self.export(path)
        except TrainingDiverged as e:
            self.log.note(f"ganzoo: {e}")
            return
        self.log.event("stage_end", {"step": self.step, "stage": name, "path": str(path)})

    def _exported_weights(self) -> contextlib.AbstractContextManager:
        """The weights the export holds in the variant's place: the EMA generators when EMA is on."""
        return self.ema.swapped(self.variant) if self.ema is not None else contextlib.nullcontext()

    def write_samples(self, inputs: dict[str, Any]) -> Path:
        """A sample grid of ``inputs`` with the EMA generators, as ``samples/step-N.png``."""
        v = self.variant
        was_training = v.training
        v.eval()
        try:
            with torch.no_grad(), self._autocast(), self._exported_weights():
                grid = v.sample_images(inputs)
        finally:
            v.train(was_training)
        path = self.out / "samples" / f"step-{self.step:08d}.png"
        grid.save(path)  # the variant's labelled grid (GANVariant.sample_images)
        self.log.event("sample", {"step": self.step, "path": str(path)})
        return path

    def effective_config(self) -> dict[str, Any]:
        """What runs, as ``run.json`` records it: the variant's config with the batch size that runs, the training
        config with every ``auto``/default resolved, and which variant settings the training config overrode."""
        cfg = self.config
        workers = cfg.num_workers if cfg.num_workers is not None else (4 if self.device.type == "cuda" else 0)
        train = dataclasses.replace(
            cfg,
            batch_size=self.batch_size,
            device=str(self.device),
            precision=_PRECISION_NAMES[self.dtype],
            channels_last=self._channels_last(),
            num_workers=workers,
        )
        model = self.variant.config_dict()
        overrides: dict[str, Any] = {}
        if "batch_size" in model and model["batch_size"] != self.batch_size:
            overrides["batch_size"] = {"config": model["batch_size"], "ran": self.batch_size}
            model["batch_size"] = self.batch_size
        if self._channels_last() != self.variant.channels_last:
            overrides["channels_last"] = {"config": self.variant.channels_last, "ran": self._channels_last()}
        run: dict[str, Any] = {
            "variant": self.variant_name,
            "config": model,
            "train": to_dict(train),
            "train_overrides": overrides,
            "data": self.data_spec,
            "device": str(self.device),
            "precision": str(self.dtype).replace("torch.", ""),
            "batch_size": self.batch_size,
            "stages": [{"name": name, "steps": n} for name, n in self._stage_record()],
            "versions": versions(),
        }
        if self.world > 1:
            run["world_size"] = self.world
            run["global_batch_size"] = self.global_batch
        return run

    def _channels_last(self) -> bool:
        return bool(self.variant.channels_last if self.config.channels_last is None else self.config.channels_last)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One training step (every phase due at this step) on a batch already on the device. Returns the detached
        losses as device tensors keyed ``phase/name``; reading them is the caller's choice (and a host sync)."""
        stage = self._stage_at(self.step)[1]
        if stage is not self._current_stage:
            self._current_stage = stage
            self._freeze_outside(stage)
            self.log.event("stage", {"step": self.step, "stage": stage.name})
        state = StepState(step=self.step, stage=stage.name)
        out: dict[str, torch.Tensor] = {}
        skipped = torch.zeros((), device=self.device)
        for i, ph in enumerate(stage.phases):
            if self.step % ph.every:
                continue
            self._set_trainable(stage, i)
            opt = self.optimizers[ph.name]
            factor = self.variant.lr_factor(ph, self.step, self.config.steps) * self.lr_scale
            for group in opt.param_groups:
                group["lr"] = ph.lr * factor
            with self._autocast():
                losses = self.variant.loss(ph.name, batch, state)
            loss = losses["loss"]
            opt.zero_grad(set_to_none=True)
            if self.scaler is not None:  # fp16: the scaler skips steps with inf/NaN gradients itself
                self.scaler.scale(loss).backward()
                if self.dist is not None:  # averaged scaled gradients: every rank finds the same infs
                    self.dist.sync_grads(self.phase_params[ph.name], loss)
                self.scaler.step(opt)
            else:
                loss.backward()
                bad_loss = self.dist.sync_grads(self.phase_params[ph.name], loss) if self.dist is not None else None
                skipped = torch.maximum(skipped, self._guarded_step(ph.name, opt, loss, bad_loss))
            for k, val in losses.items():
                out[f"{ph.name}/{k}"] = val.detach().float()
        if self.scaler is not None:
            self.scaler.update()
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.variant, self.step)
        self.variant.on_step_end(self.step, dict(out))
        self._consecutive_skips = (self._consecutive_skips + skipped) * skipped
        out["skipped"] = skipped
        return out

    def _recover_from_divergence(self) -> Iterator[dict[str, Any]]:
        """``max_skips`` consecutive steps had non-finite values: roll back to the newest readable checkpoint with
        half the learning rate, or stop with a clear message (``on_nonfinite``)."""
        n = int(self._consecutive_skips)
        latest = self._latest_valid_checkpoint(finite=True) if self.config.on_nonfinite == "rollback" else None
        if latest is None:
            raise TrainingDiverged(
                f"{n} consecutive steps had non-finite losses or gradients at step {self.step}"
                + ("" if self.config.on_nonfinite == "stop" else " and there is no checkpoint to roll back to")
                + "; lower the learning rate, try another loss or precision fp32"
            )
        scale = self.lr_scale * 0.5
        self.load_checkpoint(*latest)
        self.lr_scale = scale
        self._consecutive_skips = torch.zeros((), device=self.device)
        self.log.note(
            f"ganzoo: {n} consecutive non-finite steps; rolled back to step {self.step} with learning rates x{scale:g}"
        )
        self.log.event("rollback", {"step": self.step, "lr_scale": scale})
        return self._loader(start=self.step * self.global_batch)

    def _guarded_step(
        self, phase: str, opt: torch.optim.Optimizer, loss: torch.Tensor, bad_loss: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Skip the update when the loss or a gradient is not finite, without a host sync: fused Adam takes a
        device-side ``found_inf`` flag (the mechanism GradScaler uses) and leaves parameters and moments untouched
        when it is set. ``bad_loss``: the flag reduced over all ranks, so that they all skip together."""
        grads = [p.grad for p in self.phase_params[phase] if p.grad is not None]
        bad = ~torch.isfinite(loss.detach().float()) if bad_loss is None else bad_loss > 0
        if grads:
            bad = bad | ~torch.isfinite(torch.stack(torch._foreach_norm(grads)).sum())
        bad = bad.float()
        if opt.defaults.get("fused"):
            opt.found_inf = bad
            opt.grad_scale = None
            try:
                opt.step()
            finally:
                del opt.found_inf, opt.grad_scale
        elif not bool(bad):  # unfused fallback: one host sync per step
            opt.step()
        return bad

    # ---- the run -----------------------------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to ``config.steps``; returns a summary with the paths written and the last logged losses.

        The run folder is locked for the whole run (:mod:`ganzoo.train.lock`): a second run into it fails at once.
        A run that fails (a bad data spec, an error in a step ...) before it wrote any checkpoint removes what it
        created in the run folder, and the folder itself if it made it; what was there before is left alone.
        """
        with RunLock(self.out) if self.main else contextlib.nullcontext():
            before = set(os.listdir(self.out)) if self.main and self.out.is_dir() else set()
            try:
                return self._fit()
            except Exception:
                if self.main and not self._wrote_checkpoint:
                    self._remove_created(before)
                raise

    def _remove_created(self, before: set[str]) -> None:
        """Remove the entries of the run folder that were not there before this run (never following links)."""
        for name in (set(os.listdir(self.out)) if self.out.is_dir() else set()) - before:
            entry = self.out / name
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except OSError:
                pass  # best effort: the error that stopped the run is what the user needs to see

    def _fit(self) -> dict[str, Any]:
        self._setup()
        if self.resume:
            latest = self._latest_valid_checkpoint()
            if latest is not None:
                self._refuse_nonfinite(*latest)
                self.load_checkpoint(*latest)
                meta = latest[1][1]
                self._note_schedule_change((meta.get("ganzoo.train") or {}).get("steps"), meta.get("ganzoo.config"))
        # The data before run.json: a data spec that does not work leaves the run folder as it was.
        self.dataset = build_dataset(self.data_spec, self.variant, split="train", seed=self.config.seed)
        self._open_run_dir()
        self.variant.prepare_data(self.dataset)
        sample_inputs = self._sample_inputs()
        self.log.event("start", {"step": self.step})
        last = self._train_until_done(sample_inputs)
        return self._finish(sample_inputs, last)

    def _refuse_nonfinite(self, path: Path, loaded: tuple[dict, dict]) -> None:
        """Refuse to resume from a checkpoint holding a NaN or an infinity, naming the newest older one that is
        finite and how to resume from it."""
        bad = ckpt.first_nonfinite(loaded[0])
        if bad is None:
            return
        older = None
        for step, other in ckpt.list_checkpoints(self.ckpt_dir):
            if other == path or step >= int(loaded[1]["ganzoo.state"]["step"]):
                continue
            try:
                tensors, meta = ckpt.load_tensors(other, ckpt.FORMAT_CHECKPOINT, self.trust_unverified)
                self._check_checkpoint(other, tensors, meta)
            except CheckpointError:
                continue
            if ckpt.first_nonfinite(tensors) is None:
                older = (step, other)
                break
        if older is None:
            how = "no older checkpoint is finite; start again in another --out with a lower learning rate"
        else:
            newer = [q for step, q in ckpt.list_checkpoints(self.ckpt_dir) if step > older[0]]
            move = (
                f"mv {newer[0]} {newer[0]}.nonfinite"
                if len(newer) == 1
                else (f"rename {', '.join(q.name for q in newer)} to NAME.nonfinite")
            )
            how = f"to resume from step {older[0]} ({older[1]}), set the newer aside ({move}) and run --resume again"
        raise CheckpointError(f"cannot resume from {str(path)!r}: {bad} is not finite; {how}")

    def _note_schedule_change(self, trained_steps: Any, trained_config: Any = None) -> None:
        """One line when this run's ``--steps`` changes the learning rates the remaining steps get (a decay that
        follows the total restarts or moves); the rates are pure functions of the step and the total. The rates the
        run had are read under the checkpoint's own model settings (``trained_config``), so a ``--set`` given with
        the new ``--steps`` that keeps the schedule (a stage share that gives the same stage lengths) is not
        reported as a change."""
        if not isinstance(trained_steps, int) or trained_steps == self.config.steps:
            return
        try:
            then = type(self.variant).make_config(trained_config) if isinstance(trained_config, dict) else None
        except (ConfigError, TypeError, ValueError):
            then = None  # settings this version cannot read: today's stand in for them
        end = min(trained_steps, self.config.steps)
        probe = sorted({self.step, *range(self.step, end, max(1, (end - self.step) // 64))})
        phases = {ph.name: ph for st in self.stages for ph in st.phases}
        for step in probe:
            for name, ph in phases.items():
                try:
                    with self._variant_config(then):
                        was = self.variant.lr_factor(ph, step, trained_steps)
                    now = self.variant.lr_factor(ph, step, self.config.steps)
                except ConfigError:
                    return  # the old total no longer makes a valid plan: the stage check has said what it needs
                if abs(was - now) > 1e-9:
                    if self.step >= trained_steps:  # the run had finished: a longer one starts its decay again
                        what = (
                            f"restarts the learning-rate schedule of the run (it had {trained_steps} steps): from "
                            f"step {step} phase {name!r} runs at x{now:.3g} of its rate (x{was:.3g} at the run's end)"
                        )
                    else:
                        what = (
                            f"(the run had {trained_steps}) changes the learning-rate schedule: from step {step} "
                            f"phase {name!r} runs at x{now:.3g} of its rate instead of x{was:.3g}; resume with "
                            f"--steps {trained_steps} to keep it"
                        )
                    self.log.note(f"ganzoo: --steps {self.config.steps} {what}")
                    return

    @contextlib.contextmanager
    def _variant_config(self, config: Any) -> Iterator[None]:
        """The variant's schedule methods read under ``config`` (None: the live one) for the block's duration."""
        if config is None:
            yield
            return
        live, self.variant.config = self.variant.config, config
        try:
            yield
        finally:
            self.variant.config = live

    def _open_run_dir(self) -> None:
        if not self.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        self.log.write_run_json(self.effective_config())
        for stale in self.ckpt_dir.glob(".tmp-step-*"):  # left by a run killed while writing a checkpoint
            stale.unlink(missing_ok=True)

    def _sample_inputs(self) -> dict[str, Any]:
        """Fixed inputs of the sample grids, from their own generator so grids show the same noise/inputs all run."""
        n = min(self.config.n_samples, 64)
        gen = torch.Generator().manual_seed(self.config.seed + 12345)
        first = to_device(first_items(self.dataset, n), self.device, self.channels_last)
        return self.variant.sample_inputs(n, gen, batch=first)

    def _train_until_done(self, sample_inputs: dict[str, Any]) -> dict[str, float]:
        """The steps, with logging, sample grids, checkpoints and recovery from divergence; the last logged losses."""
        cfg = self.config
        data = self._loader(start=self.step * self.global_batch)
        meter, clock = LossMeter(), Throughput(self.step, self.global_batch)
        evaluation = TrainingEvaluation(self)
        last: dict[str, float] = {}
        self.log.open(total=cfg.steps, initial=self.step)
        self.variant.train()
        deadline = time.monotonic() + 60 * cfg.max_minutes if cfg.max_minutes else None
        try:
            while self.step < cfg.steps:
                # Losses stay on the device; the host reads them only every log_every steps (no per-step sync).
                meter.add(self.train_step(to_device(next(data), self.device, self.channels_last)))
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    last, skipped = meter.read(self.dist)
                    if skipped:
                        last["skipped_steps"] = skipped
                        self.log.event("skip", {"step": self.step, "skipped": skipped})
                    if int(self._consecutive_skips) >= cfg.max_skips:
                        data = self._recover_from_divergence()
                        clock.restart(self.step)
                        self.log.advance(self.step)
                        continue
                    self._log_record(last, clock.read(self.step))
                self.log.advance(self.step)
                if cfg.sample_every and self.step % cfg.sample_every == 0 and self.main:
                    self.write_samples(sample_inputs)
                if evaluation.maybe_run(self.step) is not None:
                    clock.restart(self.step)  # evaluation time is not training throughput
                # A run in the middle of skipping non-finite steps writes no checkpoint: rollback targets stay good.
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and not int(self._consecutive_skips):
                    self.save_checkpoint()
                # train_step left _current_stage at the stage of the step just taken.
                if self.main and self._stage_at(self.step)[1] is not self._current_stage:
                    self._export_stage(self._current_stage.name)
                if deadline is not None and self.step < cfg.steps and self._time_is_up(deadline):
                    self.log.event("time_limit", {"step": self.step, "max_minutes": cfg.max_minutes})
                    self.log.note(
                        f"ganzoo: --max-minutes {cfg.max_minutes:g} reached at step {self.step:,} of {cfg.steps:,}; "
                        "finishing here (--resume continues the run)"
                    )
                    break
        except KeyboardInterrupt:
            self.log.close()
            self._checkpoint_on_interrupt()
            raise
        finally:
            self.log.close()
        return last

    def _time_is_up(self, deadline: float) -> bool:
        """Whether the ``max_minutes`` deadline has passed. Data-parallel ranks decide together, at logging steps
        only (one small collective there), so that every rank stops at the same step."""
        late = time.monotonic() >= deadline
        if self.dist is None:
            return late
        if self.step % self.config.log_every:
            return False
        flag = torch.tensor([1.0 if late else 0.0], device=self.device)
        return bool(self.dist.mean({"late": flag})["late"].item() > 0)

    def _log_record(self, losses: dict[str, float], img_per_s: float) -> None:
        record = {
            "step": self.step,
            "stage": self._stage_at(self.step - 1)[1].name,
            "img_per_s": round(img_per_s, 2),
            **losses,
        }
        record.update({f"lr/{n}": o.param_groups[0]["lr"] for n, o in self.optimizers.items()})
        self.log.record(record, losses, img_per_s)

    def _checkpoint_on_interrupt(self) -> None:
        """Nothing lost on Ctrl-C: save where we are (single process); ``--resume`` continues exactly from here."""
        if self.dist is not None:  # the other ranks may be inside a collective: no gathering now
            self.log.note(
                f"\nganzoo: interrupted at step {self.step}; continue from the last checkpoint with: "
                f"{self.resume_command}"
            )
            return
        path = self.save_checkpoint() if self._checkpoint_step != self.step else None
        found = ckpt.list_checkpoints(self.ckpt_dir)
        where = (
            f"checkpoint written to {path}"
            if path is not None
            else f"the newest checkpoint is {found[0][1]}"
            if found
            else "no checkpoint to continue from"
        )
        then = f"; continue with: {self.resume_command}" if found else ""
        print(f"\nganzoo: interrupted at step {self.step}; {where}{then}", file=sys.stderr)

    def _finish(self, sample_inputs: dict[str, Any], last: dict[str, float]) -> dict[str, Any]:
        """The last sample grid and checkpoint, the variant's ``on_train_end``, the export and the loss picture."""
        sample_path = self.out / "samples" / f"step-{self.step:08d}.png"
        if self.main:
            self.write_samples(sample_inputs)
        if self._checkpoint_step != self.step:  # none at this step yet (a scheduled one skipped, or off-schedule)
            self.save_checkpoint()
        self._end_of_training()
        model_path: Path | None = self.out / "model.safetensors"
        nonfinite = None
        if self.main:
            try:
                self.export()
            except TrainingDiverged as e:
                # The model file of an earlier run (or of the run before a resume) is worth more than this one.
                nonfinite = str(e)
                kept = model_path.is_file()
                self.log.note(f"ganzoo: {e}; " + (f"kept the earlier {model_path}" if kept else "no model written"))
                model_path = model_path if kept else None
        self.log.plot_losses()
        found = ckpt.list_checkpoints(self.ckpt_dir) if self.main else []
        if self.dist is not None:
            self.dist.barrier()  # the run is complete on disk when any rank returns
        self.log.event("end", {"step": self.step})
        # Only files that exist are named (None otherwise): a checkpoint or model refused as non-finite is not.
        return {
            "step": self.step,
            "losses": last,
            "samples": str(sample_path) if sample_path.is_file() else None,
            "checkpoint": str(found[0][1]) if found else None,
            "model": str(model_path) if model_path is not None else None,
            "nonfinite": nonfinite,
            "out": str(self.out),
        }

    def _end_of_training(self) -> None:
        """``on_train_end`` in eval mode with the weights about to be exported in place, after the last checkpoint
        (checkpoints hold training state only, so resuming never sees the end-of-training result as a start)."""
        info = TrainInfo(
            dataset=self.dataset,
            data_spec=self.data_spec,
            device=self.device,
            out=self.out,
            step=self.step,
            seed=self.config.seed,
            main=self.main,
            verbose=self.config.progress,
        )
        v = self.variant
        was_training = v.training
        v.eval()
        try:
            with self._exported_weights():
                v.on_train_end(info)
        finally:
            v.train(was_training)
