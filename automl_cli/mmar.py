"""The MMAR folder: find and load its config files, substitute variables, clone job MMARs.

An MMAR (Clara's Medical Model ARchive) holds `config/`, `commands/`, `models/`, `docs/`
and `resources/`. Config files may be JSON or YAML; every file is checked against its
schema in `automl_cli/config/` before anything runs, so a broken file costs the user one
line of error and no started jobs.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError, UsageError
from .files import write_json_atomic

TRAIN_CONFIG = "config_train.json"
AUTOML_CONFIG = "config_automl.json"
ENVIRONMENT = "environment.json"

# Top-level folders never copied into a job: the runs themselves live under automl/.
_NOT_CLONED = {"automl"}
# Folders a job writes into, so they are made fresh rather than linked to the parent's.
_JOB_OWNED = {"config", "models", "commands"}

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class MMAR:
    """An MMAR folder on disk."""

    root: Path

    @classmethod
    def open(cls, path: str | Path) -> "MMAR":
        given = Path(path).expanduser()
        problem = _unreadable(given)
        if problem is not None and problem != "is a folder":
            raise UsageError(f"MMAR folder {path} {problem}" if problem else f"{path} is a file, not an MMAR folder")
        if problem is None:
            raise UsageError(f"MMAR folder not found: {path}")
        root = given.resolve()
        if not (root / "config").is_dir():
            raise UsageError(f"{path} is not an MMAR: it has no config/ folder")
        return cls(root)

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def runs_dir(self) -> Path:
        return self.root / "automl"

    def config_file(self, name: str) -> Path:
        """The config file `name` in config/, accepting a YAML twin of a .json name."""
        path = Path(name)
        if path.is_absolute():
            candidates = [path]
        else:
            candidates = [self.config_dir / name]
            if path.suffix == ".json":
                candidates += [self.config_dir / (path.stem + ext) for ext in (".yaml", ".yml")]
        for candidate in candidates:
            problem = _unreadable(candidate)
            if problem == "":
                return candidate
            if problem is not None:
                raise UsageError(f"config file {candidate} {problem}"
                                 + (", not a file" if problem == "is a folder" else ""))
        raise ConfigFileNotFound(f"config file not found: {candidates[0]}")

    def environment(self, *, check_schema: bool = True) -> dict[str, Any]:
        """environment.json's variables (empty when the MMAR has none), plus MMAR_ROOT; without
        `check_schema` (the read path) its values are substituted but not checked."""
        variables: dict[str, Any] = {"MMAR_ROOT": str(self.root)}
        try:
            path = self.config_file(ENVIRONMENT)
        except ConfigFileNotFound:
            return variables
        doc = load_document(path)
        if check_schema:
            validate(doc, "environment", path)
        # environment values may refer to MMAR_ROOT or to each other's earlier names
        for key, value in doc.items():
            variables[key] = substitute(value, variables, path, [key])
        return variables

    def load_train_config(self, name: str = TRAIN_CONFIG, *, resolve: bool = True,
                          extra: dict | None = None) -> tuple[dict, Path]:
        """config_train.json, validated; with `resolve`, {NAME} variables substituted (`extra`:
        values given on the command line, which win over environment.json and the config's
        own top-level keys)."""
        path = self.config_file(name)
        doc = load_document(path)
        validate(doc, "config_train", path)
        if resolve:
            doc = resolve_variables({**doc, **{k: v for k, v in (extra or {}).items() if k in doc}},
                                    {**self.environment(), **(extra or {})}, path)
        return doc, path

    def load_automl_config(self, name: str = AUTOML_CONFIG, extra: dict | None = None) -> tuple[dict, Path]:
        """config_automl.json, validated, with {NAME} from environment.json and `extra`."""
        path = self.config_file(name)
        doc = load_document(path)
        validate(doc, "config_automl", path)
        variables = {**self.environment(), **(extra or {})}
        return substitute(doc, variables, path, []), path


class ConfigFileNotFound(UsageError):
    """No config file of that name (an optional one, environment.json, may be absent)."""


def _unreadable(path: Path) -> str | None:
    """Why `path` cannot be read as a config file: "" when it can, None when nothing is
    there, else a few words ("is a folder", "is a symlink loop", ...)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symlink loop"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return f"is a broken symlink (to {os.readlink(path)})" if path.is_symlink() else None
        return f"cannot be read: {exc.strerror}"
    except RuntimeError:  # older Pythons report a loop met while resolving a path this way
        return "is a symlink loop"
    if stat.S_ISDIR(mode):
        return "is a folder"
    if not stat.S_ISREG(mode):
        return "is not a regular file"  # a FIFO or a device: reading it could wait forever
    return ""


# a config is a few levels deep; far deeper nesting would exhaust the recursion of the
# readers and checkers after the parser (JSON Schema, {NAME} substitution)
MAX_DEPTH = 100


def load_document(path: Path) -> dict:
    """Parse a JSON or YAML config file; a syntax error names the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # UTF-8, with or without the BOM some editors write
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError(path, [], f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at line {line} "
                                    f"(offset {exc.start}); save the file as UTF-8") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        doc = _parse_yaml(text, path) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except RecursionError:
        raise ConfigError(path, [], f"nested too deeply to read (a config may be at most {MAX_DEPTH} levels "
                                    "deep)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(path, [], f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(path, [], f"expected a JSON object at the top, got {type(doc).__name__}")
    _check_depth(doc, path)
    return doc


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml  # only YAML configs pay for it (JSON is the common case, and the read path's)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(path, [], f"invalid YAML{where}: {problem}") from exc


def _check_depth(doc: dict, path: Path) -> None:
    """Refuse nesting deeper than MAX_DEPTH, naming the first levels of the path that goes
    deeper (without recursion: the point is not to exhaust it)."""
    stack: list[tuple[Any, list]] = [(doc, [])]
    while stack:
        node, where = stack.pop()
        if len(where) >= MAX_DEPTH:
            raise ConfigError(path, where[:10], f"nested more than {MAX_DEPTH} levels deep below this point "
                                                "(a config is a few levels deep)")
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend((value, where + [key]) for key, value in items if isinstance(value, (dict, list)))


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    """One of the JSON Schemas shipped in automl_cli/config/."""
    text = resources.files("automl_cli").joinpath("config", f"{name}.schema.json").read_text()
    return json.loads(text)


def validate(doc: Any, schema_name: str, file: Path, prefix: list | None = None) -> None:
    """Check `doc` against a shipped schema; the first error becomes a ConfigError."""
    import jsonschema  # imported here: it costs more start-up time than the read-only commands may take

    validator = jsonschema.Draft202012Validator(schema(schema_name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        raise ConfigError(file, list(prefix or []) + list(error.absolute_path), _expected(error))


def _expected(error) -> str:
    """Say what was expected in words a user reads once and understands: a rule's own
    "x-message" when the schema gives one, else words for the kind of rule broken."""
    if isinstance(error.schema, dict) and "x-message" in error.schema:
        return error.schema["x-message"]
    kind = error.validator
    if kind == "required":
        return f"missing required key: {error.message.split(' is a required')[0]}"
    if kind == "additionalProperties":
        return f"unknown key ({error.message.split('(')[-1].rstrip(')')})"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {expected}, got {json.dumps(error.instance)}"
    if kind == "enum":
        return f"expected one of {', '.join(json.dumps(v) for v in error.validator_value)}, got {json.dumps(error.instance)}"
    if kind == "oneOf" and isinstance(error.instance, dict):
        return "expected exactly one of \"name\" or \"path\""
    return error.message


def resolve_variables(doc: dict, environment: dict, file: Path) -> dict:
    """Substitute {NAME} from environment.json and the config's own top-level scalars."""
    own = {k: v for k, v in doc.items() if isinstance(v, (str, int, float, bool))}
    # one level of indirection among the config's own keys ("rate": "{learning_rate}")
    plain = {k: v for k, v in own.items() if not (isinstance(v, str) and "{" in v)}
    own_resolved = {k: substitute(v, {**plain, **environment}, file, [k]) for k, v in own.items()}
    return substitute(doc, {**own_resolved, **environment}, file, [])


def substitute(value: Any, variables: dict, file: Path, where: list) -> Any:
    """Replace {NAME} in strings. A string that is exactly "{NAME}" takes the variable's
    own type (so "lr": "{learning_rate}" stays a number)."""
    if isinstance(value, dict):
        return {k: substitute(v, variables, file, where + [k]) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables, file, where + [i]) for i, v in enumerate(value)]
    if not isinstance(value, str) or "{" not in value:
        return value
    whole = _VARIABLE.fullmatch(value)
    if whole:
        return _lookup(whole.group(1), variables, file, where)
    return _VARIABLE.sub(lambda m: str(_lookup(m.group(1), variables, file, where)), value)


def _lookup(name: str, variables: dict, file: Path, where: list) -> Any:
    if name not in variables:
        known = ", ".join(sorted(variables)) or "none"
        raise ConfigError(file, where, f"unknown variable {{{name}}} (known: {known})")
    return variables[name]


def clone_job(source: MMAR, job_dir: Path, train_config: dict, *, train_config_name: str = TRAIN_CONFIG,
              copy_whole: bool = False, skip: frozenset[str] = frozenset()) -> MMAR:
    """Make a job's MMAR: `train_config` as config/<train_config_name>, an empty models/
    (a checkpoint copied from the MMAR would make every job resume from it), and the rest of
    the MMAR in one of two modes: by default (Clara's key_mmar_content_only) only config/
    and commands/ are copied and everything else (data, resources, docs, custom code) is
    linked, so a job costs kilobytes; with `copy_whole` everything is copied (links inside
    stay links), for trainers that write into those folders. Top-level entries named in
    `skip` (a run folder inside the MMAR) are left out."""
    job_dir.mkdir(parents=True, exist_ok=False)
    (job_dir / "models").mkdir()
    stem = Path(train_config_name).stem
    shutil.copytree(source.config_dir, job_dir / "config",
                    ignore=shutil.ignore_patterns(*(stem + ext for ext in (".json", ".yaml", ".yml"))))
    if (source.root / "commands").is_dir():
        shutil.copytree(source.root / "commands", job_dir / "commands")
    for entry in source.root.iterdir():
        if entry.name in _NOT_CLONED or entry.name in _JOB_OWNED or entry.name in skip or entry.name.startswith("."):
            continue
        if copy_whole and entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, job_dir / entry.name, symlinks=True)
        elif copy_whole:
            shutil.copy2(entry, job_dir / entry.name, follow_symlinks=False)
        else:
            os.symlink(entry, job_dir / entry.name)
    write_json_atomic(job_dir / "config" / train_config_name, train_config)
    return MMAR(job_dir)


def set_environment(mmar: MMAR, values: dict[str, Any]) -> None:
    """Give environment.json's variables these values (a job's `--set DATA_ROOT=...`)."""
    if not values:
        return
    path = mmar.config_dir / ENVIRONMENT
    doc = load_document(path) if path.is_file() else {}
    write_json_atomic(path, {**doc, **values})
