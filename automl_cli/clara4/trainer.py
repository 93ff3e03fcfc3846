"""The Clara 4.x trainer: a config's own MONAI SupervisedTrainer and SupervisedEvaluator,
run under the trainer contract of docs/trainer.md.

The config builds the trainer, the evaluator and their handlers as Clara built them; this
module adds what the contract asks and Clara's engines did not do:

- train **up to** the epoch a job asks for (`--epochs N`), resuming from
  `models/checkpoint.pt` (weights, optimizer and scheduler state, the engine's epoch and
  iteration, every random state), doing nothing when the checkpoint is already there;
- after each epoch whose validation ran, write the checkpoint, then `models/model.pt` when
  the key metric is the best so far, then one metrics line (`epoch`, `train_loss`, the key
  metric by its `log_label`, `seconds`); a checkpoint on disk is never half written;
- on SIGTERM (or SLURM's USR1) stop after the current iteration, leaving the last completed
  epoch's checkpoint; a loss that is not finite stops the job (exit 3).

The top-level keys mean what they meant in Clara: `epochs` (a full training),
`determinism.random_seed` (MONAI's set_determinism before anything is built), `use_gpu`,
`amp` (off without a GPU, with a warning), `cudnn_benchmark`, `num_interval_per_valid`, `dont_load_ckpt_model`
(read by the config's own CheckpointLoader), `multi_gpu` (see `_device`). A resumed job
leaves out the config's CheckpointLoader handlers: it continues from its own checkpoint,
which a start-point loader would overwrite.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from ..train.loop import (BEST_WEIGHTS, CHECKPOINT, TrainingInterrupted, _append_line, _cpu_state, _describe,
                          _metrics_path, _number, _save_atomic, _SigtermFlag, global_rng_state, load_checkpoint,
                          numpy_state, restore_optimizer, set_global_rng_state, set_numpy_state)
from .build import BuildError, Builder, BuildOptions

CHECKPOINT_FORMAT = "clara4-1"


def _device(config: dict, log: Callable[[str], None]) -> torch.device:
    if not torch.cuda.is_available() or config.get("use_gpu") is False:
        return torch.device("cpu")
    if config.get("multi_gpu") and torch.cuda.device_count() > 1:
        # Clara started one process per GPU (torch.distributed); a job here is one process
        log(f"multi_gpu: {torch.cuda.device_count()} GPUs visible, training on cuda:0 only "
            "(one process per job; give each worker one GPU, e.g. --workers 0:1:2:3)")
    return torch.device("cuda:0")


def _seed(config: dict) -> int:
    determinism = config.get("determinism")
    if isinstance(determinism, dict) and determinism.get("random_seed") is not None:
        return int(determinism["random_seed"])
    return int(config.get("seed", 0))


@contextmanager
def _in_folder(path: Path) -> Iterator[None]:
    """Clara ran from the MMAR's root: relative paths in a config (models, data) mean it."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _leave_out(mmar_root: Path, train: bool, resuming: bool) -> Callable[[type, dict], str | None]:
    """Which of the config's checkpoint handlers the trainer replaces. It keeps
    models/checkpoint.pt and models/model.pt itself (the best key metric across resumes,
    which a saver that starts counting afresh in each process would overwrite), resumes
    from its own checkpoint (which a start-point loader would overwrite), and evaluates the
    weights it is given."""
    from monai.handlers import CheckpointLoader, CheckpointSaver

    models = (mmar_root / "models").resolve()

    def why(cls: type, args: dict) -> str | None:
        if issubclass(cls, CheckpointSaver):
            target = Path(str(args.get("save_dir", ".")))
            if not train or (target if target.is_absolute() else mmar_root / target).resolve() == models:
                return "the trainer writes models/model.pt (best key metric) and models/checkpoint.pt itself"
        if issubclass(cls, CheckpointLoader) and (resuming or not train):
            return "resuming from models/checkpoint.pt" if train else "weights come from the file being evaluated"
        return None

    return why


class _Run:
    """The objects of one training: the config's trainer and evaluator, and the key metric."""

    def __init__(self, config: dict, mmar_root: Path, device: torch.device, log: Callable[[str], None],
                 resuming: bool, train: bool = True):
        from monai.utils import set_determinism

        set_determinism(seed=_seed(config))
        # set_determinism made cuDNN deterministic; Clara's cudnn_benchmark trades that for speed
        torch.backends.cudnn.benchmark = bool(config.get("cudnn_benchmark", False))
        options = BuildOptions(mmar_root=mmar_root, device=device, amp=None if device.type == "cuda" else False,
                               skip=_leave_out(mmar_root, train, resuming), log=log)
        self.builder = Builder(config, options)
        if train:
            self.trainer = self._required("train", "trainer")
        self.evaluator = self._required("validate", "evaluator")
        self.model = self.builder.get("train", "model") if self.builder.has("train", "model") \
            else getattr(self.evaluator, "network", None)
        self.key = getattr(self.evaluator.state, "key_metric_name", None)
        if not self.key:
            raise BuildError(["validate", "key_metric"], "the evaluator has no key metric (validate.key_metric, "
                                                         "given to the evaluator as key_val_metric): a job needs "
                                                         "one to be scored by")
        self.higher_is_better = True  # MONAI's default metric_cmp_fn: larger is better

    def _required(self, section: str, name: str) -> Any:
        if not self.builder.has(section, name):
            raise BuildError([section, name], f"a Clara 4.x config needs {section}.{name}")
        made = self.builder.get(section, name)
        if made is None:
            raise BuildError([section, name], f"{section}.{name} is disabled, but training needs it")
        return made

    def lr_scheduler(self) -> Any:
        return self.builder.get("train", "lr_scheduler") if self.builder.has("train", "lr_scheduler") else None


def _randomizables(run: _Run) -> list:
    """Every random transform of the data pipelines, in a fixed order: their generators are
    part of an exact resume (with num_workers 0 they run in this process)."""
    from monai.transforms import Randomizable

    found = []
    for section in ("train", "validate"):
        if run.builder.has(section, "pre_transforms"):
            for transform in run.builder.get(section, "pre_transforms").flatten().transforms:
                if isinstance(transform, Randomizable):
                    found.append(transform)
    return found


def _rng_state(run: _Run) -> dict:
    return {**global_rng_state(), "transforms": [numpy_state(t.R) for t in _randomizables(run)]}


def _set_rng_state(run: _Run, state: dict) -> None:
    set_global_rng_state(state)
    transforms = _randomizables(run)
    if len(transforms) == len(state.get("transforms", [])):
        for transform, saved in zip(transforms, state["transforms"]):
            set_numpy_state(transform.R, saved)


def _restore(run: _Run, state: dict, log: Callable[[str], None]) -> None:
    try:
        run.model.load_state_dict(state["model"])
    except RuntimeError as exc:  # another architecture: the config's model changed since
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"models/{CHECKPOINT} holds weights of another model than the config's ({first}); "
                         "delete it to start over") from None
    optimizer = run.trainer.optimizer
    restore_optimizer(optimizer, type(optimizer).__name__, state, log)
    scheduler = run.lr_scheduler()
    if scheduler is not None and state.get("lr_scheduler") is not None and hasattr(scheduler, "load_state_dict"):
        scheduler.load_state_dict(state["lr_scheduler"])
        _reschedule(optimizer, scheduler, state["optimizer"]["param_groups"])
    _set_rng_state(run, state["rng"])
    run.trainer.state.epoch = int(state["epoch"])
    run.trainer.state.iteration = int(state["iteration"])


def _reschedule(optimizer: Any, scheduler: Any, saved_groups: list[dict]) -> None:
    """The scheduler's progress applied to the config's rates: the saved schedule had
    brought each group to some fraction of its initial rate; the resumed group runs at that
    fraction of the rate the config gives now (the same rate when nothing changed, and a
    PBT-changed rate carried through the schedule rather than restarting it)."""
    bases = []
    for group, saved in zip(optimizer.param_groups, saved_groups):
        base = group.get("initial_lr", group["lr"])
        saved_base = saved.get("initial_lr") or saved["lr"]
        group["initial_lr"] = base
        group["lr"] = base * (saved["lr"] / saved_base if saved_base else 1.0)
        bases.append(base)
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = bases
    if hasattr(scheduler, "_last_lr"):
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def train(config: dict, mmar_root: Path, *, epochs: int | None = None, metrics_file: Path | None = None,
          log: Callable[[str], None] = print) -> dict:
    """Train the Clara 4.x config at `mmar_root` up to `epochs` (default: the config's).

    Returns ``{"epochs_completed", "best_metric", "best_epoch", "metric_key", "device"}``;
    raises TrainingInterrupted on SIGTERM, FloatingPointError on a loss or metric that is
    not finite, BuildError (a ValueError) on a config that cannot be built.
    """
    mmar_root = Path(mmar_root).resolve()
    with _SigtermFlag(log) as stop, _in_folder(mmar_root):
        return _train(config, mmar_root, epochs, metrics_file, log, stop)


def _train(config: dict, mmar_root: Path, epochs: int | None, metrics_file: Path | None,
           log: Callable[[str], None], stop: _SigtermFlag) -> dict:
    from ignite.engine import Events

    models = mmar_root / "models"
    models.mkdir(parents=True, exist_ok=True)
    metrics_path = _metrics_path(models, metrics_file)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    total = int(config.get("epochs") if epochs is None else epochs)
    checkpoint = models / CHECKPOINT
    state = load_checkpoint(checkpoint, CHECKPOINT_FORMAT, "this version of the Clara 4.x trainer") \
        if checkpoint.exists() else None
    device = _device(config, log)
    run = _Run(config, mmar_root, device, log, resuming=state is not None)
    done, best, best_epoch = 0, None, None
    if state is not None:
        _restore(run, state, log)
        done, best, best_epoch = int(state["epoch"]), state["best_metric"], state["best_epoch"]
        log(f"resumed from {checkpoint} at epoch {done}")
    summary = lambda: {"epochs_completed": done, "best_metric": best, "best_epoch": best_epoch,  # noqa: E731
                       "metric_key": run.key, "device": str(device)}
    if done >= total:
        log(f"checkpoint is at epoch {done}, asked for {total}: nothing to train")
        return summary()
    log(f"training on {_describe(device)} from epoch {done + 1} up to epoch {total}; metrics to {metrics_path}")

    trainer, evaluator = run.trainer, run.evaluator
    trainer.state.max_epochs = total
    epoch_state = {"losses": [], "started": time.perf_counter(), "validated": None, "nan": None}

    def on_iteration(engine: Any) -> None:
        loss = _batch_loss(engine.state.output)
        if loss is not None:
            epoch_state["losses"].append(loss)
            if not math.isfinite(loss):
                epoch_state["nan"] = loss
                engine.terminate()
        if stop.requested:
            engine.terminate()

    def on_validated(engine: Any) -> None:
        epoch_state["validated"] = trainer.state.epoch

    def on_eval_iteration(engine: Any) -> None:
        if stop.requested:
            engine.terminate()

    def on_epoch(engine: Any) -> None:
        nonlocal done, best, best_epoch
        epoch = engine.state.epoch
        losses = epoch_state["losses"]
        train_loss = sum(losses) / len(losses) if losses else float("nan")
        seconds = round(time.perf_counter() - epoch_state["started"], 4)
        epoch_state.update(losses=[], started=time.perf_counter())
        if stop.requested:
            engine.terminate()  # validation may have been cut short: this epoch is not saved
            return
        line: dict[str, Any] = {"epoch": epoch, "train_loss": _number(train_loss)}
        if epoch == total and epoch_state["validated"] != epoch and math.isfinite(train_loss):
            # num_interval_per_valid skipped this epoch, but it is the last the job trains: the
            # search judges the weights it stops with, so they are validated (leaving the random
            # stream as it was: a data loader draws from it, and the run continued later must
            # train as one that never stopped here)
            generator = torch.get_rng_state()
            evaluator.run(epoch)
            torch.set_rng_state(generator)
            if stop.requested:
                engine.terminate()
                return
        value = None
        if epoch_state["validated"] == epoch:
            value = float(evaluator.state.metrics.get(run.key, float("nan")))
            line[run.key] = _number(value)
        line["seconds"] = seconds
        if not math.isfinite(train_loss) or (value is not None and not math.isfinite(value)):
            _append_line(metrics_path, line)
            epoch_state["nan"] = f"epoch {epoch}: train_loss {train_loss}, {run.key} {value} (not finite)"
            engine.terminate()
            return
        if value is not None and (best is None or (value > best if run.higher_is_better else value < best)):
            best, best_epoch = value, epoch
            _save_atomic(_cpu_state(run.model), models / BEST_WEIGHTS)
        scheduler = run.lr_scheduler()
        _save_atomic({"format": CHECKPOINT_FORMAT, "epoch": epoch, "iteration": engine.state.iteration,
                      "best_metric": best, "best_epoch": best_epoch, "metric_key": run.key,
                      "model": _cpu_state(run.model), "optimizer": trainer.optimizer.state_dict(),
                      "optimizer_name": type(trainer.optimizer).__name__,
                      "lr_scheduler": scheduler.state_dict() if hasattr(scheduler, "state_dict") else None,
                      "rng": _rng_state(run)}, models / CHECKPOINT)
        _append_line(metrics_path, line)  # last: a line on disk promises its checkpoint is too
        done = epoch
        shown = f"{run.key} {value:.4f} (best {best:.4f} at epoch {best_epoch})" if value is not None \
            else f"{run.key} not validated this epoch"
        log(f"epoch {epoch}/{total} train_loss {train_loss:.4f} {shown} lr "
            f"{trainer.optimizer.param_groups[0]['lr']:.4g} {seconds:.2f}s")

    trainer.add_event_handler(Events.ITERATION_COMPLETED, on_iteration)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, on_epoch)  # after the config's ValidationHandler
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, on_eval_iteration)
    evaluator.add_event_handler(Events.COMPLETED, on_validated)
    _ensure_validation(run, config, log)
    if not stop.requested:
        trainer.run()
    if epoch_state["nan"] is not None:
        message = epoch_state["nan"] if isinstance(epoch_state["nan"], str) else \
            f"epoch {trainer.state.epoch}: a batch's loss was {epoch_state['nan']} (not finite)"
        if isinstance(epoch_state["nan"], float):
            _append_line(metrics_path, {"epoch": trainer.state.epoch, "train_loss": None, run.key: None})
        log(f"{message}: stopping")
        raise FloatingPointError(message)
    if stop.requested and done < total:
        log("SIGTERM: stopped; " + (f"the checkpoint of epoch {done} stands" if done else "no epoch completed"))
        raise TrainingInterrupted(done)
    return summary()


def _batch_loss(output: Any) -> float | None:
    """The loss of one iteration from a MONAI trainer's output (a dict, or a list of them)."""
    first = output[0] if isinstance(output, list) and output else output
    if isinstance(first, dict) and "loss" in first:
        value = first["loss"]
        return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    return None


def _ensure_validation(run: _Run, config: dict, log: Callable[[str], None]) -> None:
    """A trainer whose handlers never run the evaluator gets a ValidationHandler: without
    validation a job has no metric to be judged by."""
    from monai.handlers import ValidationHandler

    if any(isinstance(h, ValidationHandler) for h in run.builder.built.get(("train", "handlers"), None) or []):
        return
    interval = int(config.get("num_interval_per_valid") or 1)
    ValidationHandler(validator=run.evaluator, interval=interval, epoch_level=True).attach(run.trainer)
    # the metrics line must come after validation: move our epoch handler behind it
    from ignite.engine import Events

    handlers = run.trainer._event_handlers[Events.EPOCH_COMPLETED]
    handlers.append(handlers.pop(len(handlers) - 2))
    log(f"train.handlers has no ValidationHandler: validating every {interval} epoch(s)")


def evaluate(config: dict, mmar_root: Path, weights: Path, log: Callable[[str], None] = lambda m: None) -> dict:
    """The key metric of `weights` under the config's evaluator: ``{"<log_label>": value}``.

    The config's checkpoint loaders and savers of the evaluator are left out: the weights
    come from `weights`, and evaluating writes nothing into the folder.
    """
    mmar_root = Path(mmar_root).resolve()
    weights = Path(weights) if Path(weights).is_absolute() else mmar_root / weights
    if not weights.is_file():
        raise FileNotFoundError(f"no weights to evaluate: {weights}")
    with _in_folder(mmar_root):
        device = _device(config, log)
        run = _Run(config, mmar_root, device, log, resuming=True, train=False)
        state = torch.load(weights, map_location="cpu", weights_only=False)
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        run.model.load_state_dict(state)
        run.evaluator.run()
        return {run.key: float(run.evaluator.state.metrics[run.key])}
