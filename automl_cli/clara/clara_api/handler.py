"""`automl.components.handlers.handler` as Clara Train 4.x code imports it: the Handler a
user's handler subclasses, every method a no-op to override.

The engine calls `startup(ctx)` first, then `handle_event(event, ctx)` for each event (the
default dispatches to the method of that name: start_automl, search_space_available,
recommendations_available, start_job, end_job, round_ended, end_automl), and
`shutdown(ctx)` last. Run-level events get the run's main `automl.defs.Context`; start_job
and end_job get the job's own Context (a child of the main one, the same object for both
events of a job). See `automl.defs.ContextKey` for the props.
"""
from __future__ import annotations

from typing import Any

from .defs import Context

EVENTS = ("start_automl", "search_space_available", "recommendations_available", "start_job", "end_job",
          "round_ended", "end_automl")


class Handler:
    """Base of a handler written against Clara's API."""

    def handle_event(self, event: str, ctx: Context) -> Any:
        method = getattr(self, event, None)
        if callable(method):
            return method(ctx)
        return None

    def startup(self, ctx: Context) -> None:
        pass

    def shutdown(self, ctx: Context) -> None:
        pass

    def start_automl(self, ctx: Context) -> None:
        pass

    def search_space_available(self, ctx: Context) -> None:
        pass

    def recommendations_available(self, ctx: Context) -> None:
        pass

    def start_job(self, ctx: Context) -> None:
        pass

    def end_job(self, ctx: Context) -> None:
        pass

    def round_ended(self, ctx: Context) -> None:
        pass

    def end_automl(self, ctx: Context) -> None:
        pass
