"""What `automl validate` checks on a Clara 4.x config, without training anything: every
component name resolves, its args are init args of that class (after MONAI's renames),
every `@` reference exists, the datalists exist and hold their keys, and the evaluator has
the key metric the search is judged by. Disabled components are checked too: a search may
enable them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError
from .build import COMPONENT_KEYS, REFERENCE, SECTIONS, label_of
from .names import UnknownComponent, find_by_name, find_by_path, modernise, unknown_arg



def _components(entry: Any, where: list) -> Iterator[tuple[list, dict]]:
    if isinstance(entry, list):
        for index, item in enumerate(entry):
            yield from _components(item, where + [index])
    elif isinstance(entry, dict) and ({"name", "path"} & set(entry)):
        yield where, entry


def _references(value: Any, where: list) -> Iterator[tuple[list, str]]:
    if isinstance(value, str) and value.startswith("@"):
        yield where, value[1:]
    elif isinstance(value, str) and value.startswith("#"):
        for name in REFERENCE.findall(value):
            yield where, name
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _references(item, where + [key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, where + [index])


def check_clara4(config: dict, path: Path, metric: str | None = None) -> list[str]:
    """Raise ConfigError at the first problem; return what validate prints about the trainer."""
    mmar_root = Path(path).resolve().parent.parent
    warnings: list[str] = []
    for section in SECTIONS:
        if not isinstance(config.get(section), dict):
            raise ConfigError(path, [section], f"a Clara 4.x config needs a '{section}' section")
    for where in (["train", "trainer"], ["validate", "evaluator"], ["train", "model"]):
        if where[1] not in config[where[0]]:
            raise ConfigError(path, where, f"missing: a Clara 4.x config needs {'.'.join(where)}")
    for section in SECTIONS:
        for entry, value in config[section].items():
            for where, component in _components(value, [section, entry]):
                _check_component(component, where, path, mmar_root, warnings)
                if component.get("ref"):
                    _resolve(config, section, str(component["ref"]).lstrip("@"), where + ["ref"], path)
            for where, name in _references(value, [section, entry]):
                _resolve(config, section, name, where, path)
    key = _key_metric(config, path, metric)
    shown = []
    for section, entry in (("train", "model"), ("train", "loss"), ("train", "optimizer"), ("train", "lr_scheduler"),
                           ("train", "trainer"), ("validate", "evaluator")):
        labels = [str(c.get("name") or c.get("path")) for _, c in _components(config[section].get(entry), [])]
        if labels:
            shown.append(f"{entry} {' | '.join(labels)}")
    lines = [f"trainer clara4 (MONAI {_monai_version()}): {', '.join(shown)}; key metric {key}"]
    lines += _datalists(config, path, mmar_root)
    lines += [f"mapped: {w}" for w in warnings]
    return lines


def _check_component(component: dict, where: list, path: Path, mmar_root: Path, warnings: list[str]) -> None:
    unknown = set(component) - COMPONENT_KEYS
    if unknown:
        raise ConfigError(path, where, f"unknown key(s) {', '.join(sorted(unknown))} (a component has "
                                       f"{', '.join(sorted(COMPONENT_KEYS))})")
    label = str(component.get("name") or component.get("path"))
    try:
        target = find_by_path(label, mmar_root) if "path" in component else find_by_name(label)
    except UnknownComponent as exc:
        raise ConfigError(path, where + ["path" if "path" in component else "name"], str(exc)) from None
    raw = component.get("args") or {}
    if not isinstance(raw, dict):
        raise ConfigError(path, where + ["args"], f"expected an object of arguments, got {json.dumps(raw)}")
    args, changed = modernise(component.get("name"), target, raw)
    warnings += [f"{'.'.join(map(str, where))}: {w}" for w in changed]
    unknown = unknown_arg(target, args, label)
    if unknown:
        raise ConfigError(path, where + ["args", unknown[0]], unknown[1])


def _resolve(config: dict, section: str, name: str, where: list, path: Path) -> None:
    if name == "conf" or any(isinstance(config.get(s), dict) and name in config[s]
                             for s in (section,) + SECTIONS):
        return
    raise ConfigError(path, where, f"'@{name}' refers to nothing: no '{name}' in train or validate")


def _key_metric(config: dict, path: Path, metric: str | None) -> str:
    entry = config["validate"].get("key_metric")
    items = [c for _, c in _components(entry, ["validate", "key_metric"])] if entry is not None else []
    if not items:
        raise ConfigError(path, ["validate", "key_metric"], "missing: the evaluator's key metric (a job is judged "
                                                            "by it)")
    labels = [label_of(c) for c in items]
    if metric is not None and metric not in labels:
        raise ConfigError(path, ["validate", "key_metric", "log_label"],
                          f"the search's metric is '{metric}' (config_automl.json), but the key metric is logged as "
                          f"{' or '.join(repr(x) for x in labels)}: set its log_label to '{metric}'")
    return metric or labels[0]


def _datalists(config: dict, path: Path, mmar_root: Path) -> list[str]:
    lines = []
    for section in SECTIONS:
        for where, component in _components(config[section].get("dataset"), [section, "dataset"]):
            if "data_list_file_path" not in component:
                continue
            file = Path(str(component["data_list_file_path"]))
            file = file if file.is_absolute() else mmar_root / file
            key = component.get("data_list_key", "training")
            if not file.is_file():
                raise ConfigError(path, where + ["data_list_file_path"], f"datalist not found: {file} (set its "
                                  "variable in config/environment.json, or --set VAR=/path)")
            try:
                items = json.loads(file.read_text()).get(key)
            except (ValueError, AttributeError) as exc:
                raise ConfigError(path, where + ["data_list_file_path"], f"{file} is not a datalist JSON object: "
                                  f"{exc}") from None
            if not isinstance(items, list) or not items:
                raise ConfigError(path, where + ["data_list_key"], f"{file} has no items under '{key}'")
            base = Path(str(component.get("data_file_base_dir") or file.parent))
            base = base if base.is_absolute() else mmar_root / base
            first = items[0].get("image") if isinstance(items[0], dict) else items[0]
            if isinstance(first, str) and not (Path(first) if Path(first).is_absolute() else base / first).exists():
                raise ConfigError(path, where + ["data_file_base_dir"], f"{file} '{key}'[0] names {first}, which is "
                                  f"not in {base}")
            lines.append(f"data {section}: {len(items)} items under '{key}' of {file}")
    return lines


def _monai_version() -> str:
    import monai

    return monai.__version__
