"""config_automl.json's components: the controller, the executor and the handlers, each
`{"name": ..., "args": {...}}` (a component of ours, or Clara's name for it) or
`{"path": "module.Class", "args": {...}}` (a user's class, from the MMAR's custom/ folder or
the Python path). Every mistake is a ConfigError naming the file and the JSON path."""
from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from ..algorithms import catalogue
from ..errors import ConfigError, UsageError
from .clara_api import PROVIDED, is_clara_controller, is_clara_handler, mounted
from .clara_api.adapters import ClaraControllerAlgorithm, ClaraHandlerAdapter, ClaraLink, ControllerBridge
from .controller import ControllerAlgorithm
from .handler import EVENTS, BadArgument
from .mmar_handler import MMARHandler
from .stats import MLflowHandler, MMARStatsHandler, MMARTensorboardHandler, StatsHandler

# Clara's controller names -> our algorithms
CLARA_CONTROLLERS = {"ReinforcementController": "reinforcement"}
HANDLERS: dict[str, type] = {
    "MMARHandler": MMARHandler,
    "StatsHandler": StatsHandler,
    "MMARStatsHandler": MMARStatsHandler,
    "MMARTensorboardHandler": MMARTensorboardHandler,
    "MLflowHandler": MLflowHandler,
}
CONTROLLER_METHODS = ("initial_recommendation", "refine_recommendation")
_OWN = 'or {"path": "module.Class"} for your own'


def algorithm_name(name: str, file: Path | str, where: list) -> str:
    """Our algorithm for a controller name (ours, a SCHEDULER+PROPOSER pair, or Clara's);
    unknown names and invalid pairs list the known."""
    mapped = CLARA_CONTROLLERS.get(name, name)
    if "+" in mapped:
        try:
            catalogue.entry(mapped)
        except UsageError as exc:
            raise ConfigError(file, where, f"controller: {exc}") from None
    elif mapped not in catalogue.PRESETS:
        known = sorted(catalogue.PRESETS) + sorted(CLARA_CONTROLLERS)
        raise ConfigError(file, where, f"unknown controller '{name}' (known: {', '.join(known)}, or a pair "
                                       f"SCHEDULER+PROPOSER; {_OWN})")
    return mapped


def load_class(path: str, mmar_root: Path, file: Path | str, where: list) -> type:
    """The class `module.Class`, its module imported with the MMAR's custom/ folder first on
    sys.path (it stays there for the run: a module may import its neighbours later), and
    with Clara's `automl` API mounted for the import only (code written for Clara imports
    `automl.defs`, ...; see clara_api)."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name or not class_name:
        raise ConfigError(file, where, f"expected module.Class, got '{path}'")
    custom = Path(mmar_root) / "custom"
    if custom.is_dir() and str(custom) not in sys.path:
        sys.path.insert(0, str(custom))
    try:
        with mounted():
            module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 -- any failure of a user's module is one line
        looked = f"{custom} and the Python path" if custom.is_dir() else f"the Python path ({custom} does not exist)"
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        reason = _clara_api_note(exc, reason)
        raise ConfigError(file, where, f"cannot import module '{module_name}' (looked in {looked}): {reason}") \
            from None
    top = module_name.split(".")[0]
    origin = Path(getattr(sys.modules.get(top), "__file__", None) or custom).resolve()
    if ((custom / f"{top}.py").is_file() or (custom / top).is_dir()) and not origin.is_relative_to(custom.resolve()):
        raise ConfigError(file, where, f"module name '{top}' is taken by {origin}, imported before {custom} was "
                                       "searched: rename your module")
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise ConfigError(file, where, f"module '{module_name}' ({getattr(module, '__file__', '?')}) has no class "
                                       f"'{class_name}'")
    return cls


def _clara_api_note(exc: Exception, reason: str) -> str:
    """A failed import of Clara's `automl` modules says what we provide, by Clara's names."""
    missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    for clara_name, module in PROVIDED.items():
        if missing == module.__name__:  # `from automl.defs import X` with no X: our module's name in the message
            missing = clara_name
            reason = reason.replace(f"'{module.__name__}' ({module.__file__})", f"'{clara_name}'")
    if not missing or not (missing == "automl" or missing.startswith("automl.")):
        return reason
    if missing in PROVIDED:
        names = sorted(n for n, v in vars(PROVIDED[missing]).items() if isinstance(v, type) and not n.startswith("_")
                       and v.__module__ == PROVIDED[missing].__name__)
        return f"{reason} ({missing} here provides {', '.join(names)}; see docs/clara.md)"
    return f"{reason} (of Clara's API, {', '.join(PROVIDED)} are provided; see docs/clara.md)"


def controller_class(path: str, mmar_root: Path, file: Path | str) -> type:
    cls = load_class(path, mmar_root, file, ["controller", "path"])
    missing = [m for m in CONTROLLER_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        raise ConfigError(file, ["controller", "path"], f"{path} is not a controller: it has no "
                                                        f"{' or '.join(missing)} (see automl_cli.clara.Controller)")
    return cls


def load_handlers(doc: dict, mmar_root: Path, file: Path | str) -> list[tuple[str, Any]]:
    """config_automl.json's handlers, each built with its args: (label, instance) pairs. A
    handler written against Clara's API is wrapped in a ClaraHandlerAdapter (all of a run's
    share one main Context)."""
    out = []
    link = ClaraLink()
    for index, spec in enumerate(doc.get("handlers") or []):
        where = ["handlers", index]
        if "path" in spec:
            label = spec["path"]
            cls = load_class(label, mmar_root, file, where + ["path"])
            if is_clara_handler(cls):
                handler = build(cls, label, spec.get("args") or {}, file, where)
                out.append((label, ClaraHandlerAdapter(handler, label, link)))
                continue
            if not any(callable(getattr(cls, event, None)) for event in EVENTS):
                raise ConfigError(file, where + ["path"], f"{label} is not a handler: it defines none of the "
                                                          f"events {', '.join(EVENTS)}")
        else:
            label = spec["name"]
            cls = HANDLERS.get(label)
            if cls is None:
                raise ConfigError(file, where + ["name"], f"unknown handler '{label}' (known: "
                                                          f"{', '.join(sorted(HANDLERS))}; {_OWN})")
        out.append((label, build(cls, label, spec.get("args") or {}, file, where)))
    if sum(isinstance(h, MMARHandler) for _, h in out) > 1:
        raise ConfigError(file, ["handlers"], "MMARHandler is listed more than once; merge their args into one")
    return out


def controller_algorithm(cls: type, instance: Any, space, path: str, handlers: list[tuple[str, Any]],
                         **common: Any) -> ControllerAlgorithm:
    """A user's controller (built) as the run's algorithm: ours as is, one written against
    Clara's API through ClaraControllerAlgorithm (sharing the main Context of the run's Clara
    handlers; a ControllerBridge joins `handlers` to give it the engine's stop request)."""
    if not is_clara_controller(cls):
        return ControllerAlgorithm(space, controller=instance, path=path, **common)
    link = next((h.link for _, h in handlers if isinstance(h, ClaraHandlerAdapter)), None)
    algorithm = ClaraControllerAlgorithm(space, controller=instance, path=path, link=link, **common)
    handlers[:] = [(label, h) for label, h in handlers if not isinstance(h, ControllerBridge)]
    handlers.append((f"{path} (Clara's API)", ControllerBridge(algorithm)))
    return algorithm


def build(cls: type, label: str, args: dict, file: Path | str, where: list) -> Any:
    """`cls(**args)`, any failure a one-line ConfigError at the component's args."""
    try:
        return cls(**args)
    except BadArgument as exc:
        raise ConfigError(file, where + ["args", exc.arg], str(exc)) from None
    except Exception as exc:  # noqa: BLE001 -- a user's constructor may raise anything
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, TypeError) and "argument" in reason:
            accepted = [name for name in inspect.signature(cls).parameters if name not in ("args", "kwargs")]
            reason += f" (its args: {', '.join(accepted) or 'none'})"
        raise ConfigError(file, where + ["args"], f"{label}: {reason}") from None
