"""Hyperband with early stopping: a job whose metric is worse than a threshold, once its
trial has trained at least a minimum number of epochs, is stopped mid-stage; its worker
goes to the next job at once and the trial is never promoted. Where the rungs below an
epoch have been found to rank unlike the top (schedulers/fidelity.py), no job is stopped
before it."""
from __future__ import annotations

from ..base import CONTINUE, stop_because
from .hyperband import SuccessiveHalving


class EarlyStoppingHyperband(SuccessiveHalving):
    def on_metrics(self, trial_id: int, job_id: int, epoch: int, loss: float) -> str:
        super().on_metrics(trial_id, job_id, epoch, loss)
        threshold = self.params["automl_early_stop_threshold"]
        # no stop before the first rung whose ranking predicts the top rung's (fidelity.py):
        # where early epochs mislead, a slow learner above the threshold may end best
        if epoch < self.fidelity.first_trusted():
            return CONTINUE
        if epoch >= self.params["automl_min_early_stop_epochs"] and loss > self.loss_of(threshold):
            metric = self.loss_of(loss)  # the same negation turns a loss back into the metric
            return stop_because(f"metric {metric:.4g} worse than the threshold {threshold:g} at epoch {epoch}")
        return CONTINUE
