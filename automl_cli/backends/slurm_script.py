"""What the SLURM backend hands to sbatch: checked options, the job script, the argv.

Kept apart from the backend so that every path from a user's value to sbatch can be
tested without a cluster. Values reach sbatch in two ways only: as argv items (never
through a shell) and in the script, where each value is either matched against a strict
pattern or passed through shlex.quote. The setup snippet is the one exception: it is the
user's own shell (module loads, venv activation), run as written.
"""
from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import UsageError

# SLURM names (partitions, accounts, QOS) are plain words; a comma separates alternatives
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+(,[A-Za-z0-9_.\-]+)*$")
# [days-]hours[:minutes[:seconds]] | minutes[:seconds] | days-hours ...: see sbatch(1) --time
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_MEM = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
# gpu:1, gpu:a100:2, gpu:a100:2,shard:1
_GRES = re.compile(r"^[A-Za-z][\w.\-]*(:[\w.\-]+)*(,[A-Za-z][\w.\-]*(:[\w.\-]+)*)*$")
_EXTRA = re.compile(r"^--?[A-Za-z][\w\-]*(=[^\s'\"\\\x00-\x1f\x7f]*)?$")
# options the backend sets itself: a user's copy would break output, requeue or re-attach
_MANAGED = {"output", "o", "error", "e", "open-mode", "requeue", "no-requeue", "signal", "job-name", "J",
            "chdir", "D", "parsable", "wrap", "array", "a", "export", "input", "i"}

# Our view of a SLURM job state (squeue %T / scontrol JobState). "queued" and "running"
# are alive; "ending" is alive too (COMPLETING: processes still writing their checkpoint);
# the rest are final.
ALIVE = {"PENDING": "queued", "CONFIGURING": "queued", "REQUEUED": "queued", "REQUEUE_FED": "queued",
         "REQUEUE_HOLD": "queued", "RESV_DEL_HOLD": "queued", "SUSPENDED": "queued", "STOPPED": "queued",
         "RUNNING": "running", "RESIZING": "running", "SIGNALING": "running",
         "COMPLETING": "ending", "STAGE_OUT": "ending",
         # with --requeue a preempted job goes back to the queue; the backend gives it a while
         # to show up there before taking PREEMPTED as final (PreemptMode=CANCEL clusters)
         "PREEMPTED": "preempted"}
FINAL = {"COMPLETED": "completed", "FAILED": "failed", "TIMEOUT": "timeout", "CANCELLED": "cancelled",
         "NODE_FAIL": "node_fail", "OUT_OF_MEMORY": "out_of_memory", "BOOT_FAIL": "boot_fail",
         "DEADLINE": "deadline", "SPECIAL_EXIT": "failed", "REVOKED": "cancelled"}


def map_state(state: str) -> str:
    """SLURM's state name -> ours: queued, running, ending, preempted (alive) or a final one
    (completed, failed, timeout, cancelled, node_fail, out_of_memory, boot_fail, deadline).
    squeue may decorate a state ('CANCELLED by 0', 'COMPLETING+'); only the word counts."""
    word = re.split(r"[\s+]", state.strip().upper(), maxsplit=1)[0] if state.strip() else ""
    if word in ALIVE:
        return ALIVE[word]
    if word in FINAL:
        return FINAL[word]
    return "unknown"


def is_alive(ours: str) -> bool:
    return ours in ("queued", "running", "ending", "preempted", "unknown")


def parse_time(text: str) -> int | None:
    """sbatch --time as seconds (None for UNLIMITED/INFINITE); UsageError when malformed."""
    value = str(text).strip()
    if value.upper() in ("UNLIMITED", "INFINITE"):
        return None
    match = _TIME.match(value)
    if not match:
        raise UsageError(f"bad --slurm-time '{text}': expected minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or "
                         "D-HH:MM:SS (as sbatch --time)")
    days, a, b, c = match.groups()
    a, b, c = int(a), int(b) if b else None, int(c) if c else None
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = int(days) * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # HH:MM:SS
        seconds = a * 3600 + b * 60 + c
    elif b is not None:  # MM:SS
        seconds = a * 60 + b
    else:  # minutes
        seconds = a * 60
    if seconds <= 0:
        raise UsageError(f"bad --slurm-time '{text}': the time limit must be more than 0")
    return seconds


@dataclass
class SlurmOptions:
    """The SLURM settings of a run, as the user gave them (checked by `validate`)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None
    gres: str | None = "gpu:1"  # None or "": no --gres (CPU-only clusters)
    cpus: int = 1
    mem: str | None = None
    extra: list[str] = field(default_factory=list)
    max_jobs: int = 4
    setup: str = ""
    signal_seconds: int = 120  # --signal=B:USR1@N: checkpoint and requeue N s before the time limit
    poll_seconds: float = 5.0  # squeue at most this often: a busy slurmctld is everyone's problem

    KEYS = ("partition", "account", "qos", "time", "gres", "cpus", "mem", "extra", "max_jobs", "setup",
            "signal_seconds", "poll_seconds")

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "--slurm-") -> "SlurmOptions":
        """From config_automl.json's executor args or the command line; unknown keys are errors."""
        unknown = sorted(set(values) - set(cls.KEYS))
        if unknown:
            raise UsageError(f"unknown SLURM option(s) {', '.join(unknown)} (known: {', '.join(cls.KEYS)})")
        options = cls(**{k: v for k, v in values.items() if v is not None})
        options.validate(where)
        return options

    def validate(self, where: str = "--slurm-") -> None:
        """Every value checked; the first bad one is a UsageError naming its option."""
        def bad(option: str, value: Any, expected: str) -> UsageError:
            return UsageError(f"bad {where}{option.replace('_', '-')} {value!r}: expected {expected}")

        for option in ("partition", "account", "qos"):
            value = getattr(self, option)
            if value is not None and (not isinstance(value, str) or not _NAME.match(value)):
                raise bad(option, value, "a SLURM name (letters, digits, _ . -; comma-separated for several)")
        if self.time is not None:
            if not isinstance(self.time, str):
                raise bad("time", self.time, "a time limit such as 30, 2:00:00 or 1-12:00:00")
            parse_time(self.time)
        if self.gres is not None and self.gres != "" and (not isinstance(self.gres, str) or not _GRES.match(self.gres)):
            raise bad("gres", self.gres, "a generic resource such as gpu:1 or gpu:a100:2 ('' for none)")
        if self.mem is not None and (not isinstance(self.mem, str) or not _MEM.match(self.mem)):
            raise bad("mem", self.mem, "a memory size such as 16G, 4000M or 4000 (MB)")
        for option, low in (("cpus", 1), ("max_jobs", 1), ("signal_seconds", 0)):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or value > 65535:
                raise bad(option, value, f"an integer from {low} to 65535")
        if isinstance(self.poll_seconds, bool) or not isinstance(self.poll_seconds, (int, float)) \
                or not 0.1 <= self.poll_seconds <= 3600:
            raise bad("poll_seconds", self.poll_seconds, "seconds between squeue calls, 0.1 to 3600")
        if not isinstance(self.setup, str) or "\x00" in self.setup:
            raise bad("setup", self.setup, "shell lines run before the trainer (module load ..., source venv)")
        if isinstance(self.extra, str):
            self.extra = [self.extra]
        if not isinstance(self.extra, list):
            raise bad("sbatch", self.extra, "a list of sbatch options such as --constraint=a100")
        for line in self.extra:
            if not isinstance(line, str) or not _EXTRA.match(line):
                raise bad("sbatch", line, "one sbatch option per item, such as --constraint=a100 (no newlines)")
            name = line.lstrip("-").split("=", 1)[0]
            if name in _MANAGED:
                raise bad("sbatch", line, f"an option automl does not set itself (it manages --{name})")
        limit = parse_time(self.time) if self.time else None
        if limit is not None and self.signal_seconds >= limit:
            raise bad("signal_seconds", self.signal_seconds,
                      f"fewer seconds than the time limit {self.time} ({limit} s)")

    def sbatch_lines(self) -> list[str]:
        """The #SBATCH lines for the user's cluster settings (each value already checked)."""
        lines = []
        for option, value in (("partition", self.partition), ("account", self.account), ("qos", self.qos),
                              ("time", self.time), ("gres", self.gres or None), ("mem", self.mem)):
            if value is not None:
                lines.append(f"#SBATCH --{option}={shlex.quote(value)}")
        lines.append(f"#SBATCH --cpus-per-task={int(self.cpus)}")
        lines.append("#SBATCH --ntasks=1")
        lines += [f"#SBATCH {shlex.quote(line)}" for line in self.extra]
        return lines


# Environment the job gets from the tool. CUDA_VISIBLE_DEVICES is SLURM's to set (from
# --gres), and the thread counts follow the CPUs SLURM gave the job.
JOB_ENV = ("MMAR_ROOT", "AUTOML_METRICS_FILE", "AUTOML_JOB_NAME", "PYTHONUNBUFFERED")
EXIT_FILE = "slurm_exit"  # the trainer's exit status, written by the job script when it ends
RECORD_FILE = "slurm_job.json"  # the SLURM job id of this folder, written by the tool after sbatch
SCRIPT_FILE = "slurm_job.sh"
SUBMITTING_FILE = "slurm_submitting.json"  # sbatch was started for this folder (its pid, host)


def render_script(options: SlurmOptions, *, job_label: str, directory: str, command: Iterable[str],
                  env: dict[str, str]) -> str:
    """The job script: cluster settings as #SBATCH lines, the setup snippet, then the trainer
    run in the job folder, with the signals of requeue and preemption turned into a
    checkpoint (SIGTERM to the trainer) and, for the time-limit warning, a requeue."""
    q = shlex.quote
    exports = "\n".join(f"export {key}={q(str(env[key]))}" for key in JOB_ENV if key in env)
    argv = " ".join(q(str(part)) for part in command)
    setup = options.setup.strip("\n")
    return f"""#!/bin/bash
{chr(10).join(options.sbatch_lines())}
# automl job {q(job_label)}: written by automl; the tool submits it with --requeue,
# --open-mode=append and --signal=B:USR1@{int(options.signal_seconds)}.
set -u
cd {q(directory)} || exit 1
# --- setup (from the run's SLURM options) ---
{setup}
# --- end of setup ---
{exports}
export OMP_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-1}}" MKL_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-1}}"
echo "automl-slurm: job ${{SLURM_JOB_ID:-?}} start SLURM_RESTART_COUNT=${{SLURM_RESTART_COUNT:-0}} on $(hostname)" \\
     "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES-unset}} at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
rm -f {EXIT_FILE}
requeue=0
child=
# The trainer checkpoints on SIGTERM. USR1 is the time-limit warning (sent to this shell
# only, B:): stop the trainer at its checkpoint, then requeue. SIGTERM comes on preemption,
# scontrol requeue and scancel; SLURM decides what follows, and the trainer gets it too.
on_usr1() {{ requeue=1; echo "automl-slurm: USR1: time limit near; checkpointing, then requeue"
            [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; }}
on_term() {{ echo "automl-slurm: SIGTERM (preempted, requeued or cancelled): checkpointing"
            [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; }}
trap on_usr1 USR1
trap on_term TERM
# USR1 ignored in the trainer unless it handles it itself: `scancel --signal=USR1 --batch`
# reaches every process of the batch step, and its default action would kill the trainer
(trap '' USR1; exec {argv}) &
child=$!
# a trapped signal ends `wait` early: wait again until the trainer itself has ended
while :; do
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break
done
echo "$rc" > {EXIT_FILE}
echo "automl-slurm: trainer exited with $rc"
if [ "$requeue" = 1 ] && [ "$rc" != 0 ]; then
  echo "automl-slurm: requeueing job ${{SLURM_JOB_ID:-?}}"
  scontrol requeue "${{SLURM_JOB_ID}}" && exit 0
fi
exit "$rc"
"""


def job_name(run_id: str, name: str, directory: str) -> str:
    """A SLURM job name unique to the job folder (found again after the tool died between
    sbatch and recording the job id); only characters that need no quoting anywhere."""
    digest = hashlib.sha1(directory.encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", f"automl.{run_id}.{name}")[:100] + f".{digest}"


def sbatch_argv(options: SlurmOptions, *, name: str, directory: str, log_file: str, script: str) -> list[str]:
    """sbatch's argv (run without a shell): per-job values here, the cluster's in the script."""
    # sbatch expands %j, %x, ... in --output: a literal % in the path is written %%
    argv = ["sbatch", "--parsable", f"--job-name={name}", f"--chdir={directory}",
            f"--output={log_file.replace('%', '%%')}",
            "--open-mode=append", "--requeue"]
    if options.signal_seconds:
        argv.append(f"--signal=B:USR1@{int(options.signal_seconds)}")
    return argv + [script]
