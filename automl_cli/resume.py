"""What a resumed run must agree with, and what it can take from its journal.

The journal's run_started event records, besides the run's settings, the search space in
full (every parameter's type, range, scale, step, choices, weights, condition and places),
the versions of the tool and of the libraries the algorithms compute with, and the
invocation: the options and --set pairs the run was started with. `automl run --resume`
reads them back, so a resumed run needs no option repeated, refuses one given again with
another value, and refuses a search space that changed under the run.
"""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

# the libraries whose numbers an algorithm's decisions depend on (torch: the GP; never
# imported here, only its installed version read)
LIBRARIES = ("automl-cli", "numpy", "scipy", "torch")
# run settings given as options or as --set pairs: one slot each in the invocation
OPTION_KEYS = ("algorithm", "trainconf", "automlconf", "workers", "traceout", "backend", "time_budget",
               "time_budget_hard")
# the --set pair that gives an option's setting, where its name differs
PAIR_NAMES = {"time_budget": "automl_time_budget", "time_budget_hard": "automl_time_budget_hard"}
# what a resumed run may be given anew: where its jobs run, what is shown, and how long it
# may search (a run that ended on its budget goes on with a bigger one)
CHANGEABLE = ("workers", "traceout", "slurm", "time_budget", "time_budget_hard")


def library_versions() -> dict[str, str | None]:
    """The tool's, Python's and the numeric libraries' versions, read from their metadata
    (never by importing them: the search process does not hold torch)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def version_changes(recorded: dict[str, Any] | None, now: dict[str, Any] | None = None) -> list[str]:
    """`numpy 1.26.4 -> 2.1.0`, one per version that differs (none for a journal that
    recorded no versions)."""
    if not recorded:
        return []
    now = library_versions() if now is None else now
    return [f"{name} {recorded.get(name) or 'absent'} -> {now.get(name) or 'absent'}"
            for name in ("python", *LIBRARIES) if name in recorded and recorded.get(name) != now.get(name)]


# -- the search space -------------------------------------------------------------------------
def space_record(space) -> list[dict[str, Any]]:
    """The run_started record of a search space: what `automl status` shows (name, domain,
    type, range, source) and, under "spec", every detail the algorithm's decisions rest on."""
    return [{"name": p.name, "domain": p.domain, "type": p.kind, "range": p.describe(), "source": p.source,
             "spec": _spec(p)} for p in space.params]


def _spec(p) -> dict[str, Any]:
    return json.loads(json.dumps({
        "type": p.kind, "low": p.low, "high": p.high, "log": bool(p.log), "step": p.step,
        "choices": [list(c) for c in p.choices] if p.choices is not None else None,
        "weights": list(p.weights) if p.weights is not None else None,
        "condition": [p.condition[0], list(p.condition[1])] if p.condition is not None else None,
        "places": p.places()}))


def space_changes(before: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[str]:
    """What differs between two space records, one phrase each (empty: the same space). A
    journal written before spaces were recorded in full is compared by parameter names."""
    old_names, new_names = [p["name"] for p in before], [p["name"] for p in now]
    changes = [f"{name} removed" for name in old_names if name not in new_names]
    changes += [f"{name} added" for name in new_names if name not in old_names]
    if changes:
        return changes
    if old_names != new_names:
        return [f"parameters reordered: {', '.join(old_names)} -> {', '.join(new_names)}"]
    new_by_name = {p["name"]: p for p in now}
    for old in before:
        if "spec" not in old:  # an older journal: names are all it recorded
            continue
        a, b = old["spec"], new_by_name[old["name"]]["spec"]
        name = old["name"]
        if a["type"] != b["type"]:
            changes.append(f"{name} type {a['type']} -> {b['type']}")
            continue
        if (a["low"], a["high"]) != (b["low"], b["high"]):
            changes.append(f"{name} range {_range(a)} -> {_range(b)}")
        if a["log"] != b["log"]:
            changes.append(f"{name} scale {_scale(a)} -> {_scale(b)}")
        for key in ("step", "choices", "weights", "condition", "places"):
            if a.get(key) != b.get(key):
                changes.append(f"{name} {key} {_show(a.get(key))} -> {_show(b.get(key))}")
    return changes


def _range(spec: dict) -> str:
    return f"[{json.dumps(spec['low'])}, {json.dumps(spec['high'])}]"


def _scale(spec: dict) -> str:
    return "log" if spec["log"] else "linear"


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value)


# -- the invocation -----------------------------------------------------------------------------
def invocation(values: dict[str, Any], options: dict[str, Any], slurm: dict[str, Any]) -> dict[str, Any]:
    """How a run was asked for, in one form: each run setting in one slot (an option wins
    over its --set pair, as when the run resolves its settings), the other --set pairs
    (seed, algorithm parameters, config variables), and the --slurm-* options given."""
    pairs = dict(values)
    out: dict[str, Any] = {}
    for key in OPTION_KEYS:
        given = options.get(key)
        from_pairs = pairs.pop(PAIR_NAMES.get(key, key), None)
        out[key] = given if given is not None else from_pairs
    pairs.pop("run_id", None)
    out["set"] = pairs
    out["slurm"] = {k: v for k, v in slurm.items() if v is not None}
    return out


def merge_invocation(run_id: str, recorded: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The invocation of a resumed run: what was recorded, with what is given now on top.
    A setting given again with another value is refused, naming it, unless it says where
    the jobs run or what is shown (workers, traceout, --slurm-*): those may change."""
    merged: dict[str, Any] = {}
    for key in OPTION_KEYS:
        old, new = recorded.get(key), given.get(key)
        if old is not None and new is not None and old != new and key not in CHANGEABLE:
            _refuse(run_id, key, old, new)
        merged[key] = new if new is not None else old
    old_pairs, new_pairs = recorded.get("set") or {}, given.get("set") or {}
    for key, new in new_pairs.items():
        if key in old_pairs and _canonical(old_pairs[key]) != _canonical(new):
            _refuse(run_id, key, old_pairs[key], new)
    merged["set"] = {**old_pairs, **new_pairs}
    merged["slurm"] = {**(recorded.get("slurm") or {}), **(given.get("slurm") or {})}
    return merged


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _refuse(run_id: str, key: str, old: Any, new: Any) -> None:
    raise UsageError(f"cannot resume run '{run_id}': {key} was {json.dumps(old)}, now {json.dumps(new)}; "
                     "leave it out (--resume alone continues the run as it was started), or start another run "
                     "with a new --run-id")


# -- the journal read back ------------------------------------------------------------------------
@dataclass
class RunRecord:
    """What a resumed run takes from its journal."""

    run_dir: Path
    started: dict[str, Any]
    invocation: dict[str, Any] | None  # None: a journal from before invocations were recorded
    versions: dict[str, Any] | None
    finished: dict[str, Any] | None  # the run_finished event of a run that has nothing left to do
    events: list = field(default_factory=list)

    def view(self):
        from .status import RunView

        view = RunView()
        for event in self.events:
            view.apply(event)
        return view


def read_record(run_dir: Path) -> RunRecord | None:
    """The run's record, or None when its journal holds no start (a run that never got
    going). A damaged journal raises DamagedJournal (one line, exit 2)."""
    from .store import read_events

    events = read_events(run_dir)
    started = next((e.data for e in events if e.kind == "run_started"), None)
    if started is None:
        return None
    latest = [e.data for e in events if e.kind in ("run_started", "run_resumed", "run_rebuilt")]
    invocation_ = next((d["invocation"] for d in reversed(latest) if "invocation" in d), None)
    versions = next((d["versions"] for d in reversed(latest) if "versions" in d), None)
    return RunRecord(run_dir, started, invocation_, versions, finished_event(events), events)


def finished_event(events) -> dict[str, Any] | None:
    """The data of the run_finished event that ended the run for good: its algorithm had
    nothing left to ask (not a run stopped early by `automl stop`, nor interrupted). None
    when the run has work left."""
    last = None
    for event in events:
        if event.kind in ("run_started", "run_resumed"):
            last = None
        elif event.kind == "run_finished":
            last = event.data
    if last is None or last.get("status") not in ("completed", "failed"):
        return None
    done = last.get("done")
    if done is None:  # a journal from before run_finished said so
        done = "stopped early" not in (last.get("message") or "")
    return last if done else None


def replay_broken(run_id: str, why: str, versions: dict[str, Any] | None) -> str:
    """The one line of a resume whose journal no longer replays exactly."""
    changed = version_changes(versions)
    if changed:
        cause = f"{', '.join(changed)} since the run last ran, and a library's other numbers change the decisions"
    elif versions:
        cause = "the tool and libraries are the versions the run last ran with, so its settings or code differ"
    else:
        cause = "its journal recorded no versions to compare"
    return (f"cannot resume run '{run_id}' exactly: {why}; {cause}; continue it approximately with --resume "
            "--rebuild (finished jobs are kept, the algorithm is rebuilt from their results)")
