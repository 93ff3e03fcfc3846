"""Search algorithms on two axes: schedulers/ (when to run what: full trainings, Hyperband
brackets, ASHA, PBT's population) and proposers/ (which configuration next: random, grid,
GP, KDE, DE, the reinforcement policy). catalogue.py names every preset and valid pair
(light: no numpy); presets.py makes their classes; base.py holds the Algorithm contract."""


def load_all() -> None:
    """Every preset into `REGISTRY`."""
    from .presets import load_all as load

    load()


def get_algorithm(name: str):
    """The class of a preset or a SCHEDULER+PROPOSER pair (see base.get_algorithm)."""
    from .base import get_algorithm as get

    return get(name)


def __getattr__(name: str):
    # REGISTRY lives in base.py, which needs numpy: loaded only when asked for, so that the
    # catalogue can be imported without it
    if name == "REGISTRY":
        from .base import REGISTRY

        return REGISTRY
    raise AttributeError(name)
