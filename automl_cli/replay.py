"""Resume's replay: a run rebuilt from its journal.

The view is rebuilt by applying every event, the algorithm by hearing the same calls in
the same order (so it makes the decisions it would have made), and the jobs the journal
saw start but not end are sorted into those to start again, those still with the backend
(re-attached) and those the run had asked to stop. The journal format is the engine's;
this module only reads it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .algorithms.base import Algorithm, JobRequest, Outcome
from .backends.base import Backend, Job
from .errors import UsageError
from .outcomes import JobScores
from .status import RunView, format_params
from .store import Event
from .workers import Worker


class ResumeMismatch(UsageError):
    """The journal cannot be replayed with these settings."""


@dataclass
class Replayed:
    """What the engine continues from."""

    requests: dict[int, JobRequest] = field(default_factory=dict)  # job id -> the request it runs
    stop_reason: dict[int, str] = field(default_factory=dict)  # jobs the run had asked to stop -> why
    relaunch: list[Job] = field(default_factory=list)  # jobs to start again first, from their checkpoints
    reattached: list[Job] = field(default_factory=list)  # jobs still with the backend: followed, not started
    stopped_unfinished: list[Job] = field(default_factory=list)  # asked to stop, never ended: they end now
    unstarted: list[JobRequest] = field(default_factory=list)  # asked for, never started: new jobs
    next_job: int = 1
    adopted: int = 0  # trials a rebuilt algorithm adopted


def replay(events: list[Event], *, algorithm: Algorithm, name: str, view: RunView, scores: JobScores,
           workers: list[Worker], backend: Backend, rebuild: bool = False) -> Replayed:
    """Rebuild the run from `events`: `view` and `scores` hear every event, `algorithm`
    (named `name` in messages) its calls again. A replay that the algorithm answers
    differently raises ResumeMismatch.

    With `rebuild` there is no replay: the fresh algorithm adopts each journaled trial as it
    ran (`Algorithm.adopt`) and hears its epochs and its end as usual, so it continues from
    the finished results, approximately. A journal with a run_rebuilt event is read the
    same way up to that event, and replayed after it."""
    by_name = {w.name: w for w in workers}
    out = Replayed()
    running: dict[int, Job] = {}  # jobs started and not ended, as the journal goes
    placed: dict[int, dict[str, Any]] = {}  # job id -> its last job_started event
    pending: list[int] = []  # trials of the last suggest call, waiting for their job_started
    suggested: dict[int, JobRequest] = {}
    adopt_until = len(events) if rebuild else max(
        (i for i, e in enumerate(events) if e.kind == "run_rebuilt"), default=-1)
    if adopt_until >= 0 and not getattr(algorithm, "can_adopt", False):
        raise UsageError(f"{name} cannot be rebuilt from finished results (it keeps state, such as "
                         "brackets or a population, that only an exact replay restores); start another run "
                         "with a new --run-id")
    adopted: set[int] = set()
    for index, event in enumerate(events):
        view.apply(event)
        d = event.data
        if event.kind == "asked":
            if index < adopt_until:
                continue  # no replay: the trials are adopted as they start
            requests = algorithm.suggest(d["free_slots"])
            if [r.trial_id for r in requests] != d["trials"]:
                raise ResumeMismatch(f"its journal does not replay ({name} now proposes trials "
                                     f"{[r.trial_id for r in requests]} where the run had {d['trials']})")
            suggested = {r.trial_id: r for r in requests}
            pending = list(d["trials"])
        elif event.kind == "job_started":
            job_id = d["job_id"]
            if job_id not in out.requests and index < adopt_until:
                request = JobRequest(d["trial_id"], d["params"], d["stop_epoch"], d["start_epoch"],
                                     d.get("note", ""), d.get("bracket"), d.get("rung"), d.get("copy_from_job"))
                if d["trial_id"] not in adopted:
                    algorithm.adopt(request)
                    adopted.add(d["trial_id"])
                out.requests[job_id] = request
            elif job_id not in out.requests:
                request = suggested.pop(d["trial_id"])
                pending.remove(d["trial_id"])
                ran = [d["params"], d["start_epoch"], d["stop_epoch"]]
                if json.loads(json.dumps([request.params, request.start_epoch, request.stop_epoch])) != ran:
                    raise ResumeMismatch(
                        f"its journal does not replay ({name} now proposes "
                        f"{format_params(request.params)}, epochs {request.start_epoch}->{request.stop_epoch} "
                        f"for trial {d['trial_id']}, where the run had {format_params(d['params'])}, epochs "
                        f"{d['start_epoch']}->{d['stop_epoch']})")
                out.requests[job_id] = request
            out.relaunch = [j for j in out.relaunch if j.job_id != job_id]
            placed[job_id] = d
            worker = by_name.get(d["worker"]) or workers[0]
            running[job_id] = Job(job_id, d["name"], d["trial_id"], worker, d["params"], d["start_epoch"],
                                  d["stop_epoch"], d.get("attempt", 1))
            out.next_job = max(out.next_job, job_id + 1)
        elif event.kind == "metrics":
            job_id = d["job_id"]
            loss = scores.add(job_id, d["values"])
            if loss is not None and job_id not in out.stop_reason:
                algorithm.on_metrics(running[job_id].trial_id, job_id, d["epoch"], loss)
        elif event.kind == "stop_requested":
            out.stop_reason[d["job_id"]] = d["reason"]
        elif event.kind == "job_finished":
            job = running.pop(d["job_id"])
            if d["status"] in ("interrupted", "retried"):
                out.relaunch.append(job)
            else:
                algorithm.on_finished(Outcome(job.trial_id, job.job_id, d["status"], d.get("loss"),
                                              d.get("epochs", 0), d.get("cause", "")))
    # jobs the journal saw start but never end (the tool was killed) run again too, except
    # those the run had asked to stop: that stop stands, and they end where they were;
    # asked for but never started (the tool died in between): started as new jobs
    out.unstarted = [suggested[t] for t in pending if t in suggested]
    unfinished = sorted([*out.relaunch, *running.values()], key=lambda j: j.job_id)
    # a job still with the backend (a SLURM job outlives the tool) is followed, not run twice
    out.reattached = [j for j in unfinished if j.job_id in running and backend.reattach(j, placed[j.job_id])]
    unfinished = [j for j in unfinished if j not in out.reattached]
    out.relaunch = [j for j in unfinished if j.job_id not in out.stop_reason]
    out.stopped_unfinished = [j for j in unfinished if j.job_id in out.stop_reason]
    out.adopted = len(adopted)
    return out
