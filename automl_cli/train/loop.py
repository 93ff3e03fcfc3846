"""The reference trainer: build what a config names, train, validate, checkpoint.

It follows the trainer contract of docs/trainer.md:

- train **up to** a total epoch count, resuming from `models/checkpoint.pt` when it is
  there (and doing nothing when that checkpoint is already far enough);
- append one JSON line per epoch to the metrics file, flushed at once;
- write checkpoints atomically, keep the best epoch's weights in `models/model.pt`;
- on SIGTERM stop at the next batch with the last completed epoch's checkpoint on disk.

A resumed run continues exactly as an uninterrupted one would: weights, optimizer state
and every random state (torch, numpy, python, and the generator behind shuffling and
augmentation) are in the checkpoint. The one deliberate exception is the optimizer's
hyperparameters, which come from the config the run was started with, because an
algorithm such as PBT changes them between a job's segments. Exactness holds on the CPU;
on a GPU a few backward kernels (adaptive pooling, interpolation) are not deterministic.

Per epoch, the checkpoint (and model.pt when the epoch is the best) is written before the
metrics line: whoever reads line N may rely on the checkpoint of epoch N being on disk
(PBT copies a better job's checkpoint as soon as it sees its score).
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..files import write_atomic
from .registry import build

CHECKPOINT = "checkpoint.pt"
BEST_WEIGHTS = "model.pt"
METRICS_FILE = "metrics.jsonl"
METRICS_ENV = "AUTOML_METRICS_FILE"
CHECKPOINT_FORMAT = 1


class TrainingInterrupted(Exception):
    """SIGTERM arrived; training stopped at a batch boundary.

    `epoch` is the last completed epoch, whose checkpoint is on disk (0: none completed,
    no checkpoint written by this run). The CLI exits 143 on it.
    """

    def __init__(self, epoch: int):
        self.epoch = epoch
        where = f"the checkpoint of epoch {epoch} is on disk" if epoch else "no epoch was completed"
        super().__init__(f"stopped by SIGTERM; {where}")


@dataclass
class _Validation:
    data: Any
    transforms: list
    metric: Any
    batch_size: int


@dataclass
class _Training:
    data: Any
    transforms: list
    loss: Callable
    optimizer: torch.optim.Optimizer
    optimizer_name: str
    generator: torch.Generator
    batch_size: int
    lr_schedule: "_LRSchedule"


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        # the mask says which of the machine's GPUs this job's worker was given
        mask = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        return f"cuda ({torch.cuda.get_device_name(device)}, CUDA_VISIBLE_DEVICES={mask})"
    # the thread count is whatever OMP_NUM_THREADS gave torch: the engine sets it per job
    return f"cpu ({torch.get_num_threads()} threads)"


def _seed_everything(seed: int) -> None:
    # Components may draw from any of the global generators; seeding all of them makes the
    # initial weights (and anything else drawn at build time) a function of the config.
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _section(config: dict, *path: str) -> Any:
    """config[path[0]][path[1]]..., with a missing part named in config terms, not a KeyError."""
    node: Any = config
    for depth, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            raise ValueError(f"config_train.json has no {'.'.join(path[:depth + 1])}")
        node = node[key]
    return node


def _disabled(component: Any, where: str) -> bool:
    """Clara's "disabled" attribute: a disabled component is left out of training."""
    flag = component.get("disabled", False) if isinstance(component, dict) else False
    if not isinstance(flag, bool):
        raise ValueError(f"{where}.disabled must be true or false, got {flag!r}")
    return flag


def _enabled(config: dict, *path: str, required: bool = True) -> list[dict]:
    """The components at `path` (a list of them, or one) that are not disabled; an optional
    section that is missing or null has none."""
    if not required and (not _has(config, path) or _section(config, *path) is None):
        return []
    section = _section(config, *path)
    where = ".".join(path)
    if not isinstance(section, list):
        return [] if _disabled(section, where) else [section]
    return [c for i, c in enumerate(section) if not _disabled(c, f"{where}[{i}]")]


def _has(config: dict, path: tuple) -> bool:
    node: Any = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _one(config: dict, *path: str) -> dict:
    """A component the trainer needs exactly one of (model, optimizer, data, metric)."""
    component = _section(config, *path)
    if _disabled(component, ".".join(path)):
        raise ValueError(f"{'.'.join(path)} is disabled, but training needs it")
    return component


class _SummedLoss:
    """Several enabled losses train as their sum (Clara's configs switch losses on and off)."""

    def __init__(self, losses: list[Callable]):
        self.losses = losses

    def __call__(self, probs: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return sum(loss(probs, label) for loss in self.losses)


def _build_loss(config: dict) -> Callable:
    losses = [build("loss", c) for c in _enabled(config, "train", "loss")]
    if not losses:
        raise ValueError("train.loss: every loss is disabled; at least one must be enabled")
    return losses[0] if len(losses) == 1 else _SummedLoss(losses)


class _LRSchedule:
    """The learning rate of each epoch: the optimizer's configured rate times the factors
    of the enabled `train.lr_policy` components (none: constant). A function of the epoch
    alone, so a resumed run gets exactly the rates an uninterrupted one would have."""

    def __init__(self, policies: list, optimizer: torch.optim.Optimizer, epochs: int):
        self.policies = policies
        self.base_rates = [group["lr"] for group in optimizer.param_groups]
        self.epochs = epochs  # of a full training: a shorter job sees the start of the same schedule

    def set_epoch(self, optimizer: torch.optim.Optimizer, epoch: int) -> float:
        """Set the rates for `epoch` (0-based); returns the first group's."""
        factor = 1.0
        for policy in self.policies:
            factor *= float(policy.factor(epoch, self.epochs))
        for group, base in zip(optimizer.param_groups, self.base_rates):
            group["lr"] = base * factor
        return optimizer.param_groups[0]["lr"]


def _build_model(config: dict, device: torch.device) -> torch.nn.Module:
    model = build("model", _one(config, "train", "model")).to(device)
    if not callable(getattr(model, "activate", None)):
        raise ValueError(f"model '{config['train']['model'].get('name')}' has no activate() for its final activation")
    return model


def _build_validation(config: dict) -> _Validation:
    return _Validation(data=build("dataset", _one(config, "validate", "data")),
                       transforms=[build("transform", t) for t in _enabled(config, "validate", "transforms",
                                                                            required=False)],
                       metric=build("metric", _one(config, "validate", "metric")),
                       batch_size=int(config.get("batch_size", 8)))


def _build_training(config: dict, model: torch.nn.Module, seed: int, full_epochs: int) -> _Training:
    train = _section(config, "train")
    optimizer = build("optimizer", _one(config, "train", "optimizer"), params=model.parameters())
    policies = [build("lr_policy", p) for p in _enabled(config, "train", "lr_policy", required=False)]
    return _Training(data=build("dataset", _one(config, "train", "data")),
                     transforms=[build("transform", t) for t in _enabled(config, "train", "transforms",
                                                                         required=False)],
                     loss=_build_loss(config),
                     optimizer=optimizer,
                     optimizer_name=str(train["optimizer"]["name"]),
                     generator=torch.Generator().manual_seed(seed),
                     batch_size=int(config.get("batch_size", 8)),
                     lr_schedule=_LRSchedule(policies, optimizer, full_epochs))


@torch.no_grad()
def _validate(model: torch.nn.Module, val: _Validation, device: torch.device) -> float:
    model.eval()
    val.metric.reset()
    # Validation transforms are meant to be deterministic; a fixed generator makes sure
    # that even a random one gives the same score every time (evaluate() relies on it).
    generator = torch.Generator().manual_seed(0)
    for start in range(0, len(val.data), val.batch_size):
        batch = {"image": val.data.image[start:start + val.batch_size].clone(),
                 "label": val.data.label[start:start + val.batch_size].clone()}
        for transform in val.transforms:
            batch = transform(batch, generator)
        logits = model(batch["image"].to(device))
        val.metric.update(logits, batch["label"].to(device))
    return float(val.metric.value())


def _train_epoch(model: torch.nn.Module, run: _Training, device: torch.device, stop: "_SigtermFlag") -> float | None:
    """One pass over the training data; the sample-weighted mean loss, NaN as soon as a
    batch's loss is not finite, or None when SIGTERM cut the epoch short."""
    model.train()
    n = len(run.data)
    order = torch.randperm(n, generator=run.generator)
    total = 0.0
    for start in range(0, n, run.batch_size):
        if stop.requested:
            return None
        index = order[start:start + run.batch_size]
        batch = {"image": run.data.image[index], "label": run.data.label[index]}  # indexing copies
        for transform in run.transforms:
            batch = transform(batch, run.generator)
        logits = model(batch["image"].to(device))
        loss = run.loss(model.activate(logits), batch["label"].to(device))
        value = float(loss.detach())
        if not math.isfinite(value):
            # Further steps would only spread NaN through the weights; the epoch is lost.
            return float("nan")
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        total += value * len(index)
    return total / max(1, n)


class _SigtermFlag:
    """Turns SIGTERM into a flag checked at batch boundaries, for the duration of a `with`.

    Python can install handlers only from the main thread; elsewhere (a trainer called
    from a worker thread) SIGTERM keeps its previous meaning and that is logged.
    """

    def __init__(self, log: Callable[[str], None]):
        self.requested = False
        self._log = log
        self._previous: Any = None
        self._previous_usr1: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __enter__(self) -> "_SigtermFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            # SLURM's time-limit warning (--signal=USR1@N) means the same: checkpoint and stop
            self._previous_usr1 = signal.signal(signal.SIGUSR1, self._handle)
            self._installed = True
        else:
            self._log("not on the main thread: SIGTERM will not stop training at a batch boundary")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            signal.signal(signal.SIGUSR1, self._previous_usr1)


def _save_atomic(obj: Any, path: Path) -> None:
    # a kill or a power cut at any moment leaves either the old checkpoint or the new one
    write_atomic(path, lambda out: torch.save(obj, out), unique=True)


def _cpu_state(module: torch.nn.Module) -> dict:
    # CPU copies so that weights saved on a GPU load anywhere
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def numpy_state(generator: Any) -> dict:
    """A numpy RandomState's (or np.random's) state as tensors and plain numbers, so
    checkpoints load with weights_only=True."""
    _, keys, pos, has_gauss, gauss = generator.get_state(legacy=True)
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
            "gauss": float(gauss)}


def set_numpy_state(generator: Any, state: dict) -> None:
    generator.set_state(("MT19937", state["keys"].numpy().astype(np.uint32), state["pos"], state["has_gauss"],
                         state["gauss"]))


def global_rng_state() -> dict:
    """The process-wide generators (torch, numpy, python, CUDA) of a checkpoint."""
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state(np.random), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    set_numpy_state(np.random, state["numpy"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path, checkpoint_format: Any, trainer: str = "this version of the trainer") -> dict:
    """A checkpoint written by `trainer` (its `format` is `checkpoint_format`), or one line
    saying why it cannot be resumed from."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch raises several kinds for a foreign file)
        raise ValueError(f"{path} cannot be resumed from ({type(exc).__name__}); delete it to start over") from exc
    if not isinstance(state, dict) or state.get("format") != checkpoint_format:
        # A checkpoint from another trainer (or another version of this one) cannot give an
        # exact continuation; saying so beats resuming from half of it.
        raise ValueError(f"{path} was not written by {trainer}; delete it to start over")
    return state


def restore_optimizer(optimizer: torch.optim.Optimizer, name: str, state: dict, log: Callable[[str], None]) -> bool:
    """Load the optimizer's state (moments, step counts) but keep the hyperparameters the
    current config gave it: PBT changes the learning rate between segments. False (and a
    log line) when the checkpoint's optimizer was another one: its state starts fresh."""
    if state.get("optimizer_name") != name:
        log(f"optimizer changed from {state.get('optimizer_name')} to {name}: its state starts fresh")
        return False
    configured = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(state["optimizer"])
    for group, hyper in zip(optimizer.param_groups, configured):
        group.update(hyper)
    return True


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: a non-finite value is written as null."""
    return value if math.isfinite(value) else None


def _append_line(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record, allow_nan=False) + "\n")
        out.flush()


def _metrics_path(models: Path, metrics_file: Path | None) -> Path:
    if metrics_file is not None:
        return Path(metrics_file)
    from_env = os.environ.get(METRICS_ENV)
    return Path(from_env) if from_env else models / METRICS_FILE


def train(config: dict, mmar_root: Path, *, epochs: int | None = None, metrics_file: Path | None = None,
          log: Callable[[str], None] = print) -> dict:
    """Train the MMAR at `mmar_root` up to `epochs` in total (default `config["epochs"]`).

    `config` is config_train.json as loaded, with its variables substituted. Checkpoints
    go to `mmar_root/models/`: `checkpoint.pt` (the latest epoch, resumed from when it
    exists) and `model.pt` (the weights of the best validation epoch).

    After every epoch one line is appended to `metrics_file` (default: $AUTOML_METRICS_FILE,
    else `models/metrics.jsonl`)::

        {"epoch": 3, "train_loss": 0.41, "val_mean_dice": 0.72, "seconds": 1.3}

    `epoch` counts completed epochs from 1; the metric's key is the metric's `key` arg.
    A loss or metric that is not finite is written as JSON ``null``, and then
    FloatingPointError is raised (no checkpoint is written for that epoch).

    SIGTERM stops training at the next batch boundary and raises TrainingInterrupted; the
    checkpoint of the last completed epoch is then on disk.

    Returns ``{"epochs_completed", "best_metric", "best_epoch", "metric_key", "device"}``.
    """
    # Installed first: a SIGTERM during setup then also ends in TrainingInterrupted rather
    # than the default kill, so the caller sees one way of being stopped.
    with _SigtermFlag(log) as stop:
        return _train(config, Path(mmar_root), epochs, metrics_file, log, stop)


def _train(config: dict, mmar_root: Path, epochs: int | None, metrics_file: Path | None,
           log: Callable[[str], None], stop: _SigtermFlag) -> dict:
    models = mmar_root / "models"
    models.mkdir(parents=True, exist_ok=True)
    metrics_path = _metrics_path(models, metrics_file)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    total = int(_section(config, "epochs") if epochs is None else epochs)
    seed = int(config.get("seed", 0))

    device = _device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False  # autotuning picks kernels by timing: not reproducible
        torch.backends.cudnn.deterministic = True
    _seed_everything(seed)
    model = _build_model(config, device)
    val = _build_validation(config)
    # the lr policies span a full training even when this job stops earlier (hyperband's rungs)
    run = _build_training(config, model, seed, int(config.get("epochs") or total))
    key = val.metric.key
    higher_is_better = bool(getattr(val.metric, "higher_is_better", True))

    done, best, best_epoch = 0, None, None
    checkpoint = models / CHECKPOINT
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, CHECKPOINT_FORMAT)
        model.load_state_dict(state["model"])
        restore_optimizer(run.optimizer, run.optimizer_name, state, log)
        run.generator.set_state(state["rng"]["generator"])
        set_global_rng_state(state["rng"])
        done, best, best_epoch = int(state["epoch"]), state["best_metric"], state["best_epoch"]
        log(f"resumed from {checkpoint} at epoch {done}")

    def summary() -> dict:
        return {"epochs_completed": done, "best_metric": best, "best_epoch": best_epoch, "metric_key": key,
                "device": str(device)}

    if done >= total:
        log(f"checkpoint is at epoch {done}, asked for {total}: nothing to train")
        return summary()
    log(f"training on {_describe(device)} from epoch {done + 1} up to epoch {total}; metrics to {metrics_path}")

    for epoch in range(done + 1, total + 1):
        if stop.requested:
            break
        started = time.perf_counter()
        lr = run.lr_schedule.set_epoch(run.optimizer, epoch - 1)
        train_loss = _train_epoch(model, run, device, stop)
        if train_loss is None:
            break
        value = _validate(model, val, device)
        seconds = round(time.perf_counter() - started, 4)
        line = {"epoch": epoch, "train_loss": _number(train_loss), key: _number(value), "seconds": seconds}
        if not (math.isfinite(train_loss) and math.isfinite(value)):
            _append_line(metrics_path, line)
            log(f"epoch {epoch}/{total} train_loss {train_loss} {key} {value}: not finite, stopping")
            raise FloatingPointError(f"epoch {epoch}: train_loss {train_loss}, {key} {value} (not finite)")

        if best is None or (value > best if higher_is_better else value < best):
            best, best_epoch = value, epoch
            _save_atomic(_cpu_state(model), models / BEST_WEIGHTS)
        _save_atomic({"format": CHECKPOINT_FORMAT, "epoch": epoch, "best_metric": best, "best_epoch": best_epoch,
                      "metric_key": key, "model": _cpu_state(model), "optimizer": run.optimizer.state_dict(),
                      "optimizer_name": run.optimizer_name,
                      "rng": {"generator": run.generator.get_state(), **global_rng_state()}}, checkpoint)
        _append_line(metrics_path, line)  # last: a line on disk promises its checkpoint is too
        done = epoch
        log(f"epoch {epoch}/{total} train_loss {train_loss:.4f} {key} {value:.4f} "
            f"(best {best:.4f} at epoch {best_epoch}) lr {lr:.4g} {seconds:.2f}s")

    if stop.requested and done < total:
        log("SIGTERM: stopped; " + (f"the checkpoint of epoch {done} stands" if done else "no epoch completed"))
        raise TrainingInterrupted(done)
    return summary()


def evaluate(config: dict, mmar_root: Path, weights: Path) -> dict:
    """The validation metric of `weights` under `config`: ``{"<metric key>": value}``.

    `weights` is a state_dict file such as `models/model.pt` (a `checkpoint.pt` works too);
    a relative path is taken relative to `mmar_root`. On the same machine this gives exactly
    the value train() logged for the epoch whose weights these are.
    """
    weights = Path(weights)
    if not weights.is_absolute():
        weights = Path(mmar_root) / weights
    if not weights.is_file():
        raise FileNotFoundError(f"no weights to evaluate: {weights}")
    device = _device()
    _seed_everything(int(config.get("seed", 0)))
    model = _build_model(config, device)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if isinstance(state.get("model"), dict):
        state = state["model"]
    model.load_state_dict(state)
    val = _build_validation(config)
    return {val.metric.key: _validate(model, val, device)}
