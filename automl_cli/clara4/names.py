"""Where a Clara 4.x component name lives, and the arguments MONAI renamed since Clara 4.1.

A component given by `name` is looked up in MONAI's packages in a fixed order, then in
torch's optimizers and schedulers, then in ignite's metrics; one given by `path` is
imported (the MMAR's custom/ folder first on sys.path). Clara 4.1 ran MONAI 0.8: a few of
its argument names were renamed since, and are mapped here with a warning rather than
refused, so a config written for Clara runs as written.
"""
from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

# the order in which a bare name is looked up; the first module that has it wins
SEARCH_MODULES = (
    "monai.transforms", "monai.networks.nets", "monai.losses", "monai.optimizers", "monai.handlers",
    "monai.metrics", "monai.engines", "monai.inferers", "monai.data",
    "torch.optim", "torch.optim.lr_scheduler", "ignite.metrics",
)


class UnknownComponent(LookupError):
    """A name no searched module has, or a path that does not import."""


def find_by_name(name: str) -> Any:
    """The class (or function) called `name` in the first of SEARCH_MODULES that has it."""
    replaced = RENAMED_CLASSES.get(name)
    if replaced is not None:
        name = replaced[0]
    for module_name in SEARCH_MODULES:
        module = importlib.import_module(module_name)
        found = getattr(module, name, None)
        if found is not None and callable(found):
            return found
    raise UnknownComponent(f"unknown component '{name}': not in {', '.join(SEARCH_MODULES)} "
                           '(give {"path": "module.Class"} for your own)')


def find_by_path(path: str, mmar_root: Path) -> Any:
    """`module.Class` imported with the MMAR's custom/ folder first on sys.path."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise UnknownComponent(f"expected module.Class, got '{path}'")
    custom = Path(mmar_root) / "custom"
    if custom.is_dir() and str(custom) not in sys.path:
        sys.path.insert(0, str(custom))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 -- any failure of a user's module is one line
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise UnknownComponent(f"cannot import '{module_name}' for {path}: {reason}") from None
    found = getattr(module, attr, None)
    if found is None:
        raise UnknownComponent(f"module '{module_name}' has no '{attr}'")
    return found


def accepted_args(target: Callable) -> tuple[set[str], bool]:
    """The keyword arguments `target` takes, and whether it takes any (**kwargs)."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return set(), True
    names, open_ended = set(), False
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            open_ended = True
        elif parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.add(parameter.name)
    names.discard("self")
    return names, open_ended


def unknown_arg(target: Callable, args: dict, label: str) -> tuple[str, str] | None:
    """The first of `args` that `target` does not take, with the one-line reason; None when
    it takes them all (or any, through **kwargs)."""
    accepted, open_ended = accepted_args(target)
    if open_ended:
        return None
    for key in args:
        if key not in accepted:
            return key, f"{label} takes no argument '{key}' (its args: {', '.join(sorted(accepted)) or 'none'})"
    return None


# Clara 4.1 class names MONAI has since removed: name -> (replacement, args it implies)
RENAMED_CLASSES: dict[str, tuple[str, dict[str, Any]]] = {
    "AddChanneld": ("EnsureChannelFirstd", {"channel_dim": "no_channel"}),
    "AddChannel": ("EnsureChannelFirst", {"channel_dim": "no_channel"}),
    "AsChannelFirstd": ("EnsureChannelFirstd", {"channel_dim": -1}),
    "AsChannelFirst": ("EnsureChannelFirst", {"channel_dim": -1}),
}

# argument renames that hold for any class taking the new name and not the old one
RENAMED_ARGS = {
    "dimensions": "spatial_dims",     # networks, MONAI 0.6 -> 0.8
    "post_transform": "postprocessing",  # engines, MONAI 0.5 -> 0.6
    "ce_weight": "weight",            # DiceCELoss, MONAI 1.2
    "focal_weight": "weight",         # DiceFocalLoss, MONAI 1.2
}


def modernise(name: str | None, target: Callable, args: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`args` as MONAI today takes them, and one warning per change made."""
    args = dict(args)
    warnings: list[str] = []
    if name in RENAMED_CLASSES:
        new, implied = RENAMED_CLASSES[name]
        for key, value in implied.items():
            args.setdefault(key, value)
        warnings.append(f"{name} was removed from MONAI: built as {new}"
                        + "".join(f" {k}={v!r}" for k, v in implied.items()))
    accepted, _ = accepted_args(target)
    for old, new in RENAMED_ARGS.items():
        if old in args and old not in accepted and new in accepted and new not in args:
            args[new] = args.pop(old)
            warnings.append(f"{name}: argument '{old}' is now '{new}' in MONAI; mapped")
    if {"to_onehot", "n_classes", "threshold_values", "logit_thresh"} & set(args) and "threshold" in accepted:
        warnings += _as_discrete(name, args)
    return args, warnings


def _as_discrete(name: str | None, args: dict[str, Any]) -> list[str]:
    """AsDiscrete(d) of MONAI 0.8: `to_onehot=True, n_classes=k` became `to_onehot=k`, and
    `threshold_values=True, logit_thresh=t` became `threshold=t`."""
    warnings = []
    onehot = args.get("to_onehot")
    flags = onehot if isinstance(onehot, list) else [onehot]
    if "n_classes" in args or any(isinstance(flag, bool) for flag in flags):
        classes = args.pop("n_classes", None)
        mapped = [(classes if flag else None) if isinstance(flag, bool) else flag for flag in flags]
        args["to_onehot"] = mapped if isinstance(onehot, list) else mapped[0]
        warnings.append(f"{name}: 'to_onehot={onehot!r}, n_classes={classes!r}' is now "
                        f"'to_onehot={args['to_onehot']!r}' in MONAI; mapped")
    if "threshold_values" in args or "logit_thresh" in args:
        on = args.pop("threshold_values", False)
        at = args.pop("logit_thresh", 0.5)
        if on:
            args["threshold"] = at
        warnings.append(f"{name}: 'threshold_values={on!r}, logit_thresh={at!r}' is now "
                        f"'threshold={args.get('threshold')!r}' in MONAI; mapped")
    return warnings
