"""The proposer contract: which configuration to try next.

A proposer is bound to the search space, the algorithm's parameters and the scheduler's
seeded generator (it draws from nothing else, so a replayed journal proposes alike). The
scheduler asks `propose(epochs, pending)` whenever it needs a new configuration, as a
worker takes the job (so a model sees every result known at that moment), and tells
`observe(result)` for every result at a budget, failures included (`loss` None). A
proposer keeps only state it rebuilds by hearing the same calls again.

A multi-fidelity scheduler (Hyperband, ASHA) hands results at several budgets; a model
proposer models the largest budget with enough results, as BOHB does. A proposer that
`takes_part_in_promotion` (DE) is also asked which trials run a bracket's higher rungs
(`promote`, `fill`), and only bracket schedulers take it (catalogue.VALID says which pairs
are valid).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..params import ParamSpec

if TYPE_CHECKING:
    import numpy as np

    from ...space import SearchSpace


@dataclass(frozen=True)
class Result:
    """One job's result, as a proposer hears it."""

    trial_id: int
    params: dict[str, Any]
    epochs: int  # the budget it was run at (its rung's epochs; a full training's epochs)
    loss: float | None  # None: the job failed (full trainings: or did not complete)
    status: str  # "completed" | "failed" | "stopped"
    rung: Any = None  # a bracket scheduler's Rung (DE keys its populations by the rung's resource)


class Proposer:
    """Base of every proposer. Subclasses set `name` and `parameters` (from catalogue.py)."""

    name: ClassVar[str]
    parameters: ClassVar[dict[str, ParamSpec]] = {}
    can_adopt: ClassVar[bool] = True  # `adopt` works: a rebuilt run can hand it trials it did not propose
    batch: ClassVar[bool] = False  # chooses several configurations together (`propose_batch`)
    takes_part_in_promotion: ClassVar[bool] = False

    @property
    def takes_start(self) -> bool:
        """Whether a run may start with the config's own values (False: the configurations
        are fixed in advance and the config's own is not among them, e.g. a grid)."""
        return True

    def __init__(self, space: SearchSpace, rng: np.random.Generator, params: dict[str, Any], *,
                 algorithm: str, max_epochs: int, planned: int | None = None):
        """`params` are the algorithm's resolved parameters (the proposer reads its own);
        `algorithm` names the algorithm in messages; `planned` is how many configurations
        the scheduler will ask for when it knows (None: no fixed number)."""
        self.space = space
        self.rng = rng
        self.params = params
        self.algorithm = algorithm
        self.max_epochs = max_epochs
        self.planned = planned

    def propose(self, epochs: int, pending: list[dict[str, Any]], bracket=None) -> tuple[dict[str, Any], str]:
        """A new configuration to train to `epochs`, and why (for the trace). `pending`: the
        configurations of jobs still running; `bracket`: the bracket it opens, for a bracket
        scheduler."""
        raise NotImplementedError

    def propose_batch(self, count: int, epochs: int, pending: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        """`count` configurations chosen together (only for a proposer with `batch`)."""
        raise NotImplementedError

    def ready(self, bracket) -> bool:
        """Whether a bracket scheduler's `bracket` would start well now (False: its first
        configurations would be blind, and a later bracket may go first)."""
        return True

    def added(self, trial_id: int, params: dict[str, Any]) -> None:
        """The scheduler made trial `trial_id` from the configuration just proposed."""

    def observe(self, result: Result) -> None:
        """A job's result at its budget."""

    def adopt(self, trial_id: int, params: dict[str, Any]) -> None:
        """A trial of a rebuilt run (`--resume --rebuild`) that this proposer did not propose:
        it takes that trial's turn (e.g. a Sobol point), and its result will be observed."""

    def budget(self) -> int | None:
        """How many configurations a full-trainings search runs, for a proposer that decides
        it (a grid's size, Clara's max_rounds); None leaves it to the scheduler."""
        return None

    def explain(self) -> list[str]:
        """Lines for the trace at the start of a run: how the proposer read its parameters."""
        return []
