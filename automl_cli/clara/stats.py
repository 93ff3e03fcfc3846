"""Handlers that record the jobs: StatsHandler (one table for the run), MMARStatsHandler
(a summary in each job folder), MMARTensorboardHandler (the run in TensorBoard) and
MLflowHandler (each job as an MLflow run)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..files import write_json_atomic
from ..status import csv_cell, flat_columns, flat_values
from .handler import Handler, HandlerContext, JobInfo

STATS_COLUMNS = ["name", "worker", "status", "score", "epochs", "seconds"]


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) or value is None else value


class StatsHandler(Handler):
    """Per-job stats: `stats.csv` in the run folder (or `file`, relative to it), one row per
    job folder as it ends: name, worker, status, score, epochs it trained, seconds, then one
    column per search parameter, its value as it is (an enum's choice `softmax`, not
    `["softmax"]`; a grouped enum one column per arg; an inactive one empty), as report.csv
    shows them. A resumed run appends to it."""

    def __init__(self, file: str = "stats.csv"):
        if not isinstance(file, str) or not file:
            raise ValueError(f"file: expected a file name, got {file!r}")
        self.file = file
        self.path: Path | None = None
        self.widths: dict[str, int] = {}
        self.columns: list[str] = []

    def search_space_available(self, ctx: HandlerContext) -> None:
        self.path = ctx.run_dir / self.file
        self.widths = {p.name: len(p.args) if p.is_choice else 1 for p in ctx.space.params}
        self.columns = flat_columns(self.widths)
        if not self.path.exists() or self.path.stat().st_size == 0:
            with open(self.path, "w", newline="") as out:
                csv.writer(out).writerow(STATS_COLUMNS + self.columns)

    def end_job(self, ctx: HandlerContext) -> None:
        job = ctx.job
        row = [job.name, job.worker, job.status, _cell(job.score), job.epochs_trained, round(job.seconds, 3)]
        values = flat_values(job.values, self.widths)
        with open(self.path, "a", newline="") as out:
            csv.writer(out).writerow(row + [csv_cell(values.get(column)) for column in self.columns])


class MMARStatsHandler(Handler):
    """Clara's per-MMAR stats: each job folder gets `automl_stats.json` as it ends (its
    values, status, score, epochs, seconds and its metrics line by epoch), so a job MMAR
    says on its own what it was and how it did."""

    FILE = "automl_stats.json"

    def end_job(self, ctx: HandlerContext) -> None:
        job = ctx.job
        view = ctx.view.jobs.get(job.job_id)
        epochs = {str(e): v for e, v in sorted(view.epochs.items())} if view else {}
        write_json_atomic(job.directory / self.FILE, {
            "run_id": ctx.run_id, "job": job.name, "trial": job.trial_id, "worker": job.worker,
            "status": job.status, "cause": job.cause, "metric": ctx.metric, "score": job.score,
            "epochs": [job.start_epoch, job.epoch], "seconds": job.seconds, "values": job.values,
            "metrics_by_epoch": epochs})


class MMARTensorboardHandler(Handler):
    """The run in TensorBoard: each job's metrics by epoch and the hyperparameter table,
    rewritten under <run>/tensorboard/ at the end of every round and of the run (what
    `automl report` exports). Needs the `tensorboard` package; without it the handler is
    accepted and says once, at the start of the run, that it writes nothing."""

    def __init__(self) -> None:
        from .. import tensorboard

        self.tensorboard = tensorboard
        self.available = tensorboard.available()

    def start_automl(self, ctx: HandlerContext) -> None:
        if not self.available:
            ctx.log("tensorboard is not installed, so no TensorBoard logs are written "
                    "(pip install 'automl-cli[tensorboard]')", level="WARN")

    def round_ended(self, ctx: HandlerContext) -> None:
        self._export(ctx)

    def end_automl(self, ctx: HandlerContext) -> None:
        if self._export(ctx):
            ctx.log(f"TensorBoard logs: tensorboard --logdir {ctx.run_dir / 'tensorboard'}")

    def _export(self, ctx: HandlerContext) -> bool:
        if self.available:
            self.tensorboard.export(ctx.view, ctx.run_dir)
        return self.available


class MLflowHandler(Handler):
    """Logs each ended job as an MLflow run of experiment `experiment` (default: automl-<run
    id>): its values as params, its metrics by epoch (step = epoch), its score as
    `score_<metric>`, and tags for the job, worker, status and AutoML run. `tracking_uri`
    sets where MLflow writes (default: MLflow's own, ./mlruns or $MLFLOW_TRACKING_URI)."""

    def __init__(self, experiment: str | None = None, tracking_uri: str | None = None):
        try:
            import mlflow
        except ImportError:
            raise ImportError("MLflowHandler needs the mlflow package, which is not installed: "
                              "pip install mlflow") from None
        self.mlflow = mlflow
        self.experiment = experiment
        self.tracking_uri = tracking_uri

    def start_automl(self, ctx: HandlerContext) -> None:
        if self.tracking_uri:
            self.mlflow.set_tracking_uri(self.tracking_uri)
        self.mlflow.set_experiment(self.experiment or f"automl-{ctx.run_id}")

    def end_job(self, ctx: HandlerContext) -> None:
        job: JobInfo = ctx.job
        view = ctx.view.jobs.get(job.job_id)
        with self.mlflow.start_run(run_name=job.name):
            self.mlflow.set_tags({"automl.run_id": ctx.run_id, "automl.job": job.name, "automl.worker": job.worker,
                                  "automl.trial": str(job.trial_id), "automl.status": job.status})
            self.mlflow.log_params({name: json.dumps(value) if not isinstance(value, (int, float, str)) else value
                                    for name, value in job.values.items()})
            for epoch, values in sorted((view.epochs if view else {}).items()):
                if epoch <= job.start_epoch:
                    continue
                numbers = {k: float(v) for k, v in values.items()
                           if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)}
                if numbers:
                    self.mlflow.log_metrics(numbers, step=epoch)
            if job.score is not None:
                self.mlflow.log_metric(f"score_{ctx.metric}", job.score)
