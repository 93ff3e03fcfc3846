"""replay.py: a run rebuilt from its journal (stub algorithm and backend: no engine, no process)."""
from __future__ import annotations

import pytest

from automl_cli.algorithms.base import JobRequest
from automl_cli.errors import UsageError
from automl_cli.outcomes import JobScores
from automl_cli.replay import ResumeMismatch, replay
from automl_cli.status import RunView
from automl_cli.store import Event
from automl_cli.workers import Worker

WORKERS = [Worker(1, ()), Worker(2, ())]


class Scripted:
    """Answers suggest() from a script and records every call it hears."""

    can_adopt = True

    def __init__(self, *answers):
        self.answers = list(answers)
        self.heard = []

    def suggest(self, free_slots):
        self.heard.append(("suggest", free_slots))
        return self.answers.pop(0)

    def on_metrics(self, trial, job, epoch, loss):
        self.heard.append(("metrics", job, epoch, loss))
        return "continue"

    def on_finished(self, outcome):
        self.heard.append(("finished", outcome.job_id, outcome.status, outcome.loss))

    def adopt(self, request):
        self.heard.append(("adopt", request.trial_id))


class Keeps:
    """A backend that still has the jobs named (as SLURM keeps jobs the tool lost)."""

    def __init__(self, *job_ids):
        self.job_ids = set(job_ids)

    def reattach(self, job, placed):
        return job.job_id in self.job_ids


def journal(*events):
    return [Event(i + 1, float(i), kind, data) for i, (kind, data) in enumerate(events)]


def started(job_id, trial, x, worker="W1", stop=3, attempt=1):
    return ("job_started", {"job_id": job_id, "name": f"{worker}_{attempt}_J{job_id}", "trial_id": trial,
                            "worker": worker, "gpus": [], "params": {"x": x}, "start_epoch": 0, "stop_epoch": stop,
                            "attempt": attempt})


def metrics(job_id, epoch, acc):
    return ("metrics", {"job_id": job_id, "epoch": epoch, "values": {"epoch": epoch, "acc": acc}})


RUN = ("run_started", {"run_id": "r", "metric": "acc", "direction": "maximize", "workers": []})
ASKED = ("asked", {"free_slots": 2, "trials": [1, 2]})
TWO = [JobRequest(1, {"x": 1}, 3), JobRequest(2, {"x": 2}, 3)]


def do_replay(events, algorithm, backend=Keeps(), rebuild=False):
    scores, view = JobScores("acc", "maximize"), RunView()
    out = replay(events, algorithm=algorithm, name="scripted", view=view, scores=scores, workers=WORKERS,
                 backend=backend, rebuild=rebuild)
    return out, scores, view


def test_the_algorithm_hears_the_same_calls_and_unfinished_jobs_are_sorted():
    events = journal(RUN, ASKED, started(1, 1, 1), started(2, 2, 2, worker="W2"), metrics(1, 1, 0.5),
                     metrics(2, 1, 0.4), ("job_finished", {"job_id": 2, "status": "completed", "loss": -0.4,
                                                           "epochs": 1}),
                     ("asked", {"free_slots": 1, "trials": [3, 4]}), started(3, 3, 3, worker="W2"),
                     ("stop_requested", {"job_id": 3, "reason": "aborted by the user"}))
    algorithm = Scripted(TWO, [JobRequest(3, {"x": 3}, 3), JobRequest(4, {"x": 4}, 3)])
    out, scores, view = do_replay(events, algorithm)
    assert algorithm.heard == [("suggest", 2), ("metrics", 1, 1, -0.5), ("metrics", 2, 1, -0.4),
                               ("finished", 2, "completed", -0.4), ("suggest", 1)]
    assert [j.job_id for j in out.relaunch] == [1]  # running when the tool died: started again
    assert [j.job_id for j in out.stopped_unfinished] == [3]  # asked to stop: that stop stands
    assert [r.trial_id for r in out.unstarted] == [4]  # asked for, never started
    assert out.next_job == 4 and out.stop_reason == {3: "aborted by the user"}
    assert scores.loss_of == {1: -0.5, 2: -0.4} and view.jobs[2].status == "completed"


def test_a_job_the_backend_still_has_is_reattached_not_relaunched():
    events = journal(RUN, ASKED, started(1, 1, 1), started(2, 2, 2, worker="W2"),
                     ("job_finished", {"job_id": 1, "status": "interrupted", "epochs": 0}))
    out, _, _ = do_replay(events, Scripted(TWO), backend=Keeps(1, 2))
    assert [j.job_id for j in out.reattached] == [2]  # job 1 had ended (interrupted): only its checkpoint is left
    assert [j.job_id for j in out.relaunch] == [1]


def test_a_different_answer_is_a_mismatch():
    events = journal(RUN, ASKED, started(1, 1, 1))
    with pytest.raises(ResumeMismatch, match=r"now proposes trials \[1\] where the run had \[1, 2\]"):
        do_replay(events, Scripted([TWO[0]]))
    with pytest.raises(ResumeMismatch, match="now proposes x=9, epochs 0->3 for trial 1, where the run had x=1"):
        do_replay(events, Scripted([JobRequest(1, {"x": 9}, 3), TWO[1]]))


def test_rebuild_adopts_instead_of_replaying():
    events = journal(RUN, ASKED, started(1, 1, 1), metrics(1, 1, 0.5),
                     ("job_finished", {"job_id": 1, "status": "completed", "loss": -0.5, "epochs": 1}))
    algorithm = Scripted()
    out, _, _ = do_replay(events, algorithm, rebuild=True)
    assert algorithm.heard == [("adopt", 1), ("metrics", 1, 1, -0.5), ("finished", 1, "completed", -0.5)]
    assert out.adopted == 1 and out.requests[1].params == {"x": 1}
    algorithm.can_adopt = False
    with pytest.raises(UsageError, match="cannot be rebuilt"):
        do_replay(events, algorithm, rebuild=True)
