"""Runs a controller and handlers written against Clara's API under our engine.

- `SpaceMap`: our SearchSpace as Clara's (`targets` by PRL), and values both ways: our
  values (by parameter name; an enum's value is its choice, a list) to Clara's
  `SearchResult.values` (by PRL; an enum's value is its choice's index) and back.
- `ClaraControllerAlgorithm`: our ControllerAlgorithm around a Clara controller: it calls
  `set_search_space(space, ctx)`, `initial_recommendation(ctx)` and
  `refine_recommendation(outcome, ctx)` with Clara's objects and turns the
  `Recommendation(rec_id, SearchResult(space, values))` it returns into our recommendations.
- `ClaraHandlerAdapter`: our handler contract around a Clara handler: each event of ours
  calls its method (through `handle_event`) with a Context holding Clara's props.
- `ClaraLink`: what one run's Clara components share: the main Context, the space map, the
  engine's stop request, and the controller (for the recommendation ids handlers see).
- `ControllerBridge`: a handler of ours, added to the run's handlers when the controller is
  Clara's, that hands the engine's stop request to the link and shuts the controller down.

`ctx.stop_work(issuer, msg)` maps to our stop request (no new job starts, running jobs end).
From the controller (or while one of its methods runs) it also ends the controller's search:
it is called no more and its queued recommendations are dropped, so a resumed run that
replays the same calls stops at the same place.
"""
from __future__ import annotations

import json
import math
import numbers
import random
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from ...errors import SearchFailed
from ...space import Param
from ...space import SearchSpace as OurSpace
from ..controller import ControllerAlgorithm, JobOutcome
from ..handler import HandlerContext
from .defs import Context, ContextKey, Outcome, Recommendation, SearchRange, SearchResult, SearchSpace, Status


def prl(p: Param) -> str:
    """A parameter's key in Clara's search space: `<domain>.<type>:<name>` (a bool is an enum)."""
    kind = "enum" if p.is_choice else p.kind
    return f"{p.domain}.{kind}:{p.name}"


class SpaceMap:
    """Our search space seen as Clara's, and values converted both ways."""

    def __init__(self, space: OurSpace, name: str = "config_train"):
        self.space = space
        self.params: dict[str, Param] = {prl(p): p for p in space.params}
        self.prl_of = {p.name: key for key, p in self.params.items()}
        targets = {}
        for key, p in self.params.items():
            if p.is_choice:
                targets[key] = [SearchRange(i, i, choice=list(c)) for i, c in enumerate(p.choices)]
            else:
                targets[key] = [SearchRange(p.low, p.high)]
        self.clara = SearchSpace(name, targets)

    def to_clara(self, values: dict[str, Any]) -> dict[str, Any]:
        """Our values as SearchResult.values: {PRL: number, or an enum's choice index};
        a parameter whose condition does not hold is left out."""
        out = {}
        for key, p in self.params.items():
            value = values.get(p.name)
            if value is not None:
                out[key] = p.choice_index(value) if p.is_choice else value
        return out

    def concrete(self, values: dict[str, Any]) -> dict[str, list]:
        """ContextKey.CONCRETE_SEARCH_VALUE: {PRL: [the value each arg receives]}."""
        return {key: p.slot_values(values[p.name]) for key, p in self.params.items()
                if values.get(p.name) is not None}

    def result(self, values: dict[str, Any]) -> SearchResult:
        return SearchResult(self.clara, self.to_clara(values))

    def from_clara(self, given: Any, where: str) -> dict[str, Any]:
        """SearchResult.values as our values, every value checked against its target."""
        if not isinstance(given, dict):
            raise SearchFailed(f"{where}: SearchResult.values must be a dict {{PRL: value}}, got "
                               f"{type(given).__name__}")
        unknown = [key for key in given if key not in self.params]
        if unknown:
            raise SearchFailed(f"{where}: {', '.join(map(repr, unknown))} is not a key of the search space's targets "
                               f"({', '.join(self.params)})")
        values: dict[str, Any] = {}
        for key, p in self.params.items():
            value = given.get(key)
            values[p.name] = None if value is None else self._ours(p, key, value, where)
        for key, p in self.params.items():
            if not p.active(values):
                values[p.name] = None  # Clara's API has no conditions: a value for an inactive parameter is dropped
            elif values[p.name] is None:
                extra = " (an int parameter: give it a whole number in its range)" if p.kind == "int" else ""
                raise SearchFailed(f"{where}: SearchResult.values has no value for {key}{extra}")
        return values

    @staticmethod
    def _ours(p: Param, key: str, value: Any, where: str) -> Any:
        if p.is_choice:
            n = len(p.choices)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < n:
                raise SearchFailed(f"{where}: {key} takes the index of one of its {n} choices (0 to {n - 1}), "
                                   f"got {value!r}")
            return list(p.choices[int(value)])
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            raise SearchFailed(f"{where}: {key} takes a number in [{p.low:g}, {p.high:g}], got {value!r}")
        if not p.low <= value <= p.high:
            raise SearchFailed(f"{where}: {key} = {value!r} is outside its range [{p.low:g}, {p.high:g}]")
        if p.kind == "int":
            if int(value) != value:
                raise SearchFailed(f"{where}: {key} takes a whole number in [{p.low:g}, {p.high:g}], got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if p.step:  # our "step" extension: onto the grid the config asks for
            value = p.from_unit(p.to_unit(value))
        return value


class ClaraLink:
    """What one run's Clara components share: the main Context (the controller's ctx, and
    the one run-level handler events get), the space map, the engine's stop request and
    the controller."""

    def __init__(self) -> None:
        self.main = Context()
        self.main._on_stop = self.stop
        self.main._on_exception = self._exception
        self.maps: dict[int, SpaceMap] = {}
        self.controller: ClaraControllerAlgorithm | None = None
        self.request_stop: Callable[[str], bool] | None = None  # the engine's, once the run has started
        self.log: Callable[..., None] | None = None

    def space_map(self, space: OurSpace) -> SpaceMap:
        if id(space) not in self.maps:
            self.maps[id(space)] = SpaceMap(space)
        return self.maps[id(space)]

    def attach(self, ctx: HandlerContext) -> SpaceMap:
        """Take the run's stop request and log from an event's context; fill the run's props."""
        self.request_stop, self.log = ctx.request_stop, ctx.log
        space = self.space_map(ctx.space)
        main = self.main
        main.set_prop(ContextKey.SEARCH_SPACE, space.clara)
        main.set_prop(ContextKey.RUN_ID, ctx.run_id)
        main.set_prop(ContextKey.RUN_ROOT, str(ctx.run_dir))
        main.set_prop(ContextKey.MMAR_ROOT, str(ctx.mmar_root))
        main.set_prop(ContextKey.HANDLER_CONTEXT, ctx)
        return space

    def recommendation(self, trial_id: int, values: dict[str, Any], space: SpaceMap) -> Recommendation:
        """The Recommendation a trial runs: the controller's own object when the controller is
        Clara's, else one made from our values (rec_id: the trial's number)."""
        if self.controller is not None and 0 < trial_id <= len(self.controller.recs):
            return self.controller.recs[trial_id - 1]
        return Recommendation(trial_id, space.result(values))

    def score(self, metric: float | None, direction: str) -> float:
        """Clara's score: higher is better; FAILED_SCORE for a job without a result."""
        if metric is None:
            return Outcome.FAILED_SCORE
        return metric if direction == "maximize" else -metric

    def stop(self, issuer: Any, msg: str) -> None:
        controller = self.controller
        if controller is not None and (controller.in_call or issuer is controller.controller):
            controller.stop(msg)
            reason = f"controller {controller.name} asked to stop: {msg}"
        else:
            reason = f"{type(issuer).__name__} asked to stop: {msg}"
        if self.request_stop is not None:  # None while a resumed run replays its controller
            self.request_stop(reason)

    def _exception(self, issuer: Any, msg: str | None) -> None:
        if self.log is not None:
            self.log(f"{type(issuer).__name__} reported an exception: {msg or '(no message)'}", level="ERROR")


class ClaraControllerAlgorithm(ControllerAlgorithm):
    """A controller written against Clara's API, run as our ControllerAlgorithm.

    The k-th recommendation it returned is trial k; its Outcome carries that
    recommendation's rec_id. The global `random` and `numpy.random` generators are the
    controller's own while it runs (seeded from the run's seed, kept between calls), so a
    controller drawing from them, as Clara's examples do, replays on --resume."""

    def __init__(self, space: OurSpace, *, controller: Any, path: str, max_epochs: int, seed: int = 0,
                 params: dict[str, Any] | None = None, direction: str = "minimize", link: ClaraLink | None = None):
        super().__init__(space, controller=controller, path=path, max_epochs=max_epochs, seed=seed, params=params,
                         direction=direction)
        self.link = link or ClaraLink()
        self.link.controller = self
        self.map = self.link.space_map(space)
        self.recs: list[Recommendation] = []  # the k-th accepted is trial k
        self.stopped: str | None = None
        self.in_call = False
        self._finishing: int | None = None
        self._py_state = random.Random(seed).getstate()
        self._np_state = np.random.RandomState(seed % 2 ** 32).get_state()

    # -- the Algorithm contract ------------------------------------------------------------
    def suggest(self, free_slots: int):
        if self.stopped is not None:
            self.started = True
            return []
        return super().suggest(free_slots)

    def on_finished(self, outcome) -> None:
        values = self.running.get(outcome.trial_id)
        job = self.view.jobs.get(outcome.job_id) if self.view is not None else None
        if job is not None and values is not None and _dumps(job.params) != _dumps(values):
            from ...engine import ResumeMismatch
            raise ResumeMismatch(f"controller {self.name} does not replay: trial {outcome.trial_id} ran {job.params} "
                                 f"in {job.name}, but the controller now proposes {values} (it must decide the same "
                                 "given the same calls: draw randomness from random, numpy.random or the run's seed)")
        self._finishing = outcome.trial_id
        try:
            super().on_finished(outcome)
        finally:
            self._finishing = None

    def is_done(self) -> bool:
        return self.stopped is not None or super().is_done()

    def explain(self) -> list[str]:
        return [f"controller {self.name} written against Clara's API (automl.defs): search space targets "
                + ", ".join(self.map.params)]

    # -- Clara's side ----------------------------------------------------------------------
    def stop(self, message: str) -> None:
        """stop_work: the controller is called no more; queued recommendations are dropped."""
        if self.stopped is None:
            self.stopped = message or "stop_work"
        self.queue.clear()
        self._pending()

    def shutdown(self) -> None:
        function = getattr(self.controller, "shutdown", None)
        if callable(function):
            with self._own_random():
                function(self.link.main)

    def _call(self, method: str, *args: Any) -> Any:
        if self.stopped is not None:
            return None
        main = self.link.main
        if method == "set_search_space":
            main.set_prop(ContextKey.SEARCH_SPACE, self.map.clara)
            args = (self.map.clara, main)
        elif method == "initial_recommendation":
            args = (main,)
        elif method == "refine_recommendation":
            args = (self._outcome(args[0]), main)
        with self._own_random():
            self.in_call = True
            try:
                result = super()._call(method, *args)
            finally:
                self.in_call = False
        if method == "set_search_space" or self.stopped is not None:
            return None  # after stop_work, what the call returned is dropped
        return self._ours(result, method)

    def _outcome(self, o: JobOutcome) -> Outcome:
        trial = self._finishing
        rec = self.recs[trial - 1] if trial is not None and 0 < trial <= len(self.recs) else None
        return Outcome(rec.rec_id if rec is not None else trial, self.link.score(o.score, self.direction),
                       job_name=o.name, status=o.status, recommendation=rec, metric=o.score, epochs=o.epochs,
                       cause=o.cause, job_id=o.job_id)

    def _ours(self, returned: Any, method: str) -> list[dict[str, Any]]:
        if returned is None:
            return []
        if not isinstance(returned, (list, tuple)):
            raise SearchFailed(f"controller {self.name}.{method} returned {type(returned).__name__}: expected a list "
                               "of automl.defs.Recommendation")
        out = []
        for number, rec in enumerate(returned, 1):
            where = f"controller {self.name}.{method} recommendation {number}"
            values = getattr(getattr(rec, "result", None), "values", None)
            if not hasattr(rec, "rec_id") or values is None:
                raise SearchFailed(f"{where}: expected automl.defs.Recommendation(rec_id, SearchResult(space, "
                                   f"values)), got {type(rec).__name__}")
            out.append(self.map.from_clara(values, where))
            self.recs.append(rec)
        return out

    @contextmanager
    def _own_random(self) -> Iterator[None]:
        outer_py, outer_np = random.getstate(), np.random.get_state()
        random.setstate(self._py_state)
        np.random.set_state(self._np_state)
        try:
            yield
        finally:
            self._py_state, self._np_state = random.getstate(), np.random.get_state()
            random.setstate(outer_py)
            np.random.set_state(outer_np)


def _dumps(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


class ControllerBridge:
    """Our handler, added to the run's handlers for a Clara controller: gives the link the
    engine's stop request at the start and calls the controller's shutdown at the end."""

    def __init__(self, algorithm: ClaraControllerAlgorithm):
        self.algorithm = algorithm

    def start_automl(self, ctx: HandlerContext) -> None:
        self.algorithm.link.attach(ctx)

    def end_automl(self, ctx: HandlerContext) -> None:
        self.algorithm.shutdown()


class ClaraHandlerAdapter:
    """Our handler contract around a handler written against Clara's API: `startup` at the
    start, each event through `handle_event` (or the method of its name), `shutdown` at
    the end. Run-level events get the link's main Context; a job's events get the job's
    own Context, a child of the main one."""

    def __init__(self, handler: Any, label: str, link: ClaraLink):
        self.handler = handler
        self.label = label
        self.link = link
        self.jobs: dict[str, Context] = {}  # job folder -> its Context, from start_job to end_job

    def _dispatch(self, event: str, cctx: Context) -> None:
        handle = getattr(self.handler, "handle_event", None)
        if callable(handle):
            handle(event, cctx)
            return
        method = getattr(self.handler, event, None)
        if callable(method):
            method(cctx)

    def _lifecycle(self, name: str) -> None:
        method = getattr(self.handler, name, None)
        if callable(method):
            method(self.link.main)

    def start_automl(self, ctx: HandlerContext) -> None:
        self.link.attach(ctx)
        self._lifecycle("startup")
        self._dispatch("start_automl", self.link.main)

    def search_space_available(self, ctx: HandlerContext) -> None:
        self.link.attach(ctx)
        self._dispatch("search_space_available", self.link.main)

    def recommendations_available(self, ctx: HandlerContext) -> None:
        space = self.link.attach(ctx)
        self.link.main.set_prop(ContextKey.RECOMMENDATIONS,
                                [self.link.recommendation(r.trial_id, r.values, space) for r in ctx.recommendations])
        self.link.main.set_prop(ContextKey.ROUND, ctx.round)
        self._dispatch("recommendations_available", self.link.main)

    def _job_context(self, ctx: HandlerContext, space: SpaceMap) -> Context:
        job = ctx.job
        cctx = self.jobs.get(job.name) or Context(self.link.main)
        cctx.set_prop(ContextKey.JOB_NAME, job.name)
        cctx.set_prop(ContextKey.JOB_MMAR_ROOT, str(job.directory))
        cctx.set_prop(ContextKey.RECOMMENDATION, self.link.recommendation(job.trial_id, job.values, space))
        cctx.set_prop(ContextKey.CONCRETE_SEARCH_VALUE, space.concrete(job.values))
        cctx.set_prop(ContextKey.ROUND, job.round)
        cctx.set_prop(ContextKey.HANDLER_CONTEXT, ctx)
        return cctx

    def start_job(self, ctx: HandlerContext) -> None:
        space = self.link.attach(ctx)
        cctx = self._job_context(ctx, space)
        cctx.set_prop(ContextKey.JOB_STATUS, Status.RUNNING)
        self.jobs[ctx.job.name] = cctx
        self._dispatch("start_job", cctx)

    def end_job(self, ctx: HandlerContext) -> None:
        space = self.link.attach(ctx)
        cctx = self._job_context(ctx, space)
        self.jobs.pop(ctx.job.name, None)
        cctx.set_prop(ContextKey.JOB_STATUS, ctx.job.status)
        cctx.set_prop(ContextKey.SCORE, self.link.score(ctx.job.score, ctx.direction))
        self._dispatch("end_job", cctx)

    def round_ended(self, ctx: HandlerContext) -> None:
        self.link.attach(ctx)
        self.link.main.set_prop(ContextKey.ROUND, ctx.round)
        self._dispatch("round_ended", self.link.main)

    def end_automl(self, ctx: HandlerContext) -> None:
        self.link.attach(ctx)
        self.link.main.set_prop(ContextKey.AUTOML_STATUS, ctx.status)
        self.link.main.set_prop(ContextKey.AUTOML_MESSAGE, ctx.message)
        try:
            self._dispatch("end_automl", self.link.main)
        finally:
            self._lifecycle("shutdown")
