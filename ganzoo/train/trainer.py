"""The one trainer of every variant: device, precision, compile, backward, optimizer steps, EMA, checkpoints."""

from __future__ import annotations

import contextlib
import errno
import json
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .. import __version__
from ..config import help, to_dict
from ..errors import CheckpointError, ConfigError, GanzooError
from ..variant import GANVariant, Phase, Stage, StepState
from . import checkpoint as ckpt
from . import distributed
from .data import InfiniteSampler, build_dataset, first_items, to_device
from .optim import DenseFusedAdam

Precision = Literal["auto", "fp32", "bf16", "fp16"]


class TrainingDiverged(GanzooError):
    """Training produced non-finite values that skipping and rolling back could not cure."""


@dataclass
class TrainConfig:
    """How to run training (what to train is the variant's config)."""

    steps: int = help("total training steps, all stages together", 1000)
    batch_size: int | None = help("batch size; default: the variant's paper value", None)
    device: str = help("'auto' (CUDA when present, else CPU), 'cpu', 'cuda', 'cuda:1' ...", "auto")
    precision: Precision = help(
        "'auto' = bf16 on CUDA and on CPUs with native bf16, else fp32; or fp32/bf16/fp16", "auto"
    )
    compile: bool = help("torch.compile each network separately (eager for double-backward phases)", False)
    channels_last: bool | None = help("channels_last memory format; default: the variant's preference", None)
    ema_decay: float = help("decay of the generator EMA used for samples and export; 0 disables", 0.999)
    seed: int = help("seed of weights, noise and data order", 0)
    num_workers: int | None = help("data loader worker processes; default 0 on CPU, 4 on CUDA", None)
    log_every: int = help("read losses from the device and log them every N steps", 50)
    sample_every: int = help("write a sample grid every N steps (0: only at the end)", 500)
    ckpt_every: int = help("write a checkpoint every N steps (0: only at the end)", 1000)
    keep: int = help("checkpoints to keep (oldest deleted first)", 3)
    n_samples: int = help("images in a sample grid", 64)
    progress: bool = help("show a progress bar", True)
    tensorboard: bool = help("also log to TensorBoard when it is installed", True)
    max_skips: int = help("consecutive steps with non-finite loss/gradients (skipped) before on_nonfinite acts", 20)
    on_nonfinite: Literal["rollback", "stop"] = help(
        "after max_skips: roll back to the last checkpoint with half the learning rate, or stop", "rollback"
    )

    def validate(self) -> None:
        for name in ("steps", "log_every", "keep", "n_samples", "max_skips"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("sample_every", "ckpt_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        resolve_device(self.device)


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {spec!r} is not valid; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} asked for, but CUDA is not available here; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {spec!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev


def cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_bf16() else torch.float32
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; on CPU use bf16 or fp32")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class EMA:
    """An exponential moving average of each generator (timm's ModelEmaV3), swapped in for sampling and export."""

    def __init__(self, variant: GANVariant, decay: float):
        from timm.utils import ModelEmaV3

        self.names = [m for m in variant.ema_modules if isinstance(getattr(variant, m, None), nn.Module)]
        # Warm-up keeps early samples meaningful: the effective decay grows from 0 towards ``decay``.
        self.emas = {m: ModelEmaV3(getattr(variant, m), decay=decay, use_warmup=True) for m in self.names}
        for e in self.emas.values():
            e.requires_grad_(False)

    def update(self, variant: GANVariant, step: int) -> None:
        for m, e in self.emas.items():
            e.update(getattr(variant, m), step=step)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"ema/{m}/{k}": v for m, e in self.emas.items() for k, v in e.module.state_dict().items()}

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for m, e in self.emas.items():
            pre = f"ema/{m}/"
            e.module.load_state_dict({k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)})

    @contextlib.contextmanager
    def swapped(self, variant: GANVariant) -> Iterator[None]:
        """Temporarily put the EMA networks in the variant's place."""
        originals = {m: getattr(variant, m) for m in self.emas}
        try:
            for m, e in self.emas.items():
                setattr(variant, m, e.module)
            yield
        finally:
            for m, mod in originals.items():
                setattr(variant, m, mod)


class Trainer:
    """Train ``variant`` on ``data`` (a data spec such as ``"shapes"`` or ``"mnist:/data/mnist"``).

    Writes into ``out``: ``run.json`` (what ran), ``log.jsonl``, ``samples/step-*.png``, ``checkpoints/step-*``
    and at the end ``model.safetensors`` (the exported model, EMA weights) and ``losses.png`` (the loss curves).
    """

    def __init__(
        self,
        variant: GANVariant,
        config: TrainConfig | None = None,
        data: str | None = None,
        out: str | Path = "runs/run",
        resume: bool = False,
        variant_name: str | None = None,
    ):
        self.config = config or TrainConfig()
        self.config.validate()
        self.variant = variant
        self.variant_name = variant_name or variant.name
        self.data_spec = data or variant.default_data
        self.out = Path(out)
        self.resume = resume
        # Under torchrun (WORLD_SIZE > 1) this joins the process group and picks cuda:LOCAL_RANK.
        self.dist, self.device = distributed.init_from_env(resolve_device(self.config.device))
        self.world = self.dist.world if self.dist is not None else 1
        self.main = self.dist is None or self.dist.main  # rank 0 alone writes files, logs and fires events
        self.dtype = resolve_precision(self.config.precision, self.device)
        self.batch_size = self.config.batch_size or variant.batch_size  # per process
        self.global_batch = self.batch_size * self.world
        self.step = 0
        self._timer_start = 0.0
        self._pm = None

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
        self.channels_last = self.variant.channels_last if cfg.channels_last is None else cfg.channels_last
        if self.channels_last:
            v.to(memory_format=torch.channels_last)
        self.stages: list[Stage] = list(v.stages())
        if not self.stages:
            raise ConfigError(f"variant {v.name!r} declares no training stages")
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
        # The fused kernel updates all parameters of a phase in one launch (1.17x on pix2pix on a 2-core CPU), and
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
            if st.steps is None or step < start + st.steps or i == len(self.stages) - 1:
                return start, st
            start += st.steps
        raise AssertionError("unreachable")

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
            "ganzoo.state": {
                "step": self.step,
                "data_position": self.step * self.global_batch,
                "batch_size": self.batch_size,
                "world_size": self.world,
                "optimizers": optim_meta,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "lr_scale": self.lr_scale,
            },
            "ganzoo.versions": versions(),
        }
        return tensors, meta

    def save_checkpoint(self) -> Path:
        tensors, meta = self.state_tensors()
        path = ckpt.checkpoint_path(self.ckpt_dir, self.step)
        if self.main:
            try:
                ckpt.save_tensors(path, tensors, meta, ckpt.FORMAT_CHECKPOINT)
            except OSError as e:
                # The write is atomic: the older checkpoints are untouched and --resume continues from them.
                why = "disk full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
                raise CheckpointError(
                    f"could not write checkpoint {str(path)!r}: {why}; the previous checkpoints are intact, "
                    "free space and continue with --resume"
                ) from None
            for _, old in ckpt.list_checkpoints(self.ckpt_dir)[self.config.keep :]:
                old.unlink(missing_ok=True)
            self._event("checkpoint", {"step": self.step, "path": str(path)})
        if self.dist is not None:
            self.dist.barrier()  # the others read it only once it is complete (rollback)
        return path

    def load_checkpoint(self, path: str | Path, loaded: tuple[dict, dict] | None = None) -> None:
        """Restore the run from ``path``; ``loaded`` is its already read and verified ``(tensors, meta)``."""
        tensors, meta = loaded if loaded is not None else ckpt.load_tensors(path, ckpt.FORMAT_CHECKPOINT)
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
        self.lr_scale = float(state.get("lr_scale", 1.0))

    def _latest_valid_checkpoint(self) -> tuple[Path, tuple[dict, dict]] | None:
        """The newest checkpoint that reads and verifies, with its contents (so it is read and hashed once)."""
        errors = []
        for _, path in ckpt.list_checkpoints(self.ckpt_dir):
            try:
                loaded = ckpt.load_tensors(path, ckpt.FORMAT_CHECKPOINT)
                if errors and self.main:
                    print(f"ganzoo: skipped unreadable checkpoints: {'; '.join(errors)}", file=sys.stderr)
                return path, loaded
            except CheckpointError as e:
                errors.append(str(e))
        if errors:
            raise CheckpointError("no readable checkpoint to resume from: " + "; ".join(errors))
        return None

    def export(self, path: str | Path | None = None) -> Path:
        """Write the model (EMA generator weights when EMA is on) as one self-describing safetensors file."""
        from ..api import save_model

        path = Path(path) if path is not None else self.out / "model.safetensors"
        with self.ema.swapped(self.variant) if self.ema is not None else contextlib.nullcontext():
            save_model(self.variant, path, name=self.variant_name, extra={"step": self.step})
        return path

    # ---- logging -----------------------------------------------------------------------------------------------------
    def _event(self, event: str, info: dict[str, Any]) -> None:
        if not self.main:
            return
        from ..plugins import get_plugin_manager

        get_plugin_manager().hook.ganzoo_train_event(event=event, trainer=self, info=info)

    def _write_run_json(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        run = {
            "variant": self.variant_name,
            "config": self.variant.config_dict(),
            "train": to_dict(self.config),
            "data": self.data_spec,
            "device": str(self.device),
            "precision": str(self.dtype).replace("torch.", ""),
            "batch_size": self.batch_size,
            "versions": versions(),
        }
        if self.world > 1:
            run["world_size"] = self.world
        ckpt.atomic_write_bytes(self.out / "run.json", json.dumps(run, indent=2).encode())

    def write_samples(self, inputs: dict[str, Any]) -> Path:
        from ..utils.images import save_grid

        v = self.variant
        was_training = v.training
        v.eval()
        try:
            with torch.no_grad(), self._autocast():
                with self.ema.swapped(v) if self.ema is not None else contextlib.nullcontext():
                    imgs = v.sample_images(inputs)
        finally:
            v.train(was_training)
        path = self.out / "samples" / f"step-{self.step:08d}.png"
        save_grid(imgs.float(), path)
        self._event("sample", {"step": self.step, "path": str(path)})
        return path

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One training step (every phase due at this step) on a batch already on the device. Returns the detached
        losses as device tensors keyed ``phase/name``; reading them is the caller's choice (and a host sync)."""
        stage = self._stage_at(self.step)[1]
        if stage is not self._current_stage:
            self._current_stage = stage
            self._freeze_outside(stage)
            self._event("stage", {"step": self.step, "stage": stage.name})
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
        self.variant.on_step_end(self.step)
        self._consecutive_skips = (self._consecutive_skips + skipped) * skipped
        out["skipped"] = skipped
        return out

    def _recover_from_divergence(self) -> Iterator[dict[str, Any]]:
        """``max_skips`` consecutive steps had non-finite values: roll back to the newest readable checkpoint with
        half the learning rate, or stop with a clear message (``on_nonfinite``)."""
        n = int(self._consecutive_skips)
        latest = self._latest_valid_checkpoint() if self.config.on_nonfinite == "rollback" else None
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
        if self.main:
            print(
                f"ganzoo: {n} consecutive non-finite steps; rolled back to step {self.step} "
                f"with learning rates x{scale:g}",
                file=sys.stderr,
            )
        self._event("rollback", {"step": self.step, "lr_scale": scale})
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

    # ---- the loop ----------------------------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to ``config.steps``; returns a summary with the paths written and the last logged losses."""
        cfg = self.config
        self._setup()
        if self.resume:
            latest = self._latest_valid_checkpoint()
            if latest is not None:
                self.load_checkpoint(*latest)
        if self.main:
            self._write_run_json()
            for stale in self.ckpt_dir.glob(".tmp-step-*"):  # left by a run killed while writing a checkpoint
                stale.unlink(missing_ok=True)
        self.dataset = build_dataset(self.data_spec, self.variant, split="train", seed=cfg.seed)
        data = self._loader(start=self.step * self.global_batch)
        # Sampling inputs come from their own generator so grids show the same noise/inputs across the run.
        gen = torch.Generator().manual_seed(cfg.seed + 12345)
        first = to_device(first_items(self.dataset, min(cfg.n_samples, 64)), self.device, self.channels_last)
        sample_inputs = self.variant.sample_inputs(min(cfg.n_samples, 64), gen, batch=first)
        del first
        log_path = self.out / "log.jsonl"
        tb = self._tensorboard() if cfg.tensorboard and self.main else None
        self._event("start", {"step": self.step})
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        last: dict[str, float] = {}
        bar = None
        if cfg.progress and self.main:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=cfg.steps, initial=self.step, desc=f"train {self.variant_name}", unit="step", dynamic_ncols=True
            )
        t0, step0 = time.perf_counter(), self.step
        self.variant.train()
        try:
            while self.step < cfg.steps:
                batch = to_device(next(data), self.device, self.channels_last)
                losses = self.train_step(batch)
                # Accumulate on the device; the host reads them only every log_every steps (no per-step sync).
                for key, val in losses.items():
                    sums[key] = sums[key] + val if key in sums else val.clone()
                    counts[key] = counts.get(key, 0) + 1
                stage = self._stage_at(self.step - 1)[1]
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    skipped = int(sums.pop("skipped", torch.zeros(())))  # the same on every rank
                    counts.pop("skipped", None)
                    if self.dist is not None:  # the only cross-rank sync for logging, every log_every steps
                        sums = self.dist.mean(sums)
                    last = {k: float(s) / counts[k] for k, s in sums.items()}
                    sums, counts = {}, {}
                    if skipped:
                        last["skipped_steps"] = skipped
                        self._event("skip", {"step": self.step, "skipped": skipped})
                    if int(self._consecutive_skips) >= cfg.max_skips:
                        data = self._recover_from_divergence()
                        t0, step0 = time.perf_counter(), self.step
                        if bar is not None:
                            bar.n = self.step
                        continue
                    dt = time.perf_counter() - t0
                    ips = (self.step - step0) * self.global_batch / max(dt, 1e-9)  # all ranks together
                    t0, step0 = time.perf_counter(), self.step
                    record = {"step": self.step, "stage": stage.name, "img_per_s": round(ips, 2), **last}
                    record.update({f"lr/{n}": o.param_groups[0]["lr"] for n, o in self.optimizers.items()})
                    if self.main:
                        with open(log_path, "a") as f:
                            f.write(json.dumps(record) + "\n")
                    if tb is not None:
                        for k, val in record.items():
                            if isinstance(val, (int, float)) and k != "step":
                                tb.add_scalar(k, val, self.step)
                    if bar is not None:
                        shown = {
                            k.split("/")[0] + "/" + k.split("/")[-1]: f"{x:.3g}"
                            for k, x in last.items()
                            if k.endswith("/loss")
                        }
                        bar.set_postfix(**shown, img_s=f"{ips:.0f}")
                    self._event("log", {"step": self.step, "losses": last, "img_per_s": ips})
                if bar is not None:
                    bar.update(1)
                if cfg.sample_every and self.step % cfg.sample_every == 0 and self.main:
                    self.write_samples(sample_inputs)
                # A run in the middle of skipping non-finite steps writes no checkpoint: rollback targets stay good.
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and not int(self._consecutive_skips):
                    self.save_checkpoint()
        except KeyboardInterrupt:
            # Nothing lost on Ctrl-C: save where we are, then stop; --resume continues exactly from here.
            if bar is not None:
                bar.close()
            if self.dist is not None:  # the other ranks may be inside a collective: no gathering now
                if self.main:
                    print(
                        f"\nganzoo: interrupted at step {self.step}; resume from the last checkpoint", file=sys.stderr
                    )
                raise
            path = self.save_checkpoint()
            print(f"\nganzoo: interrupted at step {self.step}; checkpoint written to {path}", file=sys.stderr)
            raise
        finally:
            if bar is not None:
                bar.close()
            if tb is not None:
                tb.close()
        sample_path = (
            self.write_samples(sample_inputs) if self.main else self.out / "samples" / f"step-{self.step:08d}.png"
        )
        ckpt_path = (
            self.save_checkpoint()
            if not (cfg.ckpt_every and self.step % cfg.ckpt_every == 0)
            else ckpt.checkpoint_path(self.ckpt_dir, self.step)
        )
        model_path = self.export() if self.main else self.out / "model.safetensors"
        if self.main:
            self._plot_losses()
        if self.dist is not None:
            self.dist.barrier()  # the run is complete on disk when any rank returns
        self._event("end", {"step": self.step})
        return {
            "step": self.step,
            "losses": last,
            "samples": str(sample_path),
            "checkpoint": str(ckpt_path),
            "model": str(model_path),
            "out": str(self.out),
        }

    def _plot_losses(self) -> None:
        """``losses.png`` beside ``log.jsonl``: a picture of the run's curves. A plot must never fail a run."""
        from ..utils.plots import plot_losses

        if (self.out / "log.jsonl").exists():
            try:
                plot_losses(self.out, title=f"{self.variant.registered_name}: losses")
            except Exception as e:  # noqa: BLE001 - the run itself succeeded; say why the picture is missing
                print(f"ganzoo: could not draw losses.png: {e}", file=sys.stderr)

    def _tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard not installed: JSONL logs only
            return None
        return SummaryWriter(str(self.out / "tensorboard"))


def versions() -> dict[str, str]:
    return {"ganzoo": __version__, "torch": torch.__version__, "python": platform.python_version()}
