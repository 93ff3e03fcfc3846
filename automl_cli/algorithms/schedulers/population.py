"""Population-based training (Jaderberg et al. 2017), asynchronous.

A population of members trains in segments of `automl_eval_interval` epochs; each segment
is a job that resumes from its member's checkpoint. When a member finishes a segment and a
worker is free, it is ranked at the epoch it reached against the scores every member had at
that same epoch, so nobody is judged against members that have simply trained longer (no
barrier: nobody waits for the slowest member; a member that ranks in the bottom before any
better member has reached its epoch waits for one). A member in the bottom fraction
*exploits* one of the top fraction: its next segment starts from a copy of that donor's
checkpoint at the same epoch (the donor's finished job folder, which nothing deletes) and
*explores* from the donor's hyperparameters of that segment: numbers multiplied or divided
by the perturbation factor (or resampled with a small probability), choices moved to a
neighbour (or resampled), always inside the search space. Parameters of domain `net` (the
architecture) are taken from the donor and never perturbed: the donor's weights must fit
the model. Each member's lineage (whom it copied, when, which values) is in the journal.

Members never jump ahead, so every member trains every segment once: a member at its last
epoch is done, no job trains nothing, and the run makes exactly the jobs `automl plan`
counts (population x segments) unless jobs fail.

The proposer starts each member (random for `pbt`, the only pair: explore perturbs around
the donors itself) and hears each segment's result.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..base import JobRequest, Outcome
from ..proposers.base import Result
from .base import Scheduler


@dataclass
class Member:
    trial_id: int
    params: dict[str, Any]
    epoch: int = 0  # epochs its checkpoint holds
    loss: float | None = None  # after its last segment (None: not scored yet, or failed)
    last_job: int | None = None
    history: list[str] = field(default_factory=list)
    # epoch -> (loss, job, params) of each segment it completed: who was best at an epoch,
    # and the checkpoint and values an exploit at that epoch copies
    at: dict[int, tuple[float, int, dict[str, Any]]] = field(default_factory=dict)


class PopulationBasedTraining(Scheduler):
    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        p = self.params
        self.interval = p["automl_eval_interval"]
        self.total = min(self.max_epochs, self.interval * p["automl_max_generations"])
        self.members: dict[int, Member] = {}
        self.ready: list[int] = []  # members waiting for their next segment, in the order they got ready
        self.running: set[int] = set()
        self.proposer = self.make_proposer(planned=p["automl_population_size"])

    def pending_configs(self) -> list[dict[str, Any]]:
        return [self.members[t].params for t in sorted(self.running)]

    def planned_jobs(self) -> int:
        return self.params["automl_population_size"] * -(-self.total // self.interval)

    def suggest(self, free_slots: int) -> list[JobRequest]:
        jobs = []
        while len(jobs) < free_slots:
            if len(self.members) < self.params["automl_population_size"]:
                params, why = self.propose_new(min(self.total, self.interval), self.pending_configs())
                member = Member(len(self.members) + 1, params)
                self.members[member.trial_id] = member
                self.take(member.trial_id, params)
                jobs.append(self._segment(member, f"new member, {why}"))
            else:
                # a member waiting for a donor to reach its epoch lets the others go first
                going = next((t for t in self.ready if self._choose(self.members[t])[0] != "wait"), None)
                if going is None:
                    break
                self.ready.remove(going)
                jobs.append(self._next(self.members[going]))
            self.running.add(jobs[-1].trial_id)
        return jobs

    def on_finished(self, outcome: Outcome) -> None:
        member = self.members[outcome.trial_id]
        self.running.discard(member.trial_id)
        member.loss = outcome.loss if outcome.status == "completed" else None
        member.epoch = outcome.epochs if outcome.status == "completed" else member.epoch
        member.last_job = outcome.job_id if outcome.status == "completed" else member.last_job
        if outcome.status == "completed" and outcome.loss is not None:
            member.at[member.epoch] = (outcome.loss, outcome.job_id, dict(member.params))
        self.proposer.observe(Result(member.trial_id, dict(member.params), outcome.epochs, member.loss, outcome.status))
        if outcome.status == "completed" and member.epoch < self.total:  # at its last epoch a member is done
            self.ready.append(member.trial_id)

    def is_done(self) -> bool:
        return (len(self.members) == self.params["automl_population_size"] and not self.ready
                and not self.running)

    # -- exploit and explore ---------------------------------------------------------------
    def _choose(self, member: Member) -> tuple[str, list[Member], str]:
        """What the member does next: ("continue" | "exploit" | "wait", donors, rank). It is
        ranked by its score at its epoch against each member's score at that epoch (or, for a
        member not there yet, its latest); in the bottom fraction it copies the checkpoint of
        that epoch of a top member, and waits for one to get there when none has yet. Draws
        nothing: a suggest call that returns nothing changes nothing."""
        epoch = member.epoch
        live = [m for m in self.members.values() if m.loss is not None]  # scored, and not failed since
        score = {m.trial_id: m.at[max((e for e in m.at if e <= epoch), default=min(m.at))][0] for m in live}
        scored = sorted(live, key=lambda m: (score[m.trial_id], m.trial_id))
        cut = max(1, int(len(scored) * self.params["automl_truncation"])) if len(scored) >= 2 else 0
        top, bottom = scored[:cut], scored[-cut:] if cut else []
        rank = f"rank {scored.index(member) + 1} of {len(scored)} at epoch {epoch}"
        if member not in bottom or member in top:
            return "continue", [], rank
        donors = [m for m in top if epoch in m.at]
        if donors:
            return "exploit", donors, rank
        if any(max(m.at) < epoch for m in top):  # a better member gets there (no jumps: each passes every epoch)
            return "wait", [], rank
        return "continue", [], rank

    def _next(self, member: Member) -> JobRequest:
        """The member's next segment: it continues, or exploits a donor and explores."""
        epoch = member.epoch
        action, donors, rank = self._choose(member)
        if action == "exploit":
            donor = donors[int(self.rng.integers(len(donors)))]
            loss, job, values = donor.at[epoch]
            params = self._explore(values)
            changes = ", ".join(f"{k} {values[k]!r}->{v!r}" for k, v in params.items() if v != values[k])
            why = (f"exploit: copies trial {donor.trial_id} (job {job}, epoch {epoch}, loss {loss:.4g}) over its "
                   f"own loss {member.at[epoch][0]:.4g} ({rank}); explore: {changes or 'no change'}")
            member.params = params
            member.history.append(why)
            return self._segment(member, why, copy_from_job=job)
        return self._segment(member, f"continue ({rank})")

    def _segment(self, member: Member, why: str, copy_from_job: int | None = None) -> JobRequest:
        stop = min(self.total, member.epoch + self.interval)
        return JobRequest(member.trial_id, member.params, stop, member.epoch, note=why, copy_from_job=copy_from_job)

    def _explore(self, params: dict[str, Any]) -> dict[str, Any]:
        factor = self.params["automl_perturbation_factor"]
        resample = self.params["automl_resample_probability"]
        out = dict(params)
        for p in self.space.params:
            value = params[p.name]
            if value is None or p.domain == "net":
                continue  # the architecture is the donor's: its weights must fit the model
            if self.rng.random() < resample:
                out[p.name] = p.sample(self.rng)
            elif p.is_choice:
                index = p.choice_index(value) + (1 if self.rng.random() < 0.5 else -1)
                out[p.name] = list(p.choices[min(max(index, 0), len(p.choices) - 1)])
            elif p.low > 0:
                moved = value * factor if self.rng.random() < 0.5 else value / factor
                out[p.name] = p.from_unit(p.to_unit(min(max(moved, p.low), p.high)))
            else:  # a range that reaches zero or below: step by the same share of the range
                shift = (factor - 1.0) * (1 if self.rng.random() < 0.5 else -1)
                out[p.name] = p.from_unit(p.to_unit(value) + shift)
        for p in self.space.params:  # conditions: switch dependants on or off as the values say
            if not p.active(out):
                out[p.name] = None
            elif out[p.name] is None:
                out[p.name] = p.sample(self.rng)
        return out
