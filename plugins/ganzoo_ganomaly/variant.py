"""The GANomaly variant: anomaly detection by an adversarially trained encoder-decoder-encoder."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ganzoo import GANVariant, Phase, Stage, StepState, Task, TrainInfo
from ganzoo.config import help, require
from ganzoo.data.base import DataError, get_items
from ganzoo.errors import ConfigError
from ganzoo.export_onnx import InferenceGraph, InferenceNet
from ganzoo.losses import G_REAL, PAIRED, get_loss
from ganzoo.nn import init_weights
from ganzoo.utils.images import SampleGrid
from ganzoo.variant_config import GANConfig

from .model import Discriminator, Generator, plan


@dataclass
class GANomalyConfig(GANConfig):
    # D compares each image with its own reconstruction (paired); G's loss is feature matching and never calls
    # the adversarial loss's ``g``, so any generator-side requirement is met.
    loss_provides: ClassVar[frozenset[str]] = frozenset({G_REAL, PAIRED})

    image_size: int = help("image side in pixels (4 times a power of two: 16, 32, 64 ...)", 32)
    channels: int = help("image channels (3 colour, 1 grayscale)", 3)
    nz: int = help("size of the latent vector z (100 in the paper)", 100)
    ngf: int = help("decoder width (channels of its last hidden layer)", 64)
    ndf: int = help("encoder and discriminator width (channels of their first layer)", 64)
    w_adv: float = help(
        "weight of the adversarial feature-matching loss (0: no discriminator, a plain autoencoder)", 1.0
    )
    w_con: float = help("weight of the contextual L1 reconstruction loss", 50.0)
    w_enc: float = help("weight of the latent L2 loss between the two encodings", 1.0)
    score: Literal["latent", "recon"] = help(
        "anomaly score: 'latent' = mean (z - z_hat)^2 (GANomaly), 'recon' = mean (x - x_hat)^2 (autoencoder)", "latent"
    )
    complexity: Literal["none", "tv"] = help(
        "divide the score by the input's complexity: 'tv' = its total variation (mean absolute difference of "
        "neighbouring pixels), so a simple input that reconstructs easily (a digit 1) is not taken for normal on "
        "that account (after Serra et al. 2020); 'none' = the paper's score",
        "none",
    )
    loss: str = help(
        "adversarial loss of the discriminator: standard, lsgan, hinge, rpgan ... (see docs/losses.md)", "standard"
    )
    reinit_threshold: float = help("re-initialize D when its loss falls below this (the paper's code: 1e-5)", 1e-5)
    reinit_check_every: int = help(
        "read D's loss on the host every N steps to test for collapse (no per-step sync)", 10
    )
    anomaly_class: int = help("mnist-anomaly: the digit that is the anomaly class (the nine others are normal)", 0)
    calibrate: bool = help("at the end of training, set score normalization and threshold on the val split", True)
    batch_size: int = help("batch size (64 in the paper)", 64)
    data: str = help("default data spec when none is given", "shapes-anomaly")

    def validate(self) -> None:
        super().validate()
        try:
            plan(self.image_size)
        except ValueError as e:
            raise ConfigError(f"image_size: {e}") from None
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        require(
            self,
            at_least_1=("nz", "ngf", "ndf", "batch_size", "reinit_check_every"),
            non_negative=("w_adv", "w_con", "w_enc", "reinit_threshold"),
        )
        if self.w_adv + self.w_con + self.w_enc == 0:
            raise ConfigError("w_adv, w_con and w_enc are all 0: nothing to train")
        if self.score == "latent" and self.w_enc == 0:
            raise ConfigError("score 'latent' needs w_enc > 0 (the second encoder is trained by it); or score=recon")
        if self.anomaly_class < 0:
            raise ConfigError(f"anomaly_class must be a class index >= 0, got {self.anomaly_class}")


TV_EPS = 1e-3
"""Added to the total variation before dividing by it, so a flat image gets a large but finite score."""


def total_variation(x: Tensor) -> Tensor:
    """Per image: the mean absolute difference of vertically neighbouring pixels plus that of horizontally
    neighbouring ones (0 for a flat image)."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    return dy + dx


def mean_square_error(a: Tensor, b: Tensor) -> Tensor:
    """Per item: the mean of ``(a - b)^2`` over everything but the batch dimension, in fp32."""
    return (a.float() - b.float()).square().flatten(1).mean(1)


def anomaly_score(c: GANomalyConfig, x: Tensor, x_hat: Tensor, z: Tensor, z_hat: Tensor | None) -> Tensor:
    """The raw anomaly score of each image under config ``c`` (higher = more anomalous): the mean squared latent
    or reconstruction error, divided by the input's total variation when ``c.complexity`` is ``"tv"``."""
    if c.score == "latent":
        if z_hat is None:
            raise ValueError("the latent score needs z_hat = encoder2(x_hat)")
        s = mean_square_error(z, z_hat)
    else:
        s = mean_square_error(x, x_hat)
    if c.complexity == "tv":
        s = s / (total_variation(x.float()) + TV_EPS)
    return s


class GANomaly(GANVariant):
    """GANomaly (Akcay et al. 2018): encoder-decoder-encoder G trained on normal data; anomaly = latent mismatch."""

    name = "ganomaly"
    task = Task.ANOMALY
    Config = GANomalyConfig
    description = "GANomaly anomaly detection (Akcay et al. 2018): score = ||E(x) - E'(G(E(x)))||^2"
    tags = {
        # The CPU recipe: 1,000 steps of 64 (1.2 epochs of the nine normal digits), minutes per anomaly digit; the
        # score divided by input complexity (mean AUROC over the ten digits 0.823 against 0.756: the variant's page).
        "mnist": {"channels": 1, "data": "mnist-anomaly", "default_steps": 1000, "complexity": "tv"},
        # The protocol's baseline: the same encoder-decoder, L1 reconstruction only, scored by reconstruction error.
        "ae": {"w_adv": 0.0, "w_enc": 0.0, "score": "recon"},
        "mnist_ae": {"channels": 1, "data": "mnist-anomaly", "w_adv": 0.0, "w_enc": 0.0, "score": "recon"},
    }
    tag_descriptions = {
        "mnist": "grayscale one-class MNIST, 1,000 steps, score divided by input complexity (--data "
        "mnist-anomaly:DIR --set anomaly_class=D)",
        "ae": "the autoencoder baseline: L1 reconstruction only, scored by reconstruction error, no discriminator",
        "mnist_ae": "the autoencoder baseline on one-class MNIST",
    }
    # The paper keeps no weight average; scores come from the trained weights themselves.
    ema_modules = ()
    default_data_spec = "shapes-anomaly"
    bench_sizes = {"standard": {}, "small": {"batch_size": 16}}
    tiny = {"image_size": 16, "ngf": 4, "ndf": 4, "nz": 8, "batch_size": 4}

    def __init__(self, config: GANomalyConfig | None = None):
        super().__init__(config)
        c = self.config
        self.adv = get_loss(c.loss)
        self.G = init_weights(Generator(c.image_size, c.nz, c.channels, c.ngf, c.ndf))
        self.D = init_weights(Discriminator(c.image_size, c.channels, c.ndf))
        # Score normalization and threshold, set by calibrate(); saved as JSON with the model.
        self.calibration: dict[str, Any] | None = None
        self.d_reinits = 0

    # ---- training ------------------------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        c = self.config
        betas = (c.beta1, c.beta2)
        g = Phase("g", ("G",), c.lr_g, betas)
        if c.w_adv == 0:
            return [Stage("ae", (g,))]
        # D first, so D's weights are frozen in G's phase (no wasted gradient); the paper's code updates G first.
        return [Stage("gan", (Phase("d", ("D",), c.lr_d, betas), g))]

    def data_options(self) -> dict[str, Any]:
        return {"anomaly_class": self.config.anomaly_class}

    def _reconstruct(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        z = self.G.encoder1(x)
        x_hat = self.G.decoder(z)
        # The autoencoder baseline never trains encoder2, so it skips the third network.
        z_hat = self.G.encoder2(x_hat) if self.config.w_enc > 0 or self.config.score == "latent" else None
        return x_hat, z, z_hat

    def loss(self, phase: str, batch: dict[str, Any], state: StepState) -> dict[str, Tensor]:
        real = batch["image"]
        if "g_out" not in state.cache:
            state.cache["g_out"] = self._reconstruct(real)
        x_hat, z, z_hat = state.cache["g_out"]
        c = self.config
        if phase == "d":
            real_logits, _ = self.D(real)
            fake_logits, _ = self.D(x_hat.detach())
            # Halved as in the paper's code, so the collapse threshold means the same thing.
            loss = 0.5 * self.adv.d(real=real_logits, fake=fake_logits)
            return {
                "loss": loss,
                "real": real_logits.detach().float().mean(),
                "fake": fake_logits.detach().float().mean(),
            }
        if phase == "g":
            con = (x_hat.float() - real.float()).abs().mean()
            loss = c.w_con * con
            out = {"con": con.detach()}
            if c.w_adv > 0:
                _, f_real = self.D(real)
                _, f_fake = self.D(x_hat)
                adv = (f_real.float() - f_fake.float()).square().mean()
                loss = loss + c.w_adv * adv
                out["adv"] = adv.detach()
            if c.w_enc > 0:
                enc = (z.float() - z_hat.float()).square().mean()
                loss = loss + c.w_enc * enc
                out["enc"] = enc.detach()
            return {"loss": loss, **out}
        raise ValueError(f"unknown phase {phase!r}")

    def on_step_end(self, step: int, losses: dict[str, Tensor]) -> None:
        # The paper's code re-initializes D whenever its loss collapses; reading the loss every step would sync the
        # device each step, so it is read every reinit_check_every steps (a collapse persists until the reset).
        c = self.config
        d_loss = losses.get("d/loss")
        if d_loss is None or step % c.reinit_check_every:
            return
        if float(d_loss) < c.reinit_threshold:
            init_weights(self.D)
            self.d_reinits += 1

    def on_train_end(self, info: TrainInfo) -> None:
        """End calibrated (``calibrate=True``): score normalization and threshold from the val split of the training
        data, computed with the weights being exported and saved in the model, so ``ganzoo score`` gives verdicts
        straight away."""
        if not self.config.calibrate:
            return
        from ganzoo.train.data import build_dataset

        try:
            val = build_dataset(info.data_spec, self, split="val", seed=info.seed)
            record = calibrate(self, val)
        except (DataError, ValueError) as e:
            if info.main:
                print(f"ganzoo: ganomaly: not calibrated ({e})", file=sys.stderr)
            return
        if record.get("warning") and info.main:
            print(f"ganzoo: warning: ganomaly calibration: {record['warning']}", file=sys.stderr)
        elif info.verbose and info.main:
            f1 = record.get("f1")
            print(
                f"ganzoo: calibrated on the val split ({record['n_normal']} normal, {record['n_anomalous']} "
                f"anomalous): threshold {record['threshold']:.4f}"
                + (f", F1 {f1:.3f}, AUROC {record['auroc']:.3f}" if f1 else ""),
                file=sys.stderr,
            )

    # ---- inference -----------------------------------------------------------------------------------------------
    def _prepare(self, images: Tensor) -> Tensor:
        x = torch.as_tensor(images)
        if x.dim() == 3:
            x = x[None]
        c = self.config
        if x.dim() != 4 or x.shape[1] != c.channels or x.shape[2:] != (c.image_size, c.image_size):
            raise DataError(
                f"images of shape {tuple(x.shape)} do not fit this model; it takes B x {c.channels} x "
                f"{c.image_size} x {c.image_size}"
            )
        if x.dtype == torch.uint8:
            x = x.float().div(127.5).sub(1.0)
        return x.to(self.device, torch.float32)

    def inference_graphs(self) -> list[InferenceGraph]:
        """ONNX export: ``image (B, C, S, S)`` in [-1, 1] -> ``score (B,)``, the anomaly score :meth:`score` gives
        (normalized with the calibration when the model has one; the threshold is in the file's metadata)."""
        c = self.config
        lo, span = 0.0, 1.0
        if self.calibration:
            lo = float(self.calibration["min"])
            span = max(float(self.calibration["max"]) - lo, 1e-12)

        def run(nets: InferenceNet, x: Tensor) -> Tensor:
            z = nets.G.encoder1(x)
            x_hat = nets.G.decoder(z)
            z_hat = nets.G.encoder2(x_hat) if c.score == "latent" else None
            return (anomaly_score(c, x, x_hat, z, z_hat) - lo) / span

        x = torch.rand(2, c.channels, c.image_size, c.image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
        meta = {"score": c.score, "complexity": c.complexity, "calibrated": str(bool(self.calibration)).lower()}
        if self.threshold is not None:
            meta["threshold"] = repr(float(self.threshold))
        return [
            InferenceGraph(
                "scorer",
                InferenceNet(run, G=self.G),
                (x,),
                ("image",),
                ("score",),
                {"image": {0: "batch"}, "score": {0: "batch"}},
                description=f"image: (B, {c.channels}, {c.image_size}, {c.image_size}) in [-1, 1] -> score: (B,), "
                "higher = more anomalous (anomalous when score >= the threshold metadata)",
                metadata=meta,
            )
        ]

    def sample_inputs(self, n: int, generator: torch.Generator, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        if batch is None:
            raise ConfigError("ganomaly's sample grids show reconstructions of real images; pass a batch")
        return {"image": batch["image"][:n]}

    def sample_images(self, inputs: dict[str, Any]) -> SampleGrid:
        """image | reconstruction | their absolute difference for each input, the columns captioned and each
        input's anomaly score (normalized once calibrated) under its difference."""
        x = self._prepare(inputs["image"])
        with torch.no_grad():
            x_hat, z, z_hat = self._reconstruct(x)
        scores = self.normalize(anomaly_score(self.config, x, x_hat, z, z_hat).cpu())
        x_hat = x_hat.float()
        diff = (x - x_hat).abs() - 1  # |x - x_hat| in [0, 2], shown from black (equal) to white
        captions = [[""] * len(x), [""] * len(x), [f"score {float(s):.3g}" for s in scores]]
        return SampleGrid.of_columns([("image", x), ("recon", x_hat), ("diff", diff)], captions=captions)

    @torch.no_grad()
    def reconstruct(self, images: Tensor, batch_size: int = 256) -> dict[str, Tensor]:
        """Per image: ``recon`` (the reconstruction), ``latent`` (mean (z - z_hat)^2; empty without encoder2),
        ``recon_error`` (mean (x - x_hat)^2) and ``score`` (the raw anomaly score the config chooses), all on the CPU;
        BatchNorm in eval mode whatever the model's mode."""
        was_training = self.training
        self.eval()
        try:
            out: dict[str, list[Tensor]] = {"recon": [], "latent": [], "recon_error": [], "score": []}
            x_all = torch.as_tensor(images)
            for start in range(0, len(x_all), batch_size):
                x = self._prepare(x_all[start : start + batch_size])
                x_hat, z, z_hat = self._reconstruct(x)
                out["recon"].append(x_hat.float().cpu())
                out["recon_error"].append(mean_square_error(x, x_hat).cpu())
                out["score"].append(anomaly_score(self.config, x, x_hat, z, z_hat).cpu())
                if z_hat is not None:
                    out["latent"].append(mean_square_error(z, z_hat).cpu())
            return {k: torch.cat(v) if v else torch.zeros(0) for k, v in out.items()}
        finally:
            self.train(was_training)

    @torch.no_grad()
    def raw_score(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """Unnormalized anomaly scores (higher = more anomalous), one per image, on the CPU."""
        return self.reconstruct(images, batch_size)["score"]

    def normalize(self, raw: Tensor) -> Tensor:
        """Min-max normalization with the reference set of :func:`calibrate` (identity when uncalibrated)."""
        if not self.calibration:
            return raw
        lo, hi = self.calibration["min"], self.calibration["max"]
        return (raw - lo) / max(hi - lo, 1e-12)

    @torch.no_grad()
    def score(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """Anomaly scores of ``images`` (uint8 or ``[-1, 1]``), min-max normalized over the calibration set (0..1 on
        it; new data may leave that range). Uncalibrated models return the raw scores."""
        return self.normalize(self.raw_score(images, batch_size))

    @property
    def threshold(self) -> float | None:
        """The calibrated decision threshold on normalized scores (anomalous when ``score >= threshold``)."""
        return None if not self.calibration else self.calibration.get("threshold")

    def extra_metadata(self) -> dict[str, Any]:
        return {"calibration": self.calibration} if self.calibration else {}

    def load_extra_metadata(self, data: dict[str, Any]) -> None:
        self.calibration = data.get("calibration") or None


# ---- calibration -------------------------------------------------------------------------------------------------


CHANCE_AUROC = 0.6
"""Below this calibration AUROC the model is too close to chance for a threshold: none is set, with a warning."""
FLAGS_ALL = 0.95
"""An F1-best threshold that flags at least this fraction of the calibration set is refused the same way."""


def best_f1_threshold(scores: Tensor, labels: Tensor) -> tuple[float, float]:
    """The threshold maximizing F1 of "anomalous when score >= threshold", and that F1.

    Among the distinct scores, the best cut is placed halfway to the next lower score, so unseen data near the
    boundary is not decided by ties with the calibration set.
    """
    s = scores.double().flatten()
    y = labels.flatten() == 1
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        raise ValueError("an F1-optimal threshold needs both normal and anomalous items")
    sorted_s, order = torch.sort(s, descending=True)
    distinct, counts = torch.unique_consecutive(sorted_s, return_counts=True)
    last = torch.cumsum(counts, 0) - 1
    tp = torch.cumsum(y[order].double(), 0)[last]
    predicted = (last + 1).double()
    f1 = 2 * tp / (predicted + n_pos)
    best = int(torch.argmax(f1))
    t = float(distinct[best])
    if best + 1 < len(distinct):
        t = (t + float(distinct[best + 1])) / 2
    return t, float(f1[best])


def _collect(dataset: Any, max_items: int | None, batch_size: int = 512) -> tuple[Tensor, Tensor]:
    n = len(dataset)
    # A subset is spread evenly over the dataset: sources are concatenated (e.g. all anomalies first).
    rows = (
        list(range(n)) if max_items is None or max_items >= n else torch.linspace(0, n - 1, max_items).long().tolist()
    )
    images, labels = [], []
    for start in range(0, len(rows), batch_size):
        idx = rows[start : start + batch_size]
        items = get_items(dataset, idx)
        images.append(torch.stack([it["image"] for it in items]))
        labels.append(torch.stack([torch.as_tensor(it["label"]) for it in items]))
    return torch.cat(images), torch.cat(labels).long()


def evaluate(
    model: GANomaly, dataset: Any, max_items: int | None = None, threshold: float | None = None
) -> dict[str, Any]:
    """AUROC and AUPRC of ``model`` on a labelled anomaly dataset, and F1/accuracy at ``threshold`` (default: the
    calibrated one, if any)."""
    from ganzoo.metrics import auprc, auroc

    images, labels = _collect(dataset, max_items)
    scores = model.score(images)
    result: dict[str, Any] = {"n": len(labels), "n_anomalous": int(labels.sum())}
    if 0 < result["n_anomalous"] < len(labels):
        result.update(auroc=auroc(scores, labels), auprc=auprc(scores, labels))
    threshold = model.threshold if threshold is None else threshold
    if threshold is not None:
        result["threshold"] = threshold
        pred = scores >= threshold
        tp = int((pred & (labels == 1)).sum())
        result["f1"] = 2 * tp / max(int(pred.sum()) + result["n_anomalous"], 1)
        result["accuracy"] = float((pred == (labels == 1)).double().mean())
    return result


def calibrate(model: GANomaly, dataset: Any, max_items: int | None = None) -> dict[str, Any]:
    """Set ``model``'s score normalization (min and max of the raw scores over ``dataset``) and its F1-optimal
    threshold from a labelled validation set; returns the calibration record (also kept on the model and saved
    with it). A set of normal items only gives the threshold 1.0: anything above the most anomalous-looking
    normal item is flagged."""
    from ganzoo.metrics import auprc, auroc

    images, labels = _collect(dataset, max_items)
    if len(labels) == 0:
        raise DataError("calibration set is empty")
    raw = model.raw_score(images)
    if not torch.isfinite(raw).all():
        raise ValueError("the model gives non-finite scores; it cannot be calibrated")
    lo, hi = float(raw.min()), float(raw.max())
    s = (raw - lo) / max(hi - lo, 1e-12)
    n_anom = int(labels.sum())
    record: dict[str, Any] = {"min": lo, "max": hi, "n_normal": len(labels) - n_anom, "n_anomalous": n_anom}
    if 0 < n_anom < len(labels):
        threshold, f1 = best_f1_threshold(s, labels)
        record.update(threshold=threshold, f1=f1, auroc=auroc(s, labels), auprc=auprc(s, labels))
        flagged = float((s >= threshold).double().mean())
        if record["auroc"] < CHANCE_AUROC or flagged >= FLAGS_ALL:
            # F1 is maximized by flagging (almost) everything when scores do not separate the classes: a threshold
            # that cannot tell normal from anomalous is worse than none, so verdicts wait for an explicit one.
            record.update(
                threshold=None,
                warning=f"scores barely separate normal from anomalous (AUROC {record['auroc']:.3f}; the F1-best "
                f"threshold would flag {100 * flagged:.0f}% of the calibration set): no threshold set; train longer, "
                "or pass --threshold T for verdicts",
            )
    else:
        record.update(threshold=1.0, f1=None)
    for k, v in record.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"calibration gave a non-finite {k}")
    model.calibration = record
    return record
