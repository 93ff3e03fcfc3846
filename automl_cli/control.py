"""Acting on a live run from another shell: `automl suspend|resume|abort|stop`.

The admin command never touches a job or a process: it leaves a request in the run folder
and waits for the answer. The run reads its inbox between two turns of its loop, calls the
engine's control (which journals it), and answers. So only the process that owns the jobs
acts on them, the same way for local jobs and SLURM jobs, and the journal records who did
what.

    <run>/control/session.json       written by the run at each start and resume: the token
                                     a request must carry to be acted on
    <run>/control/inbox/<name>.json  one request: {"session", "command", "target", ...}
    <run>/control/replies/<name>.json  the run's answer: {"code": 0|1|2, "message"}

Rules (docs/usage.md, "Acting on a running search"):
- A run is live while it holds the run folder's `.lock`; a command that can take that lock
  itself says the run is not running and writes nothing.
- Requests are files written aside, fsynced and renamed into the inbox under a unique name
  that starts with the time they were sent, so commands sent at once never mix and are
  acted on in the order they were sent.
- The run owns a request once it has removed it from the inbox; a command that gets no
  answer in time removes its request itself, and if that succeeds nothing was done.
- A request carrying another session's token (sent to a run that has since died, or to the
  start before a `--resume`) is answered "nothing was done", never acted on.
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any, Callable

from .errors import NoLiveRun, UsageError, json_path
from .files import write_json_atomic
from .store import Event

CONTROL_DIR = "control"
COMMANDS = ("suspend", "resume", "abort", "stop")
STOP_REASON = "asked by automl stop"
DEFAULT_TIMEOUT = 10.0
_LOOK_EVERY = 0.2  # seconds between two looks at the inbox: answers come fast, a quiet run costs little
_POLL = 0.05  # how often a waiting command looks for its answer
_PROBE_EVERY = 1.0  # how often a waiting command checks that the run is still alive


def _quiet(message: str, *, level: str = "INFO", key: bool = False) -> None:
    """The trace of a run nobody watches."""


def is_running(run_dir: Path) -> bool:
    """Does a live `automl run` hold the run folder's lock? Probed by taking a shared lock and
    dropping it at once (read-only: nothing in the folder is created or written)."""
    try:
        fd = os.open(run_dir / ".lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock
    return False


# -- the command's side ---------------------------------------------------------------------
def send(run_dir: Path, run_id: str, command: str, target: str = "", timeout: float = DEFAULT_TIMEOUT) -> str:
    """Ask the live run `run_id` to act and return its answer. Raises NoLiveRun (exit 1) when
    the run is not running or does not answer (then nothing was done, unless the message says
    the run took the request), UsageError (exit 2) when the run refuses the request (an
    unknown worker)."""
    if command not in COMMANDS:
        raise UsageError(f"unknown control command '{command}': expected one of {', '.join(COMMANDS)}")
    if not is_running(run_dir):
        raise NoLiveRun(f"run '{run_id}' is not running")
    folder = run_dir / CONTROL_DIR
    deadline = time.monotonic() + timeout
    session = _live_session(folder, run_dir, run_id, deadline)
    name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
    request = folder / "inbox" / f"{name}.json"
    write_json_atomic(request, {"session": session, "command": command, "target": target, "sent": time.time(),
                                "pid": os.getpid(), "host": socket.gethostname()})
    reply_path = folder / "replies" / f"{name}.json"
    answer = _wait_for_reply(reply_path, run_dir, deadline)
    if answer is None:
        try:
            request.unlink()
        except FileNotFoundError:  # the run took it: its answer follows unless it died acting on it
            answer = _wait_for_reply(reply_path, run_dir, time.monotonic() + 2.0)
            if answer is None:
                raise NoLiveRun(f"run '{run_id}' took the request but did not answer; see `automl workers` "
                                "and `automl status` for what it did") from None
        else:
            ended = not is_running(run_dir)
            raise NoLiveRun(f"run '{run_id}' " + ("ended before answering" if ended else
                                                  f"did not answer within {timeout:g} s (is it stuck?)")
                            + "; nothing was done")
    code, message = answer
    if code == 2:
        raise UsageError(message)
    if code != 0:
        raise NoLiveRun(message)
    return message


def _live_session(folder: Path, run_dir: Path, run_id: str, deadline: float) -> str:
    """The token of the run holding the lock. A run that has just taken the lock may not have
    written it yet; a token left by a dead run on this host is not used."""
    host = socket.gethostname()
    while True:
        try:
            session = json.loads((folder / "session.json").read_text())
            if session.get("host") != host or _alive(session.get("pid")):
                return str(session["session"])
        except (OSError, ValueError, KeyError, AttributeError):
            pass
        if time.monotonic() >= deadline:
            raise NoLiveRun(f"run '{run_id}' holds its lock but takes no requests (no live {CONTROL_DIR}/session.json "
                            f"in {run_dir}); nothing was done")
        time.sleep(_POLL)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_reply(path: Path, run_dir: Path, deadline: float) -> tuple[int, str] | None:
    next_probe = time.monotonic() + _PROBE_EVERY
    while True:
        try:
            answer = json.loads(path.read_text())
        except FileNotFoundError:
            answer = None
        if answer is not None:
            path.unlink(missing_ok=True)
            return int(answer.get("code", 1)), str(answer.get("message", ""))
        now = time.monotonic()
        if now >= deadline:
            return None
        if now >= next_probe:  # a run that has ended will not answer: stop waiting
            next_probe = now + _PROBE_EVERY
            if not is_running(run_dir) and not path.exists():
                return None
        time.sleep(_POLL)


# -- the run's side ---------------------------------------------------------------------------
class ControlInbox:
    """The run's end of the channel: `attach(engine)` makes the engine look at the inbox once
    per loop turn (at most every 0.2 s) and act on each request in the order sent."""

    def __init__(self, run_dir: Path, trace: Callable[..., None] = _quiet):
        self.folder = run_dir / CONTROL_DIR
        self.inbox = self.folder / "inbox"
        self.replies = self.folder / "replies"
        self.trace = trace
        self.session = secrets.token_hex(8)
        self.run_id = run_dir.name
        self.next_look = 0.0
        self.ended: str | None = None  # the run's final status, once journaled

    def attach(self, engine) -> None:
        """Open the inbox for this start of the run and hook it into `engine`."""
        self.run_id = engine.s.run_id
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.replies.mkdir(exist_ok=True)
        # answers nobody read (their command gave up or was killed) and files half-written
        # when a command died; requests left in the inbox are answered at the first look
        for stale in [*self.replies.iterdir(), *(p for p in self.inbox.iterdir() if p.name.startswith("."))]:
            stale.unlink(missing_ok=True)
        write_json_atomic(self.folder / "session.json", {"session": self.session, "pid": os.getpid(),
                                                         "host": socket.gethostname(), "started": time.time()})
        engine.tick_hooks.append(self.tick)
        engine.listeners.append(self.on_event)

    def tick(self, engine) -> None:
        now = time.monotonic()
        if now < self.next_look:
            return
        self.next_look = now + _LOOK_EVERY
        for path in self._pending():
            self._handle(path, engine)

    def on_event(self, event: Event) -> None:
        """Once the run has journaled its end, nothing more is acted on: answer what is waiting."""
        if event.kind == "run_finished":
            self.ended = event.data.get("status", "ended")
            for path in self._pending():
                self._handle(path, None)

    def _pending(self) -> list[Path]:
        try:
            names = sorted(e.name for e in os.scandir(self.inbox) if e.name.endswith(".json")
                           and not e.name.startswith("."))
        except FileNotFoundError:
            return []
        return [self.inbox / name for name in names]

    def _handle(self, path: Path, engine) -> None:
        try:
            text = path.read_text()
            path.unlink()  # from here on the request is the run's: its sender can no longer take it back
        except FileNotFoundError:
            return  # withdrawn by its sender, who gave up waiting
        except OSError as exc:
            self.trace(f"control: cannot read request {path}: {exc}", level="WARN")
            return
        name = path.stem
        try:
            request = parse_request(text)
        except ValueError as exc:
            self.trace(f"control: ignored a malformed request {path.name}: {exc}", level="WARN")
            self._reply(name, 2, f"malformed request {path}: {exc}")
            return
        what = f"{request['command']} {request['target']}".strip()
        sender = f"pid {request.get('pid', '?')} on {request.get('host', '?')}"
        if request["session"] != self.session:
            self.trace(f"control: ignored '{what}' from {sender}: it was sent to an earlier start of the run",
                       level="WARN")
            self._reply(name, 1, f"run '{self.run_id}' has restarted since the request was sent; nothing was done "
                                 "(send it again)")
            return
        if engine is None:
            self._reply(name, 1, f"run '{self.run_id}' has ended ({self.ended}); nothing was done")
            return
        try:
            code, message = 0, self._act(engine, request["command"], request["target"])
        except UsageError as exc:
            code, message = 2, str(exc)
        except Exception as exc:
            self._reply(name, 1, f"run '{self.run_id}' failed acting on '{what}': {exc}")
            raise
        self.trace(f"control: '{what}' from {sender}: {message}")
        self._reply(name, code, message)

    def _act(self, engine, command: str, target: str) -> str:
        if command == "suspend":
            return engine.suspend_worker(target)
        if command == "resume":
            return engine.resume_worker(target)
        if command == "abort":
            return engine.abort_job(target)
        running = len(engine.jobs)
        if not engine.request_stop(STOP_REASON):
            return f"run '{self.run_id}' is already stopping ({engine.stopping})"
        return (f"run '{self.run_id}' stopping: no new jobs"
                + (f"; its {running} running job(s) end first" if running else "")
                + ", then best/ is published (--resume continues the search)")

    def _reply(self, name: str, code: int, message: str) -> None:
        write_json_atomic(self.replies / f"{name}.json", {"code": code, "message": message})


def parse_request(text: str) -> dict[str, Any]:
    """A request file's content, checked; ValueError names what is wrong and where."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{json_path([])}: expected an object")
    command = data.get("command")
    if command not in COMMANDS:
        raise ValueError(f"{json_path(['command'])}: expected one of {', '.join(COMMANDS)}, got {json.dumps(command)}")
    target = data.get("target", "")
    if not isinstance(target, str) or (command != "stop" and not target):
        raise ValueError(f"{json_path(['target'])}: expected a worker or job name, got {json.dumps(target)}")
    if not isinstance(data.get("session"), str):
        raise ValueError(f"{json_path(['session'])}: expected the run's session token, got "
                         f"{json.dumps(data.get('session'))}")
    return {**data, "target": target}
