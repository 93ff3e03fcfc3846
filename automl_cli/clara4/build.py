"""Build the objects a Clara 4.x training config describes, in Clara's own language.

A config's `train` and `validate` sections hold entries (`model`, `loss`, `optimizer`,
`lr_scheduler`, `pre_transforms`, `dataset`, `dataloader`, `inferer`, `handlers`,
`post_transforms`, `key_metric`, `additional_metrics`, `trainer`, `evaluator`, or any other
name). An entry is a component `{"name" | "path", "args", "disabled", "rank", "log_label",
"ref"}` or a list of them. Inside `args`:

- `"@name"` is the object built for entry `name` of the same section, else of the other
  section (`validate`'s evaluator uses `train`'s model); `"@conf"` is the whole config;
- `"#expression"` is Python evaluated with `monai`, `torch`, `numpy` (`np`) and `ignite`
  importable by name and every `@name` in it replaced by that entry's object
  (`"#@model.parameters()"`);
- `{VAR}` was substituted when the config was loaded (environment.json, the config's own
  top-level keys, `--set`).

Entries are built lazily, once each, when first referenced, so their order in the file
does not matter; a reference cycle is an error naming the entries.

`monai.bundle.ConfigParser` reads `_target_` configs and gives `#` another meaning, so it
cannot read these files: this module is the Clara-syntax resolver, and MONAI's classes do
the work.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .names import UnknownComponent, accepted_args, find_by_name, find_by_path, modernise, unknown_arg

SECTIONS = ("train", "validate")
# entries that are a list of components combined into one object
COMPOSED = ("pre_transforms", "post_transforms")
# entries that may be a list of which the enabled ones are kept
CHOSEN_ONE = ("optimizer", "lr_scheduler", "model")
REFERENCE = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")  # an @name inside a # expression
# Clara's component keys; anything else beside name/path is refused
COMPONENT_KEYS = {"name", "path", "args", "disabled", "rank", "log_label", "ref", "search", "apply",
                  "data_list_file_path", "data_file_base_dir", "data_list_key"}


class BuildError(ValueError):
    """A component that cannot be built; `where` is its JSON path (a list of keys)."""

    def __init__(self, where: list, message: str):
        self.where = list(where)
        super().__init__(message)


@dataclass
class BuildOptions:
    """What the trainer decides rather than the config."""

    mmar_root: Path
    device: Any = None  # a torch.device: placed on models, given to engines that take one
    amp: bool | None = None  # None: as the config says; False: forced off (no GPU)
    # components left out: (class, args as written) -> why, or None to build it
    skip: Callable[[type, dict], str | None] = lambda cls, args: None
    log: Callable[[str], None] = print


def is_disabled(component: Any, where: list) -> bool:
    """Clara's `disabled`: true/false, or the strings a `{var}` left behind."""
    if not isinstance(component, dict):
        return False
    flag = component.get("disabled", False)
    if isinstance(flag, str) and flag.strip().lower() in ("true", "false", "1", "0", ""):
        return flag.strip().lower() in ("true", "1")
    if isinstance(flag, (bool, int)) and not isinstance(flag, float):
        return bool(flag)
    raise BuildError(where + ["disabled"], f"disabled must be true or false, got {flag!r}")


def enabled(entry: Any, where: list) -> list[tuple[list, dict]]:
    """The enabled components of an entry (one or a list), each with its JSON path; those
    meant for another rank are left out (one process here is rank 0)."""
    items = list(enumerate(entry)) if isinstance(entry, list) else [(None, entry)]
    out = []
    for index, item in items:
        at = where + ([index] if index is not None else [])
        if not isinstance(item, dict):
            raise BuildError(at, f"expected a component {{\"name\": ..., \"args\": {{...}}}}, got {item!r}")
        if is_disabled(item, at):
            continue
        rank = item.get("rank", 0)
        if rank not in (0, None, "0") and rank != [0]:
            continue
        out.append((at, item))
    return out


def label_of(component: dict) -> str:
    """A metric's name in logs and in the engine's state: its `log_label`, else its name."""
    return str(component.get("log_label") or component.get("name") or component.get("path", "metric").rsplit(".")[-1])


class Builder:
    """Builds entries of one config on demand; `get(section, name)` is the object of an entry."""

    def __init__(self, config: dict, options: BuildOptions):
        self.config = config
        self.o = options
        self.built: dict[tuple[str, str], Any] = {}
        self._building: list[tuple[str, str]] = []
        self.warnings: list[str] = []

    # ---- entries -----------------------------------------------------------------------
    def has(self, section: str, name: str) -> bool:
        return isinstance(self.config.get(section), dict) and name in self.config[section]

    def get(self, section: str, name: str) -> Any:
        key = (section, name)
        if key in self.built:
            return self.built[key]
        if key in self._building:
            cycle = " -> ".join(f"{s}.{n}" for s, n in self._building[self._building.index(key):] + [key])
            raise BuildError([section, name], f"reference cycle: {cycle}")
        self._building.append(key)
        try:
            value = self._entry(section, name, self.config[section][name], [section, name])
        finally:
            self._building.pop()
        self.built[key] = value
        return value

    def resolve(self, section: str, name: str, where: list) -> Any:
        """`@name` seen in `section`: that section's entry, else the other's, else the config."""
        if name == "conf":
            return ConfigRecord(self.config)
        for candidate in (section,) + tuple(s for s in SECTIONS if s != section):
            if self.has(candidate, name):
                return self.get(candidate, name)
        raise BuildError(where, f"'@{name}' refers to nothing: no '{name}' in "
                                f"{' or '.join(s for s in SECTIONS if s in self.config)}")

    def _entry(self, section: str, name: str, entry: Any, where: list) -> Any:
        if name in COMPOSED:
            from monai.transforms import Compose

            return Compose([self.component(section, item, at) for at, item in enabled(entry, where)])
        if name == "handlers":
            return [h for at, item in enabled(entry, where) if (h := self.component(section, item, at)) is not None]
        if name == "additional_metrics":
            return {label_of(item): self.component(section, item, at) for at, item in enabled(entry, where)}
        if name == "key_metric":
            chosen = enabled(entry, where)
            if len(chosen) != 1:
                raise BuildError(where, f"exactly one key metric must be enabled, found {len(chosen)}")
            at, item = chosen[0]
            return {label_of(item): self.component(section, item, at)}
        if name == "loss":
            losses = [self.component(section, item, at) for at, item in enabled(entry, where)]
            if not losses:
                raise BuildError(where, "every loss is disabled; at least one must be enabled")
            return losses[0] if len(losses) == 1 else SummedLoss(losses)
        if isinstance(entry, list) or name in CHOSEN_ONE:
            chosen = enabled(entry, where)
            if len(chosen) != 1:
                raise BuildError(where, f"exactly one {name} must be enabled, found {len(chosen)}")
            at, item = chosen[0]
            return self.component(section, item, at, entry_name=name)
        if isinstance(entry, dict) and ({"name", "path", "ref"} & set(entry)):
            if is_disabled(entry, where):
                return None
            return self.component(section, entry, where, entry_name=name)
        return self.value(section, entry, where)

    # ---- one component -------------------------------------------------------------------
    def target(self, component: dict, where: list) -> Callable:
        try:
            if "path" in component:
                return find_by_path(str(component["path"]), self.o.mmar_root)
            if "name" in component:
                return find_by_name(str(component["name"]))
        except UnknownComponent as exc:
            raise BuildError(where + ["path" if "path" in component else "name"], str(exc)) from None
        raise BuildError(where, 'a component needs "name" or "path"')

    def component(self, section: str, component: dict, where: list, entry_name: str | None = None) -> Any:
        if "ref" in component:
            return self.resolve(section, str(component["ref"]).lstrip("@"), where + ["ref"])
        unknown = set(component) - COMPONENT_KEYS
        if unknown:
            raise BuildError(where, f"unknown key(s) {', '.join(sorted(unknown))} (a component has "
                                    f"{', '.join(sorted(COMPONENT_KEYS))})")
        target = self.target(component, where)
        raw = component.get("args") or {}
        if not isinstance(raw, dict):
            raise BuildError(where + ["args"], f"expected an object of arguments, got {raw!r}")
        why = self.o.skip(target, raw) if isinstance(target, type) else None
        if why:
            self.o.log(f"left out {'.'.join(map(str, where))} ({target.__name__}): {why}")
            return None
        label = component.get("name") or component.get("path")
        args, warnings = modernise(component.get("name"), target, raw)
        for warning in warnings:
            self._warn(f"{'.'.join(map(str, where))}: {warning}")
        self._check_args(target, args, where, label)
        kwargs = {key: self.value(section, value, where + ["args", key]) for key, value in args.items()}
        self._place(target, kwargs)
        if "dataset" == entry_name or {"data_list_file_path", "data_file_base_dir", "data_list_key"} & set(component):
            kwargs.setdefault("data", self._datalist(component, where))
        try:
            made = target(**kwargs)
        except Exception as exc:  # noqa: BLE001 -- a component refusing its args is one line
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise BuildError(where + ["args"], f"{label}: {type(exc).__name__}: {reason}") from None
        if entry_name == "model" and self.o.device is not None and hasattr(made, "to"):
            made = made.to(self.o.device)
        return made

    def _check_args(self, target: Callable, args: dict, where: list, label: str) -> None:
        unknown = unknown_arg(target, args, label)
        if unknown:
            raise BuildError(where + ["args", unknown[0]], unknown[1])

    def _place(self, target: Callable, kwargs: dict) -> None:
        """Clara placed engines on the device itself; its configs name none."""
        accepted, _ = accepted_args(target)
        if self.o.device is not None and "device" in accepted and "device" not in kwargs and isinstance(target, type):
            from monai.engines import Workflow

            if issubclass(target, Workflow):
                kwargs["device"] = self.o.device
        if self.o.amp is False and kwargs.get("amp"):
            kwargs["amp"] = False
            self._warn("amp: mixed precision needs a GPU; training in full precision on the CPU")

    def _datalist(self, component: dict, where: list) -> list:
        from monai.data import load_decathlon_datalist

        if "data_list_file_path" not in component:
            raise BuildError(where, "a dataset needs data_list_file_path (a Decathlon-style datalist JSON)")
        path = self._path(component["data_list_file_path"])
        base = self._path(component.get("data_file_base_dir") or path.parent)
        key = component.get("data_list_key", "training")
        if not path.is_file():
            raise BuildError(where + ["data_list_file_path"], f"datalist not found: {path}")
        try:
            return load_decathlon_datalist(str(path), is_segmentation=True, data_list_key=key, base_dir=str(base))
        except Exception as exc:  # noqa: BLE001 -- a malformed datalist is one line
            raise BuildError(where + ["data_list_key"], f"cannot read {path} (key '{key}'): "
                                                        f"{' '.join(str(exc).split())}") from None

    def _path(self, value: Any) -> Path:
        path = Path(str(value))
        return path if path.is_absolute() else Path(self.o.mmar_root) / path

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            self.o.log(f"warning: {message}")

    # ---- values inside args ----------------------------------------------------------------
    def value(self, section: str, value: Any, where: list) -> Any:
        if isinstance(value, str) and value.startswith("@"):
            return self.resolve(section, value[1:], where)
        if isinstance(value, str) and value.startswith("#"):
            return self.expression(section, value[1:], where)
        if isinstance(value, dict):
            return {k: self.value(section, v, where + [k]) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(section, v, where + [i]) for i, v in enumerate(value)]
        return value

    def expression(self, section: str, text: str, where: list) -> Any:
        namespace: dict[str, Any] = {}

        def reference(match: re.Match) -> str:
            name = match.group(1)
            namespace[f"_ref_{name}"] = self.resolve(section, name, where)
            return f"_ref_{name}"

        code = REFERENCE.sub(reference, text)
        try:
            compiled = compile(code, "<config>", "eval")
        except SyntaxError as exc:
            raise BuildError(where, f"'#{text}' is not a Python expression: {exc.msg}") from None
        for name in compiled.co_names:
            if name not in namespace and name in ("monai", "torch", "numpy", "np", "ignite", "math"):
                namespace[name] = importlib.import_module("numpy" if name == "np" else name)
        # submodules used as attributes (monai.handlers.from_engine) must be imported
        for dotted in re.findall(r"\b((?:monai|torch|ignite)(?:\.[A-Za-z_]\w*)+)", code):
            parts = dotted.split(".")
            for end in range(2, len(parts) + 1):
                try:
                    importlib.import_module(".".join(parts[:end]))
                except ImportError:
                    break
        try:
            return eval(compiled, namespace)  # noqa: S307 -- the user's own config, as Clara evaluated it
        except Exception as exc:  # noqa: BLE001
            raise BuildError(where, f"'#{text}' failed: {type(exc).__name__}: {' '.join(str(exc).split())}") from None


class ConfigRecord:
    """`@conf`: the whole config, which Clara saved beside the weights
    (`save_dict: {"train_conf": "@conf"}`). Checkpoint savers want an object with
    `state_dict()` and walk into any mapping, so it reads like a dict without being one."""

    def __init__(self, config: dict):
        self.config = config

    def __getitem__(self, key: str) -> Any:
        return self.config[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def state_dict(self) -> dict:
        return self.config

    def load_state_dict(self, state: dict) -> None:
        self.config = dict(state)


class SummedLoss:
    """Several enabled losses train as their sum."""

    def __init__(self, losses: list[Callable]):
        self.losses = losses

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return sum(loss(*args, **kwargs) for loss in self.losses)
