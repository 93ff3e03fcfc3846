"""`automl.defs` as Clara Train 4.x code imports it: Context, ContextKey, SearchRange,
SearchSpace, SearchResult, Recommendation, Outcome, Status.

These are the shapes a user's controller and handler see; the adapters (adapters.py) build
them from our search space, jobs and events and read recommendations back from them.

- `SearchSpace(name, targets)`: `targets` maps a PRL (parameter range locator, a string
  `"<domain>.<type>:<parameter>"`, e.g. `"lr.float:Adam.lr"`, `"net.enum:SegResNet.blocks"`)
  to a list of `SearchRange`: one `[min, max]` range for a float (or int), one range per
  choice for an enum (`min == max ==` the choice's index; `.choice` holds its values).
- `SearchResult(space, values)`: `values` maps a PRL to the value drawn: a number for a
  float, the index of the chosen choice for an enum.
- `Recommendation(rec_id, result)`, `Outcome(recommendation_id, score, ...)`.
- `Context(parent=None)`: `get_prop` / `set_prop` (a child sees its parent's props),
  `stop_work(issuer, msg)`, `stop_work_asked()`, `get_stop_message()`,
  `exception_occurred(issuer, msg)`.
"""
from __future__ import annotations

from typing import Any, Callable

_MISSING = object()


class ContextKey:
    """Names of the props the engine puts in a Context. `_recommendations` and `_jobName` are
    the strings Clara's own examples read; the others follow their pattern."""

    SEARCH_SPACE = "_searchSpace"  # the SearchSpace
    RECOMMENDATIONS = "_recommendations"  # the latest round's list of Recommendation
    RECOMMENDATION = "_recommendation"  # job events: the job's own Recommendation
    JOB_NAME = "_jobName"  # job events: the job folder's name, e.g. W1_1_J3
    JOB_STATUS = "_jobStatus"  # job events: a Status value
    CONCRETE_SEARCH_VALUE = "_concreteSearchValue"  # job events: {PRL: [one value per arg]}
    SCORE = "_score"  # end_job: the job's score (higher is better; see Outcome)
    JOB_MMAR_ROOT = "job_mmar_root"  # job events: the job's folder (Clara's executor's key)
    ROUND = "_round"  # recommendations_available / round_ended / job events: the round's number
    RUN_ID = "_runId"
    RUN_ROOT = "_runRoot"  # the run folder: trace.log, journal.db, the job folders, best/
    MMAR_ROOT = "_mmarRoot"
    AUTOML_STATUS = "_automlStatus"  # end_automl: "completed" | "failed" | "interrupted"
    AUTOML_MESSAGE = "_automlMessage"  # end_automl: the run's closing message
    HANDLER_CONTEXT = "_handlerContext"  # our HandlerContext of the event (automl_cli.clara)


class Status:
    """How a job ended (ContextKey.JOB_STATUS, Outcome.status)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"  # stopped early (by the algorithm, a user, or a NaN metric)
    RETRIED = "retried"  # crashed and will run again
    INTERRUPTED = "interrupted"  # the run was interrupted; --resume runs it again


class SearchRange:
    """One range of a target: `[min, max]`; an enum's choice is the point `[i, i]`."""

    def __init__(self, minv: Any, maxv: Any = None, choice: list | None = None):
        self.min = minv
        self.max = minv if maxv is None else maxv
        self.choice = choice  # an enum's choice: its values, one per arg

    def __repr__(self) -> str:
        extra = f", choice={self.choice!r}" if self.choice is not None else ""
        return f"SearchRange({self.min!r}, {self.max!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SearchRange) and (self.min, self.max, self.choice)
                == (other.min, other.max, other.choice))


class SearchSpace:
    """`targets`: {PRL: [SearchRange, ...]} in the order of the training config's searches."""

    def __init__(self, name: str, targets: dict[str, list[SearchRange]]):
        self.name = name
        self.targets = targets

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, {self.targets!r})"


class SearchResult:
    """A point of `space`: `values` is {PRL: a float's number, or an enum's choice index}."""

    def __init__(self, space: SearchSpace, values: dict[str, Any]):
        self.space = space
        self.values = values

    def dump(self) -> None:
        for key, value in self.values.items():
            print(f"{key}: {value!r}")

    def __repr__(self) -> str:
        return f"SearchResult({self.values!r})"


class Recommendation:
    """What a controller proposes: `rec_id` is the controller's own (Outcome.recommendation_id
    gives it back), `result` a SearchResult."""

    def __init__(self, rec_id: Any, result: SearchResult):
        self.rec_id = rec_id
        self.result = result

    def __repr__(self) -> str:
        return f"Recommendation({self.rec_id!r}, {self.result!r})"


class Outcome:
    """How the job of a recommendation ended, for refine_recommendation.

    `score` is higher-is-better, as Clara's controllers expect: the run's metric when it is
    maximised, its negative when it is minimised (`metric` holds it as measured), and
    FAILED_SCORE when the job produced no result (`status` says why)."""

    FAILED_SCORE = -1000000.0  # Clara's score of a job without a result

    def __init__(self, recommendation_id: Any, score: float, *, job_name: str = "", status: str = Status.COMPLETED,
                 recommendation: Recommendation | None = None, metric: float | None = None, epochs: int = 0,
                 cause: str = "", job_id: int | None = None):
        self.recommendation_id = recommendation_id
        self.score = score
        self.job_name = job_name
        self.status = status
        self.recommendation = recommendation
        self.metric = metric
        self.epochs = epochs
        self.cause = cause
        self.job_id = job_id

    def __repr__(self) -> str:
        return (f"Outcome(recommendation_id={self.recommendation_id!r}, score={self.score!r}, "
                f"job_name={self.job_name!r}, status={self.status!r})")


class Context:
    """Props shared across components. A child Context (`Context(parent)`) sees its parent's
    props unless it sets its own; `stop_work` asks the engine to finish the search (running
    jobs end, no new one starts)."""

    def __init__(self, parent: Context | None = None):
        self.parent = parent
        self._props: dict[str, Any] = {}
        self._stop_message: str | None = None
        self._on_stop: Callable[[Any, str], None] | None = None  # set by the adapters
        self._on_exception: Callable[[Any, str | None], None] | None = None

    def get_prop(self, key: str, default: Any = None) -> Any:
        value = self._props.get(key, _MISSING)
        if value is not _MISSING:
            return value
        return self.parent.get_prop(key, default) if self.parent is not None else default

    def set_prop(self, key: str, value: Any) -> None:
        self._props[key] = value

    def stop_work(self, issuer: Any, msg: str = "") -> None:
        self._stop_message = str(msg)
        context: Context | None = self
        while context is not None:
            if context._on_stop is not None:
                context._stop_message = str(msg)
                context._on_stop(issuer, str(msg))
                return
            context = context.parent

    def stop_work_asked(self) -> bool:
        context: Context | None = self
        while context is not None:
            if context._stop_message is not None:
                return True
            context = context.parent
        return False

    def get_stop_message(self) -> str | None:
        context: Context | None = self
        while context is not None:
            if context._stop_message is not None:
                return context._stop_message
            context = context.parent
        return None

    def exception_occurred(self, issuer: Any, msg: str | None = None) -> None:
        context: Context | None = self
        while context is not None:
            if context._on_exception is not None:
                context._on_exception(issuer, msg)
                return
            context = context.parent
