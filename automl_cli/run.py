"""A search on an MMAR: the run folder, its lock, job folders and processes, trace.log,
status.json and, at the end, best/.

The loop itself is `engine.Engine`; this module gives it the backend the run's settings
name (backends/registry.py: local processes or SLURM jobs), whose jobs are clones of the
MMAR, and writes what the user reads.
"""
from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import shutil
import signal
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .algorithms.base import Algorithm
from .backends.base import Job, JobSpec
from .backends import registry as backends
from .backends.local import RUN_MARKER
from .backends.metrics import METRICS_FILE, read_metrics
from .clara.hub import HandlerHub
from .control import ControlInbox
from .engine import Engine, EngineSettings
from .replay import ResumeMismatch
from .errors import DiskFull, Interrupted, UsageError, disk_full
from .files import fsync_directory, write_json_atomic
from .mmar import MMAR, TRAIN_CONFIG, clone_job, load_document, resolve_variables, set_environment
from .space import strip_search
from .status import JobView, RunView, flat_values
from .resume import finished_event, library_versions, replay_broken, space_changes, space_record
from .store import BACKUP, JOURNAL, Journal, read_events
from .trace import Trace
from .workers import device_env, threads_per_worker

if TYPE_CHECKING:  # built by runconfig, which imports the components a run may name
    from .runconfig import RunSettings

_STATUS_EVERY = 1.0


class MMARJobs:
    """Turns a job into a cloned job MMAR, the trainer's command line and its environment."""

    def __init__(self, settings: RunSettings):
        self.s = settings
        self.trial_dirs: dict[int, Path] = {}  # each trial's latest job folder: where its checkpoint is
        self.job_dirs: dict[int, Path] = {}  # every job's latest folder (a donor for PBT's exploit)

    def job_dir(self, job: Job) -> Path:
        return self.s.run_dir / job.name

    def adopt(self, job: Job) -> JobSpec:
        """The spec of a job whose folder a backend found already submitted (SLURM jobs
        outlive the tool): bookkeeping only, the folder is left as it is."""
        job_dir = self.job_dir(job)
        self.trial_dirs[job.trial_id] = self.job_dirs[job.job_id] = job_dir
        return self._spec(job, job_dir)

    def prepare(self, job: Job) -> JobSpec:
        s = self.s
        job_dir = self.job_dir(job)
        if job_dir.exists():  # made by a run that died before journaling the job: nothing refers to it
            shutil.rmtree(job_dir)
        config = s.space.apply(s.train_config, job.params, remove_search=s.remove_search_augs)
        config.update({k: v for k, v in s.variables.items() if k in config})
        job_mmar = clone_job(s.mmar, job_dir, config, train_config_name=s.job_train_config,
                             copy_whole=s.copy_whole_mmar, skip=self._inside_mmar())
        set_environment(job_mmar, {k: v for k, v in s.variables.items() if k not in config})
        previous = self.trial_dirs.get(job.trial_id)
        if job.copy_from_job is not None and job.attempt == 1:  # exploit: continue from the donor's weights
            carry_checkpoint(self.job_dirs[job.copy_from_job], job_dir)
        elif previous is not None:  # a promotion, a retry or a resumed job continues its trial
            carry_checkpoint(previous, job_dir)
        self.trial_dirs[job.trial_id] = self.job_dirs[job.job_id] = job_dir
        return self._spec(job, job_dir)

    def _inside_mmar(self) -> frozenset[str]:
        """The top-level MMAR entry holding the runs, when work_dir is inside the MMAR: never cloned."""
        runs = self.s.run_dir.parent.resolve()
        root = self.s.mmar.root
        if runs == root:
            return frozenset([self.s.run_id])
        return frozenset([runs.relative_to(root).parts[0]]) if runs.is_relative_to(root) else frozenset()

    def _spec(self, job: Job, job_dir: Path) -> JobSpec:
        s = self.s
        env = dict(os.environ)
        env.update({"CUDA_VISIBLE_DEVICES": device_env(job.worker, s.have_gpus), "MMAR_ROOT": str(job_dir),
                    "AUTOML_METRICS_FILE": str(job_dir / METRICS_FILE), "AUTOML_JOB_NAME": job.name,
                    RUN_MARKER: str(s.run_dir.resolve()), "PYTHONUNBUFFERED": "1"})
        if not s.have_gpus:
            threads = str(threads_per_worker(len(s.workers)))
            env.update({"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
        command = [part.format(mmar=job_dir, epochs=job.stop_epoch, trainconf=s.job_train_config)
                   for part in s.train_command]
        return JobSpec(job.job_id, job.name, job_dir, command, env, job_dir / "train.log", job_dir / METRICS_FILE)


def carry_checkpoint(source: Path, target: Path) -> None:
    """A job that continues its trial starts from a copy of the trial's checkpoint and best
    weights. A copy, not a link: many trainers save in place (torch.save opens the same
    file), which through a link would rewrite the earlier job's checkpoint too."""
    if not (source / "models").is_dir():  # deleted since (said in trace.log on resume): from scratch
        return
    for item in (source / "models").iterdir():
        if item.is_file() and item.suffix in (".pt", ".pth", ".ckpt"):
            shutil.copy2(item, target / "models" / item.name)


def _nothing_left_unstarted(run):
    """run_search's guard: a run that finds no room to write before it started (a full disk)
    leaves no run folder behind, only its one-line error; its .lock and empty journal would
    just make the next try need --resume. A folder that was there before is left alone."""
    @functools.wraps(run)
    def guarded(settings: RunSettings, algorithm: Algorithm, **options) -> RunView:
        fresh = not settings.run_dir.exists()
        try:
            return run(settings, algorithm, **options)
        except (OSError, sqlite3.Error, shutil.Error, DiskFull) as exc:
            error = exc if isinstance(exc, DiskFull) else disk_full(exc)
            if error is None:
                raise
            if fresh and not _started(settings.run_dir):
                shutil.rmtree(settings.run_dir, ignore_errors=True)
            DiskFull.said()
            if error is exc:
                raise
            raise error from None
    return guarded


def _started(run_dir: Path) -> bool:
    """Whether the run's journal holds its start (when it cannot be read: whether a job
    folder is there)."""
    path = run_dir / JOURNAL
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        journal = Journal(path, readonly=True)
        try:
            return any(e.kind == "run_started" for e in journal.events())
        finally:
            journal.close()
    except Exception:  # noqa: BLE001 -- unreadable (reading needs room too): keep what holds work
        return any(re.fullmatch(r"W\d+_\d+_J\d+", p.name) for p in run_dir.iterdir())


@_nothing_left_unstarted
def run_search(settings: RunSettings, algorithm: Algorithm, *, resume: bool = False, rebuild: bool = False,
               live: bool | None = None) -> RunView:
    """Run the search in <mmar>/automl/<run_id>/ and publish best/; returns the run's view.
    With `resume`, continue the run from its journal instead (`rebuild`: approximately, the
    algorithm rebuilt from the finished results rather than replayed). A finished run is
    returned as it is; a damaged journal or other settings are refused before anything
    in the run folder changes."""
    run_dir = settings.run_dir
    if resume:
        # a run that never got going is started: requeue scripts can always pass --resume
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock(run_dir, settings.run_id)
        try:
            finished = check_resume(settings, algorithm)
        except BaseException:
            lock.close()
            raise
        if finished is not None:  # nothing left to do: nothing is changed
            lock.close()
            return finished
    else:
        lock = _claim(run_dir, settings.run_id)
    journal = Journal(run_dir / JOURNAL)
    history = list(journal.events()) if resume else []
    kind = backends.get(settings.backend)
    # nothing of a dead run may train on beside the resumed one, nor write epochs after they are read
    stopped = kind.stop_leftovers(settings, history)
    if _recover_metrics(journal, history):
        history = list(journal.events())
    resume = any(e.kind == "run_started" for e in history)
    trace = Trace(run_dir, settings.traceout, live=live)
    versions = library_versions()  # recorded: a resume names the ones that changed when its replay breaks
    status = _StatusWriter(run_dir, trace)
    jobs = MMARJobs(settings)
    backend = kind.create(settings, jobs, trace)
    engine = Engine(
        EngineSettings(settings.run_id, settings.algorithm, settings.space, settings.workers, settings.metric,
                       settings.direction, settings.max_epochs, max_retries=settings.max_retries,
                       job_timeout=settings.job_timeout, time_budget=settings.time_budget,
                       time_budget_hard=settings.time_budget_hard, open_ended=settings.open_ended,
                       info={"mmar": str(settings.mmar.root), "device": "gpu" if settings.have_gpus else "cpu",
                             "config_files": settings.config_files, "backend": settings.backend,
                             **({"variables": settings.variables} if settings.variables else {}),
                             "max_retries": settings.max_retries, "invocation": settings.invocation,
                             "versions": versions},
                       resume_info={"invocation": settings.invocation, "versions": versions}),
        algorithm, backend, journal, trace=trace, refresh=status)
    engine.listeners.append(_JournalCopier(journal, run_dir / BACKUP, trace))
    if hasattr(algorithm, "attach_view"):  # a user's controller names jobs in its outcomes
        algorithm.attach_view(engine.view)
    hub = HandlerHub(settings.handlers, engine, run_dir, settings.mmar.root, trace)
    engine.listeners.append(hub)
    if resume:
        hub.restore(history)
        for event in history:
            if event.kind == "job_started":
                jobs.trial_dirs[event.data["trial_id"]] = Path(event.data["dir"])
                jobs.job_dirs[event.data["job_id"]] = Path(event.data["dir"])
        if stopped:
            trace(f"stopped {len(stopped)} process(es) the previous run's jobs left running (pids "
                  f"{', '.join(map(str, sorted(stopped)))})", level="WARN")
        _missing_folders(history, jobs, trace)
        try:
            engine.resume(history, rebuild=rebuild)
        except ResumeMismatch as exc:
            recorded = next((e.data["versions"] for e in reversed(history)
                             if e.kind in ("run_started", "run_resumed", "run_rebuilt") and "versions" in e.data), None)
            raise UsageError(replay_broken(settings.run_id, str(exc), recorded)) from None
    ControlInbox(run_dir, trace).attach(engine)  # automl suspend|resume|abort|stop from another shell
    where = kind.where(settings)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        trace(f"workers: {where}", key=True)
        for note in settings.notes:
            trace(note, key=True)
        engine.run()
        engine.finish(lambda best: _publish(engine.view, best, run_dir, source=settings.mmar,
                                            train_config_name=settings.job_train_config,
                                            variables=settings.variables))
        return engine.view
    except Interrupted:
        raise Interrupted(f"run '{settings.run_id}' interrupted; continue it with: automl run -m {settings.mmar.root} "
                          f"--run-id {settings.run_id} --resume") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        hub.close()
        status.write(engine.view)
        trace.close()
        journal.close()
        lock.close()


def _publish(view: RunView, best: JobView, run_dir: Path, **options) -> str:
    """best/ from the best job, or, when its folder is gone, from the best whose folder is
    there (the closing message says so)."""
    for job in [best, *(j for j in view.leaderboard() if j.job_id != best.job_id)]:
        if job.directory and (Path(job.directory) / "models").is_dir():
            where = publish_best(view, job, run_dir, **options)
            if job is best:
                return f"best config and weights under {where}"
            return (f"best config and weights under {where} from {job.name}, the best job with a folder (that of "
                    f"{best.name} is missing)")
    return f"best/ not published: the folder of {best.name} is missing"


class _StatusWriter:
    """status.json at most once a second, and the live table at every round."""

    def __init__(self, run_dir: Path, trace: Trace):
        self.path = run_dir / "status.json"
        self.trace = trace
        self.written = 0.0
        self.full = False

    def __call__(self, view: RunView) -> None:
        if time.monotonic() - self.written >= _STATUS_EVERY:
            self.write(view)
        self.trace.show(view)

    def write(self, view: RunView) -> None:
        self.written = time.monotonic()
        DiskFull.check()
        if view.run_id and not self.full:
            try:
                write_json_atomic(self.path, view.status_json())
            except OSError as exc:
                error = disk_full(exc, self.path)
                if error is None:
                    raise
                self.full = True  # no room: the run ends (journal.db has everything status.json says)
                DiskFull.report(error, exc)


def _claim(run_dir: Path, run_id: str):
    """Create the run folder and hold its lock for the run's lifetime."""
    if run_dir.exists():
        raise UsageError(f"run '{run_id}' already exists in {run_dir}; continue it with --resume, or choose "
                         "another run_id (e.g. --set run_id=NEW)")
    run_dir.mkdir(parents=True)
    return _lock(run_dir, run_id)


def _recover_metrics(journal: Journal, history) -> bool:
    """Journal the epochs that jobs left open by a dead run wrote to their metrics files but
    the run never read: the trainer's file is the record, and a job resumed from a checkpoint
    past those epochs would otherwise never report them. True if any were added."""
    open_jobs: dict[int, Path] = {}
    seen: dict[int, set[int]] = {}
    for event in history:
        d = event.data
        if event.kind == "job_started":
            open_jobs[d["job_id"]] = Path(d["dir"])
        elif event.kind == "job_finished":
            open_jobs.pop(d["job_id"], None)
        elif event.kind == "metrics":
            seen.setdefault(d["job_id"], set()).add(d["epoch"])
    added = False
    for job_id, directory in open_jobs.items():
        try:
            lines = read_metrics(directory / METRICS_FILE)
        except OSError:
            continue
        for values in lines:
            epoch = values.get("epoch")  # none in a line being written when the run died (unreadable)
            if isinstance(epoch, int) and epoch not in seen.setdefault(job_id, set()):
                # recovered: stamped now, but not time the run spent (RunView.time_used skips it)
                journal.append("metrics", job_id=job_id, epoch=epoch, values=values, recovered=True)
                seen[job_id].add(epoch)
                added = True
    return added


def check_resume(settings: RunSettings, algorithm: Algorithm) -> RunView | None:
    """What a resume refuses before anything in the run folder changes: a damaged journal
    (store.DamagedJournal) and other settings than the run's. Returns the view of a run
    that is finished (nothing to resume), else None."""
    events = read_events(settings.run_dir, check=True)
    if not any(e.kind == "run_started" for e in events):
        return None  # a run that never got going: it starts
    if finished_event(events) is not None:
        return _view_of(events)
    _check_same_run(settings, algorithm, events)
    return None


def _check_same_run(settings: RunSettings, algorithm: Algorithm, history) -> None:
    """A resumed run must be the run it continues: same algorithm, parameters, seed, metric,
    training and AutoML config files, and the same search space in every detail (a range
    that moved would have jobs continue old checkpoints with values of the new one)."""
    started = next((e.data for e in history if e.kind == "run_started"), None)
    if started is None:
        raise UsageError(f"cannot resume run '{settings.run_id}': its journal has no start")
    changed = space_changes(started.get("space", []), space_record(settings.space))
    if changed:
        raise UsageError(f"cannot resume run '{settings.run_id}': the search space changed: {'; '.join(changed)}; "
                         "put it back as it was, or search the new space in another run (a new --run-id)")
    now = {"algorithm": settings.algorithm, "params": algorithm.params, "seed": algorithm.seed,
           "metric": settings.metric, "direction": settings.direction, "max_epochs": settings.max_epochs}
    if "backend" in started:  # SLURM jobs of the run are re-attached only by the SLURM backend
        now["backend"] = settings.backend
    if settings.variables or started.get("variables"):  # --set values of the config's {VAR}s
        now["variables"] = settings.variables
    then = {k: started.get(k) for k in now}
    for kind, label in (("train", "training config"), ("automl", "AutoML config")):
        if kind in (started.get("config_files") or {}):
            then[label] = Path(started["config_files"][kind]).name
            now[label] = Path(settings.config_files.get(kind, "")).name
    for key in now:
        old, new = then[key], json.loads(json.dumps(now[key]))
        if new == old:
            continue
        what, labels = key, {"params": "algorithm parameter", "variables": "config variable"}
        if isinstance(old, dict) and isinstance(new, dict):  # name the entry that differs
            entry = next(k for k in sorted({*old, *new}, key=str) if old.get(k, _NOTHING) != new.get(k, _NOTHING))
            what, old, new = f"{labels.get(key, key)} {entry}", old.get(entry), new.get(entry)
        raise UsageError(f"cannot resume run '{settings.run_id}': its {what} was {json.dumps(old)}, "
                         f"now {json.dumps(new)}; resume with the settings it started with (--resume alone "
                         "takes them from the journal)")


_NOTHING = object()


def _view_of(events) -> RunView:
    view = RunView()
    for event in events:
        view.apply(event)
    return view


def _missing_folders(history, jobs: MMARJobs, trace: Trace) -> None:
    """A job folder the journal knows but the disk no longer holds: said in trace.log, and
    the trial continues from its latest folder still there, or from scratch; finished jobs'
    results stand (their weights are gone)."""
    folders: dict[int, list[Path]] = {}
    ended = {e.data["job_id"] for e in history if e.kind == "job_finished"
             and e.data.get("status") not in ("interrupted", "retried")}
    names: dict[Path, tuple[int, str]] = {}
    for event in history:
        if event.kind == "job_started":
            folder = Path(event.data["dir"])
            folders.setdefault(event.data["trial_id"], []).append(folder)
            names[folder] = (event.data["job_id"], event.data["name"])
    for trial, paths in folders.items():
        missing = [p for p in dict.fromkeys(paths) if not (p / "models").is_dir()]
        if not missing:
            continue
        left = [p for p in paths if p not in missing]
        for path in missing:
            job_id, name = names[path]
            trace(f"job folder {path} (job {name}) is missing" + (
                "; its result stands in the journal, its weights are lost" if job_id in ended else ""), level="WARN")
        if paths[-1] in missing:
            if left:
                jobs.trial_dirs[trial] = left[-1]
                trace(f"trial {trial}: a job that continues it starts from the checkpoint in {left[-1].name}, the "
                      "latest of its folders still there", level="WARN")
            else:
                jobs.trial_dirs.pop(trial, None)
                trace(f"trial {trial} has no folder left: a job that continues it starts from scratch (epoch 0)",
                      level="WARN")


class _JournalCopier:
    """An engine listener that copies the journal (store.BACKUP) when the run starts or
    resumes, at each job's end and at the run's end: what `automl recover` restores. A copy
    that fails (a full disk) is said once and the run goes on."""

    WHEN = ("run_started", "run_resumed", "job_finished", "run_finished")

    def __init__(self, journal: Journal, target: Path, trace: Trace):
        self.journal, self.target, self.trace = journal, target, trace
        self.failed = False

    def __call__(self, event) -> None:
        if event.kind not in self.WHEN:
            return
        try:
            self.journal.backup(self.target)
        except (OSError, sqlite3.Error) as exc:
            if not self.failed:
                self.failed = True
                self.trace(f"could not copy the journal to {self.target} ({exc}); the run goes on, and will try "
                           "again at the next job's end", level="WARN")
            return
        self.failed = False


def _lock(run_dir: Path, run_id: str):
    """Hold the run folder's lock; the kernel drops it when its owner dies, so a crashed
    run's lock is taken over without anyone cleaning up."""
    lock = open(run_dir / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise UsageError(f"run '{run_id}' is in use by another automl process") from None
    return lock


def publish_best(view: RunView, best: JobView, run_dir: Path, *, source: MMAR | None = None,
                 train_config_name: str = TRAIN_CONFIG, variables: dict | None = None) -> Path:
    """best/: the winning job's training config, resolved, its weights and a summary, as an
    MMAR that `automl train -m best --validate-only` can evaluate.

    The config is the one file the job trained with, as config/config_train.json, with its
    variables substituted from the searched MMAR's environment.json (so data paths point at
    that MMAR's data, not at a job folder that pruning may empty) and no search sections:
    a config to train or deploy as it is, without the other configs of the MMAR."""
    job_dir = Path(best.directory)
    best_dir = run_dir / "best"
    tmp = run_dir / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    job_config = MMAR(job_dir).config_file(train_config_name)
    config = load_document(job_config)
    environment = {**(source or MMAR(job_dir)).environment(), **(variables or {})}
    config = resolve_variables(strip_search(config), environment, job_config)
    try:
        _assemble_best(view, best, job_dir, tmp, config)
    except OSError as exc:  # no half-written best/ left aside (the published one stays as it was)
        shutil.rmtree(tmp, ignore_errors=True)
        error = disk_full(exc)
        if error is None:
            raise
        DiskFull.said()
        raise error from None
    shutil.rmtree(best_dir, ignore_errors=True)
    os.replace(tmp, best_dir)
    fsync_directory(run_dir)
    return best_dir


def _assemble_best(view: RunView, best: JobView, job_dir: Path, tmp: Path, config: dict) -> None:
    """best/'s files, in the folder `tmp` that is renamed into place once complete."""
    (tmp / "config").mkdir(parents=True)
    write_json_atomic(tmp / "config" / TRAIN_CONFIG, config)
    (tmp / "models").mkdir()
    for item in (job_dir / "models").iterdir():
        if item.is_file() and item.suffix in (".pt", ".pth", ".ckpt", ".jsonl"):
            shutil.copy2(item, tmp / "models" / item.name)
    weights = tmp / "models" / "model.pt"
    summary = {"run_id": view.run_id, "job": best.name, "trial_id": best.trial_id, "metric": view.metric_name,
               "direction": view.settings.get("direction"), "value": best.metric, "epoch": best.best_epoch,
               "epochs_trained": best.epoch, "params": flat_values(best.params, view.value_widths),
               "schedule": [{"job": j.name, "trial": j.trial_id, "epochs": [j.start_epoch, j.stop_epoch],
                             "params": flat_values(j.params, view.value_widths), "why": j.note} for j in view.lineage(best)],
               "weights": "models/model.pt" if weights.exists() else None, "source": str(job_dir)}
    write_json_atomic(tmp / "summary.json", summary)


def _raise_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt
