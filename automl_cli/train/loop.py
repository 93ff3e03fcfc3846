"""The reference trainer: build the components a config names, train, validate, checkpoint.

The contract every trainer follows (see docs/trainer.md): train up to the requested
epoch; resume from `models/checkpoint.pt` when it is there; append one JSON line per
epoch to the metrics file; write checkpoints atomically; on SIGTERM stop at the next batch
and leave the last epoch's checkpoint on disk.

A resumed run continues exactly as an uninterrupted one would (weights, optimizer state,
the random generator behind shuffling and augmentation are all in the checkpoint), except
that the optimizer's hyperparameters come from the current config: an algorithm such as
PBT changes them between a job's segments.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Callable

import torch

from .registry import build

CHECKPOINT = "checkpoint.pt"
BEST_WEIGHTS = "model.pt"


class TrainingInterrupted(Exception):
    """SIGTERM arrived; the checkpoint of the last completed epoch is on disk."""


class _Components:
    """What a config builds: model, validation data and metric, and for training the data,
    loss, optimizer, transforms and the generator they draw from."""

    def __init__(self, config: dict, device: torch.device, with_training: bool = True):
        seed = int(config.get("seed", 0))
        torch.manual_seed(seed)  # the same initial weights for the same config
        train, validate = config["train"], config["validate"]
        self.batch_size = int(config.get("batch_size", 8))
        self.model = build("model", train["model"]).to(device)
        self.val_data = build("dataset", validate["data"])
        self.val_transforms = [build("transform", t) for t in validate.get("transforms", [])]
        self.metric = build("metric", validate["metric"])
        if with_training:
            self.train_data = build("dataset", train["data"])
            self.loss = build("loss", train["loss"])
            self.optimizer = build("optimizer", train["optimizer"], params=self.model.parameters())
            self.optimizer_args = dict(train["optimizer"].get("args") or {})
            self.transforms = [build("transform", t) for t in train.get("transforms", [])]
            self.generator = torch.Generator().manual_seed(seed)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def _validate(parts: _Components, device: torch.device) -> float:
    parts.model.eval()
    data, scores = parts.val_data, []
    fixed = torch.Generator().manual_seed(0)  # validation transforms are meant to be deterministic
    for start in range(0, len(data), parts.batch_size):
        batch = {"image": data.image[start:start + parts.batch_size], "label": data.label[start:start + parts.batch_size]}
        for transform in parts.val_transforms:
            batch = transform(batch, fixed)
        logits = parts.model(batch["image"].to(device))
        scores.append(parts.metric(logits, batch["label"].to(device)).cpu())
    return float(torch.cat(scores).mean())


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _finite(value: float) -> float | None:
    """Non-finite numbers are written as JSON null (JSON has no NaN)."""
    return value if math.isfinite(value) else None


def train(config: dict, mmar_root: Path, *, epochs: int | None = None, metrics_file: Path | None = None,
          log: Callable[[str], None] = print) -> dict:
    """Train up to `epochs` (default config["epochs"]) and return a summary.

    Metrics lines: `{"epoch", "train_loss", "<metric key>", "seconds"}`, a non-finite loss
    or metric written as null, after which FloatingPointError is raised."""
    mmar_root = Path(mmar_root)
    models = mmar_root / "models"
    models.mkdir(parents=True, exist_ok=True)
    if metrics_file is None:
        metrics_file = Path(os.environ.get("AUTOML_METRICS_FILE") or models / "metrics.jsonl")
    total = int(epochs if epochs is not None else config["epochs"])
    device = _device()
    parts = _Components(config, device)
    key = parts.metric.key
    sign = 1.0 if parts.metric.higher_is_better else -1.0

    done, best, best_epoch = 0, None, None
    checkpoint = models / CHECKPOINT
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        parts.model.load_state_dict(state["model"])
        parts.optimizer.load_state_dict(state["optimizer"])
        for group in parts.optimizer.param_groups:  # the config's hyperparameters win over the checkpoint's
            group.update({k: v for k, v in parts.optimizer_args.items() if k in group})
        parts.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        done, best, best_epoch = state["epoch"], state["best_metric"], state["best_epoch"]
        log(f"resumed from {checkpoint} at epoch {done}")
    log(f"training on {device} ({torch.get_num_threads()} CPU threads) up to epoch {total}")

    stop = {"asked": False}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(asked=True))
    try:
        for epoch in range(done + 1, total + 1):
            started = time.perf_counter()
            train_loss = _train_epoch(parts, device, stop)
            if stop["asked"]:
                log(f"SIGTERM: stopping; the checkpoint of epoch {epoch - 1} stands")
                raise TrainingInterrupted()
            value = _validate(parts, device)
            line = {"epoch": epoch, "train_loss": _finite(train_loss), key: _finite(value),
                    "seconds": round(time.perf_counter() - started, 4)}
            with open(metrics_file, "a") as out:
                out.write(json.dumps(line) + "\n")
            log(f"epoch {epoch}/{total} train_loss {train_loss:.4f} {key} {value:.4f} ({line['seconds']:.2f}s)")
            if not (math.isfinite(train_loss) and math.isfinite(value)):
                raise FloatingPointError(f"epoch {epoch}: train_loss {train_loss}, {key} {value} (not finite)")
            if best is None or sign * value > sign * best:
                best, best_epoch = value, epoch
                _save_atomic(parts.model.state_dict(), models / BEST_WEIGHTS)
            _save_atomic({"model": parts.model.state_dict(), "optimizer": parts.optimizer.state_dict(),
                          "generator": parts.generator.get_state(), "torch_rng": torch.get_rng_state(),
                          "epoch": epoch, "best_metric": best, "best_epoch": best_epoch}, checkpoint)
            done = epoch
    finally:
        signal.signal(signal.SIGTERM, previous)
    return {"epochs_completed": done, "best_metric": best, "best_epoch": best_epoch, "metric_key": key,
            "device": str(device)}


def _train_epoch(parts: _Components, device: torch.device, stop: dict) -> float:
    parts.model.train()
    data = parts.train_data
    order = torch.randperm(len(data), generator=parts.generator)
    total, batches = 0.0, 0
    for start in range(0, len(data), parts.batch_size):
        if stop["asked"]:
            break
        index = order[start:start + parts.batch_size]
        batch = {"image": data.image[index], "label": data.label[index]}
        for transform in parts.transforms:
            batch = transform(batch, parts.generator)
        logits = parts.model(batch["image"].to(device))
        loss = parts.loss(parts.model.activate(logits), batch["label"].to(device))
        parts.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        parts.optimizer.step()
        total, batches = total + float(loss.detach()), batches + 1
    return total / max(1, batches)


def evaluate(config: dict, mmar_root: Path, weights: Path) -> dict:
    """The validation metric of `weights` (e.g. models/model.pt) under this config."""
    device = _device()
    parts = _Components(config, device, with_training=False)
    parts.model.load_state_dict(torch.load(weights, map_location=device, weights_only=True))
    return {parts.metric.key: _validate(parts, device)}
