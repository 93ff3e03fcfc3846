"""Clara Train 4.x's Python API for a user's own controller and handler, so code written
for Clara (`from automl.defs import ...`, `from automl.components.controllers.controller
import Controller`, `from automl.components.handlers.handler import Handler`) runs
unchanged.

The modules are mounted in sys.modules under Clara's names (`automl`, `automl.defs`,
`automl.components`, `automl.components.controllers`, `automl.components.controllers.controller`,
`automl.components.handlers`, `automl.components.handlers.handler`) only while a user's
module is imported (`mounted()`, used by components.load_class); the entries that were
there before are put back afterwards, so another installed package called `automl` is not
shadowed. The user's module keeps the classes it imported.

A class written against this API is recognised (`is_clara_controller`, `is_clara_handler`)
and run through adapters.py: our search space, jobs and events become Clara's objects, and
its recommendations become ours.
"""
from __future__ import annotations

import sys
import types
from contextlib import contextmanager
from typing import Any, Iterator

from ..controller import Controller as _OurController
from ..handler import Handler as _OurHandler
from . import controller as _controller
from . import defs
from . import handler as _handler
from .controller import Controller
from .defs import Context, ContextKey, Outcome, Recommendation, SearchRange, SearchResult, SearchSpace, Status
from .handler import Handler

# Clara's module names we provide, and what is under them
PROVIDED = {"automl.defs": defs, "automl.components.controllers.controller": _controller,
            "automl.components.handlers.handler": _handler}
_MISSING = object()


def _package(name: str, **children: Any) -> types.ModuleType:
    """A package with no folder behind it: a submodule we do not provide is not found."""
    module = types.ModuleType(name, f"Clara's {name}, as automl_cli provides it (automl_cli.clara.clara_api)")
    module.__path__ = []
    module.__package__ = name
    for key, value in children.items():
        setattr(module, key, value)
    return module


def _shims() -> dict[str, types.ModuleType]:
    controllers = _package("automl.components.controllers", controller=_controller)
    handlers = _package("automl.components.handlers", handler=_handler)
    components = _package("automl.components", controllers=controllers, handlers=handlers)
    automl = _package("automl", defs=defs, components=components)
    return {"automl": automl, "automl.defs": defs, "automl.components": components,
            "automl.components.controllers": controllers, "automl.components.controllers.controller": _controller,
            "automl.components.handlers": handlers, "automl.components.handlers.handler": _handler}


SHIMS = _shims()
_SHIM_MODULES = {defs.__name__, _controller.__name__, _handler.__name__}


@contextmanager
def mounted() -> Iterator[None]:
    """Clara's `automl` modules in sys.modules for the duration; what was there before
    (another `automl` package, or nothing) is put back afterwards."""
    saved = {name: sys.modules.get(name, _MISSING) for name in SHIMS}
    sys.modules.update(SHIMS)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _is_shim(value: Any) -> bool:
    if isinstance(value, types.ModuleType):
        return any(value is module for module in SHIMS.values())
    return isinstance(value, type) and getattr(value, "__module__", None) in _SHIM_MODULES


def uses_clara_api(cls: type) -> bool:
    """Does the module defining `cls` hold anything it imported from Clara's API?"""
    module = sys.modules.get(getattr(cls, "__module__", ""))
    return module is not None and any(_is_shim(value) for value in list(vars(module).values()))


def is_clara_controller(cls: type) -> bool:
    """A controller written against Clara's API: a subclass of Clara's Controller, or (not one
    of ours) from a module that imports Clara's API."""
    if issubclass(cls, Controller):
        return True
    return not issubclass(cls, _OurController) and uses_clara_api(cls)


def is_clara_handler(cls: type) -> bool:
    """A handler written against Clara's API: a subclass of Clara's Handler, or (not one of
    ours) a class with Clara's startup / shutdown / handle_event, or from a module that
    imports Clara's API."""
    if issubclass(cls, Handler):
        return True
    if issubclass(cls, _OurHandler):
        return False
    return uses_clara_api(cls) or any(callable(getattr(cls, m, None)) for m in ("startup", "shutdown", "handle_event"))


__all__ = ["Context", "ContextKey", "Controller", "Handler", "Outcome", "PROVIDED", "Recommendation", "SHIMS",
           "SearchRange", "SearchResult", "SearchSpace", "Status", "is_clara_controller", "is_clara_handler",
           "mounted", "uses_clara_api"]
