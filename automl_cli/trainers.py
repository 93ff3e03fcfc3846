"""Which trainer trains a job, and the checks `validate` and `run` make on its config.

Two trainers ship with the tool: the reference trainer (`automl_cli/train/`, the small
components of mmar_template) and the Clara 4.x trainer (`automl_cli/clara4/`, MONAI's
components named as Clara Train 4.x configs name them). A config in Clara 4.x form (a
`train` section with a `trainer`, or a `validate` section with an `evaluator`) goes to the
Clara 4.x trainer; config_automl.json's `executor.args.trainer` ("reference" | "clara4")
chooses one explicitly.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError

TRAINERS = ("reference", "clara4")
MONAI_EXTRA = "pip install 'automl-cli[monai]'"


def is_clara4(config: Any) -> bool:
    """A training config in Clara 4.x form: components wired into a MONAI trainer/evaluator."""
    if not isinstance(config, dict):
        return False
    train, validate = config.get("train"), config.get("validate")
    return (isinstance(train, dict) and "trainer" in train) or (isinstance(validate, dict) and "evaluator" in validate)


def trainer_for(config: Any, chosen: str | None = None) -> str:
    """The trainer of a config: `chosen` when given (not "auto"), else by the config's form."""
    if chosen and chosen != "auto":
        return chosen
    return "clara4" if is_clara4(config) else "reference"


def monai_available() -> bool:
    """Whether MONAI and what it needs here import (imported for real: a broken install is
    as missing as an absent one, and the trainer imports them next anyway)."""
    import importlib

    try:
        for name in ("monai", "ignite", "nibabel"):
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def require_monai(file: Path | str) -> None:
    """A Clara 4.x config needs MONAI: without it, one line naming the extra (exit 2)."""
    if not monai_available():
        raise ConfigError(file, [], "this is a Clara 4.x config (MONAI components); its trainer needs MONAI, "
                                    f"pytorch-ignite and nibabel: {MONAI_EXTRA}")


def check_train_config(config: dict, path: Path, chosen: str | None = None, *, metric: str | None = None) -> list[str]:
    """What would fail in every job, checked once before anything starts: each component
    of `config` (config_train.json with its variables substituted, checked as written:
    search sections may later set values) is one the trainer can build with those args,
    and with `metric` (config_automl.json's) the trainer writes that metric. Raises
    ConfigError on the first problem; returns short lines describing what will train."""
    trainer = trainer_for(config, chosen)
    if trainer == "reference":
        from .train.check import check_reference

        return check_reference(config, Path(path), metric=metric)
    if trainer == "clara4":
        require_monai(path)
        from .clara4.check import check_clara4

        return check_clara4(config, Path(path), metric)
    raise ValueError(f"unknown trainer {chosen!r} (known: {', '.join(TRAINERS)})")


def check_train_config_isolated(config: dict, path: Path, chosen: str | None = None, *,
                                metric: str | None = None) -> list[str]:
    """check_train_config in a child process: the same lines or the same ConfigError, while
    torch and MONAI, which the checks import, stay out of the caller's memory."""
    request = json.dumps({"config": config, "path": str(path), "chosen": chosen, "metric": metric})
    child = subprocess.run([sys.executable, "-c", "from automl_cli.trainers import _check_child; _check_child()"],
                           input=request, capture_output=True, text=True)
    try:
        answer = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        reason = (child.stderr.strip().splitlines() or [f"exit code {child.returncode}"])[-1]
        raise ConfigError(path, [], f"checking the config against its trainer failed: {reason}") from None
    if "error" in answer:
        raise ConfigError(answer["error"]["file"], answer["error"]["parts"], answer["error"]["detail"])
    return answer["lines"]


def _check_child() -> None:
    request = json.loads(sys.stdin.read())
    try:
        lines = check_train_config(request["config"], Path(request["path"]), request["chosen"],
                                   metric=request["metric"])
        answer: dict[str, Any] = {"lines": lines}
    except ConfigError as exc:
        answer = {"error": {"file": exc.file, "parts": exc.parts, "detail": exc.detail}}
    print(json.dumps(answer))
