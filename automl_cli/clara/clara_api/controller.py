"""`automl.components.controllers.controller` as Clara Train 4.x code imports it: the
abstract Controller a user's controller subclasses.

The engine calls, in this order: `set_search_space(space, ctx)` once, then
`initial_recommendation(ctx)` once, then `refine_recommendation(outcome, ctx)` after each
job ends; the last two return lists of `automl.defs.Recommendation`. `ctx` is the run's main
`automl.defs.Context` (the same object at every call). `ctx.stop_work(self, msg)` ends the
search: no new job starts, running jobs end, the controller is called no more.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from .defs import Context, Outcome, Recommendation, SearchSpace


class Controller(ABC):
    """Base of a controller written against Clara's API."""

    @abstractmethod
    def set_search_space(self, space: SearchSpace, ctx: Context) -> None:
        """Keep the search space; stop_work if it is not acceptable."""

    @abstractmethod
    def initial_recommendation(self, ctx: Context) -> list[Recommendation]:
        """The first recommendations (none: the search ends at once)."""

    @abstractmethod
    def refine_recommendation(self, outcome: Outcome, ctx: Context) -> list[Recommendation]:
        """More recommendations after a job ended (maybe none)."""

    def shutdown(self, ctx: Context) -> Any:
        """Called once when the run ends."""
