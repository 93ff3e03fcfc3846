"""Search algorithms, one file each, registered by name in `base.REGISTRY`."""


def load_all() -> None:
    """Import every algorithm module so each registers itself."""
    from . import (asha, bayesian, bfbo, bohb, dehb, grid, hyperband, hyperband_es, pbt, random,  # noqa: F401
                   reinforcement)


from .base import REGISTRY, get_algorithm  # noqa: E402,F401
