"""The first process of every local job: it runs the trainer's command and makes sure that
no process of the job outlives the tool, whatever the command is.

    python -I -S supervise.py TOOL_PID GRACE_SECONDS COMMAND...

Linux tells a process that its parent died (PR_SET_PDEATHSIG) only if that process asked,
and the request is not inherited: a wrapper script's python, or a trainer's own helper
processes, would train on without an owner after `kill -9` of the tool. So the tool starts
this small program (standard library only, a few milliseconds) as each job's first
process, in a session of its own. It

- asks for SIGHUP when the tool dies, then checks that the tool is still its parent: the
  tool may have died between fork and that request, and then nothing is started;
- becomes a child subreaper, so a descendant whose own parent exits (a wrapper's shell,
  a daemonised helper) is re-parented here rather than to init and stays in the job's tree;
- runs COMMAND in the job's process group and waits for it;
- when the tool dies: SIGTERM to every process of the job (they checkpoint and stop), and
  SIGKILL to whatever is left after GRACE_SECONDS;
- when COMMAND ends: SIGKILL to anything it left behind, then ends as COMMAND did (its exit
  code, or killed by the same signal), so the tool sees the trainer's own exit.

SIGTERM from the tool goes to the job's whole process group: the trainer gets it directly
and the supervisor just keeps waiting for it; the tool's SIGKILL after the grace period
kills the group, and the tool also kills the supervisor's descendants outside the group.

The process table helpers below are shared with the local backend (which finds a dead
run's leftovers with them on --resume).
"""
from __future__ import annotations

import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PARENT_DIED = signal.SIGHUP  # sent by Linux to the supervisor alone, never to the trainer
_WATCHED = {signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
_TICK = 0.5  # seconds between two looks at the parent when no signal comes (a backstop)


def prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False  # not Linux: a resumed run still stops what a dead run left


def process_table() -> dict[int, tuple[int, int, str]]:
    """{pid: (ppid, pgid, state)} of every process now, from /proc."""
    table: dict[int, tuple[int, int, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(name)] = (int(fields[1]), int(fields[2]), fields[0].decode())
    return table


def descendants(root: int, table: dict[int, tuple[int, int, str]] | None = None) -> list[int]:
    """Every live (not zombie) process below `root`, parents before children."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        if table[pid][2] != "Z":
            found.append(pid)
        todo += children.get(pid, [])
    return found


def signal_tree(root: int, sig: int) -> int:
    """Send `sig` to every process below `root` (not to `root`); how many there were."""
    below = descendants(root)
    for pid in below:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    return len(below)


def _exit_as(status: int) -> int:
    """End as the command ended: its exit code, or killed by the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the trainer's crash, not ours
            signal.signal(sig, signal.SIG_DFL)
        except (ValueError, OSError):
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def _start(command: list[str]) -> int:
    child = os.fork()
    if child:
        return child
    try:  # the trainer starts with the signals as a fresh process has them
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        os.execvp(command[0], command)
    except OSError as exc:
        os.write(2, f"automl: cannot start the train command {command[0]!r}: {exc.strerror}\n".encode())
    except BaseException:  # noqa: BLE001 - never return into the supervisor's loop
        pass
    os._exit(127)


def supervise(tool: int, grace: float, command: list[str]) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)  # taken with sigtimedwait below
    prctl(PR_SET_PDEATHSIG, PARENT_DIED)
    if os.getppid() != tool:
        return 0  # the tool died before it could be told about us: start nothing
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    me = os.getpid()
    child = _start(command)
    status: int | None = None
    kill_at: float | None = None
    while True:
        while True:  # reap: the command, and orphans re-parented to us
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == child:
                status = code
        if status is not None:
            # the command ended: nothing of the job may go on without it
            deadline = time.monotonic() + 2.0
            while signal_tree(me, signal.SIGKILL) and time.monotonic() < deadline:
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    break
            return _exit_as(status)
        now = time.monotonic()
        if kill_at is None and os.getppid() != tool:
            signal_tree(me, signal.SIGTERM)  # the tool died: checkpoint and stop
            kill_at = now + grace
        if kill_at is not None and now >= kill_at:
            signal_tree(me, signal.SIGKILL)
            kill_at = now + _TICK  # and again, should anything have been started meanwhile
        wait = _TICK if kill_at is None else max(0.01, min(_TICK, kill_at - now))
        signal.sigtimedwait(_WATCHED, wait)


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print("usage: supervise.py TOOL_PID GRACE_SECONDS COMMAND...", file=sys.stderr)
        return 2
    return supervise(int(argv[1]), float(argv[2]), argv[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
