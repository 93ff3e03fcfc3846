"""outcomes.py: how epochs score and how a job's end is classified (no engine, no process)."""
from __future__ import annotations

import pytest

from automl_cli.backends.base import JobExit
from automl_cli.outcomes import JobScores, classify, exit_cause

CLEAN, CRASH, CONFIG, KILLED = JobExit(1, 0), JobExit(1, 1, log_tail=["boom", ""]), JobExit(1, 2), JobExit(1, -9)


def test_scores_are_losses_best_or_last_epoch():
    best = JobScores("acc", "maximize")
    assert [best.add(1, {"epoch": e, "acc": v}) for e, v in ((1, 0.5), (2, 0.7), (3, 0.6))] == [-0.5, -0.7, -0.6]
    assert best.loss_of[1] == -0.7
    last = JobScores("loss", "minimize", mode="last")
    for epoch, value in ((1, 0.5), (2, 0.3), (3, 0.4)):
        last.add(7, {"epoch": epoch, "loss": value})
    assert last.loss_of[7] == 0.4


def test_an_epoch_without_the_metric_is_no_score_and_a_nan_marks_the_job():
    scores = JobScores("acc", "maximize")
    assert scores.add(1, {"epoch": 1, "train_loss": 0.3}) is None and 1 not in scores.nan
    assert scores.add(1, {"epoch": 2, "acc": float("nan")}) is None
    assert scores.add(1, {"epoch": 3, "acc": True}) is None  # a bool is no number
    assert scores.nan[1] == "acc is not a finite number (NaN) at epoch 2"  # the first reason stays


@pytest.mark.parametrize("exit, known, status, cause", [
    (CLEAN, {}, "completed", ""),
    (CLEAN, {"loss": None}, "failed", "the trainer wrote no acc"),
    (CLEAN, {"nan": "acc is NaN"}, "failed", "acc is NaN"),  # before everything: never retried
    (CRASH, {"nan": "acc is NaN"}, "failed", "acc is NaN"),
    (CRASH, {}, "retried", "exit code 1: boom"),
    (CRASH, {"attempt": 2}, "failed", "exit code 1: boom"),  # attempts used up
    (CONFIG, {}, "failed", "exit code 2 (a config error, not retried)"),
    (KILLED, {"hung": "no epoch for 600 s"}, "retried", "no epoch for 600 s"),
    (KILLED, {"hung": "no epoch for 600 s", "attempt": 2}, "failed", "no epoch for 600 s"),
    (KILLED, {"stop_reason": "stopped early by asha"}, "stopped", "stopped early by asha"),
    (KILLED, {"stop_reason": "run interrupted", "interrupted": True}, "interrupted", "run interrupted"),
    (KILLED, {"stop_reason": "run interrupted", "interrupted": True, "hung": "x"}, "interrupted", "run interrupted"),
])
def test_classify(exit, known, status, cause):
    options = {"loss": -0.7, **known}
    ending = classify(exit, metric="acc", max_retries=1, **options)
    assert (ending.status, ending.cause) == (status, cause)
    # the algorithm hears a score only from a job that did not fail (an interrupted one keeps it for the resume)
    assert ending.loss == (None if status in ("failed", "retried") else options["loss"])


def test_exit_cause_names_the_signal_and_the_logs_last_line():
    assert exit_cause(JobExit(1, -9, log_tail=["a", "last words  ", "  "])) == "killed by SIGKILL: last words"
    assert exit_cause(JobExit(1, -200)) == "killed by signal 200"
