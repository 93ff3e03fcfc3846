"""Simulated backend: jobs "train" by calling an objective once per epoch, on a virtual clock.

The engine and the algorithms run unchanged; only time is made up. Each epoch takes the
seconds the objective reports, and the clock jumps from one epoch's end to the next
across all workers, so asynchronous and synchronous algorithms are compared on equal
terms and hours of search take milliseconds.

A trial's `state` dict and its last completed epoch play the part of its checkpoint: a
later job of the same trial continues from them, as a promoted job resumes on disk.
"""
from __future__ import annotations

import copy
import heapq
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable

from .base import Backend, Job, JobExit, MetricsReport

Objective = Callable[[dict, int, dict], "tuple[float, float]"]


@dataclass
class _SimJob:
    job: Job
    config: dict
    epoch: int  # epochs completed by its trial so far
    token: int  # the queued event that is this job's next epoch end


class SimulatedBackend(Backend):
    """`to_config(params)` maps a job's parameters to the config the objective receives."""

    def __init__(self, objective: Objective, metric: str, to_config: Callable[[dict], dict],
                 deadline: float | None = None):
        self.objective = objective
        self.metric = metric
        self.to_config = to_config
        self.deadline = deadline
        self.clock = 0.0
        self.states: dict[int, dict] = {}  # trial_id -> the objective's state for that trial
        self.trial_epoch: dict[int, int] = {}  # trial_id -> last completed epoch ("checkpoint")
        self.jobs: dict[int, _SimJob] = {}
        self.snapshots: dict[int, tuple[dict, int]] = {}  # finished job -> its trial's (state, epoch) then
        self.queue: list[tuple[float, int, int, int, float, float]] = []  # (end, token, job, epoch, metric, secs)
        self.ready: list[MetricsReport | JobExit] = []  # events due now
        self.tokens = itertools.count()

    def now(self) -> float:
        return self.clock

    def idle(self, seconds: float) -> None:
        """Virtual time only moves when an event is due; there is nothing to wait for."""

    def running(self) -> list[int]:
        return list(self.jobs)

    def start(self, job: Job) -> dict[str, Any]:
        if job.copy_from_job is not None:  # exploit: the donor's checkpoint as it was when its job ended
            state, epoch = self.snapshots[job.copy_from_job]
            self.states[job.trial_id], self.trial_epoch[job.trial_id] = copy.deepcopy(state), epoch
        sim = _SimJob(job, self.to_config(job.params), self.trial_epoch.get(job.trial_id, 0), -1)
        self.states.setdefault(job.trial_id, {})
        self.jobs[job.job_id] = sim
        self._next_epoch(sim)
        return {}

    def _next_epoch(self, sim: _SimJob) -> None:
        epoch = sim.epoch + 1
        if epoch > sim.job.stop_epoch:
            del self.jobs[sim.job.job_id]
            self.snapshots[sim.job.job_id] = (copy.deepcopy(self.states[sim.job.trial_id]), sim.epoch)
            self.ready.append(JobExit(sim.job.job_id, 0))
            return
        try:
            metric, seconds = self.objective(sim.config, epoch, self.states[sim.job.trial_id])
            metric, seconds = float(metric), float(seconds)
            if not (math.isfinite(seconds) and seconds >= 0):
                raise ValueError(f"the objective reported {seconds!r} seconds")
        except Exception as exc:  # the objective is user code: its crash is the job's failure
            del self.jobs[sim.job.job_id]
            self.ready.append(JobExit(sim.job.job_id, 1, log_tail=[f"objective raised {type(exc).__name__}: {exc}"]))
            return
        sim.token = next(self.tokens)
        heapq.heappush(self.queue, (self.clock + seconds, sim.token, sim.job.job_id, epoch, metric, seconds))

    def poll(self) -> list[MetricsReport | JobExit]:
        # one epoch end per poll, so jobs that end at the same moment are learnt of one by one,
        # as a real engine sees jobs that never quite end together; except at a hard deadline:
        # there every epoch that ends on it comes in, else the engine, its clock at the budget,
        # would cut all but the first of them
        while self.queue and (not self.ready or self.clock == self.deadline == self.queue[0][0]):
            end, token, job_id, epoch, metric, seconds = self.queue[0]
            if self.deadline is not None and end > self.deadline:
                self.clock = max(self.clock, self.deadline)
                break
            heapq.heappop(self.queue)
            sim = self.jobs.get(job_id)
            if sim is None or sim.token != token:
                continue  # the job was stopped before this epoch ended
            self.clock = end
            sim.epoch = epoch
            self.trial_epoch[sim.job.trial_id] = epoch
            value = metric if math.isfinite(metric) else None
            self.ready.append(MetricsReport(job_id, {"epoch": epoch, self.metric: value, "seconds": seconds}))
            self._next_epoch(sim)
        events, self.ready = self.ready, []
        return events

    def stop(self, job_id: int) -> None:
        if self.jobs.pop(job_id, None) is not None:
            self.ready.append(JobExit(job_id, -15, stop_requested=True))

    def stop_all(self) -> list[MetricsReport | JobExit]:
        for job_id in list(self.jobs):
            self.stop(job_id)
        events, self.ready = self.ready, []
        return events
