"""CUDA correctness: for every variant, one training step from identical weights and batch in fp32, bf16 and fp16
must give finite losses that agree with fp32 within tolerance. Writes a JSON report; exits 1 on any failure."""

from __future__ import annotations

import json
import sys

import torch

import ganzoo
from ganzoo.testing import tiny_variant
from ganzoo.train import TrainConfig, Trainer
from ganzoo.train.data import build_dataset, first_items, to_device

TOL = {"bf16": 0.1, "fp16": 0.05}


def step_losses(name: str, precision: str) -> dict[str, float]:
    torch.manual_seed(0)
    v = tiny_variant(name)
    cfg = TrainConfig(steps=10, device="cuda", precision=precision, progress=False, tensorboard=False, ema_decay=0)
    t = Trainer(v, cfg, out="/tmp/ganzoo-cuda-check")
    t._setup()
    t.step = sum(s.steps or 0 for s in t.stages[:-1])
    ds = build_dataset(v.default_data, v, seed=0)
    v.prepare_data(ds)
    batch = to_device(first_items(ds, t.batch_size), t.device, t.channels_last)
    torch.manual_seed(1)
    out = t.train_step(batch)
    return {k: float(val) for k, val in out.items() if k.endswith("/loss")}


def main(path: str) -> int:
    report, ok = {}, True
    for name in ganzoo.list_variants(tags=False):
        try:
            ref = step_losses(name, "fp32")
            entry = {"fp32": ref}
            for p, tol in TOL.items():
                got = step_losses(name, p)
                bad = [k for k in ref if not (abs(got[k] - ref[k]) <= tol * max(1.0, abs(ref[k])))]
                nonfinite = [k for k, v in got.items() if v != v or abs(v) == float("inf")]
                entry[p] = {"losses": got, "mismatch": bad, "nonfinite": nonfinite}
                ok &= not bad and not nonfinite
        except Exception as e:  # report every variant, then fail
            entry = {"error": f"{type(e).__name__}: {e}"}
            ok = False
        report[name] = entry
        print(name, json.dumps(entry))
    with open(path, "w") as f:
        json.dump(
            {"ok": ok, "device": torch.cuda.get_device_name(0), "torch": torch.__version__, **report}, f, indent=2
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "cuda_check.json"))
