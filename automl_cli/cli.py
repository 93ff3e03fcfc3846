"""The `automl` command line: run, runs, status, plan, validate, train, report, algorithms, and the
admin commands that act on a running search from another shell (workers, summary, suspend,
resume, abort, stop)."""
from __future__ import annotations

import inspect
import json
import re
import sqlite3
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .errors import AutomlError, ConfigError, NoLiveRun, UsageError, disk_full
from .trace import TRACEOUT, add_plain_row
from .trainers import TRAINERS


def _mmar_or_cwd(ctx, param, value: str | None) -> str:
    """-m's default: the current folder when it is an MMAR, as Clara's users run commands
    from inside one; elsewhere one line saying so (exit 2)."""
    if value is not None:
        return value
    here = Path.cwd()
    if (here / "config" / "config_train.json").is_file():
        return str(here)
    raise UsageError(f"no -m MMAR given and the current folder {here} is not an MMAR (no config/config_train.json)")


MMAR_OPTION = click.option("-m", "--mmar", "mmar", callback=_mmar_or_cwd, type=click.Path(),
                           help="The MMAR folder (config/, commands/, models/, ...).  "
                                "[default: the current folder, when it is an MMAR]")


def _run_options(run_help: str = "The run to show."):
    """-m, --run-id and --automlconf: how every command that reads or acts on one run finds it."""
    def add(command):
        for option in (click.option("--automlconf", help="AutoML config file in config/ (its MMARHandler work_dir "
                                                         "says where runs are).  [default: config_automl.json]"),
                       click.option("--run-id", required=True,
                                    help=f"{run_help}  `latest`: the newest run (`automl runs` lists them)."),
                       MMAR_OPTION):
            command = option(command)
        return command
    return add


def _console() -> Console:
    """Tables for people: terminal width in a terminal, wide enough not to wrap in a log file."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)


def _warn(message: str) -> None:
    click.echo(f"automl: warning: {message}", err=True)


def first_sentence(text: str) -> str:
    """A docstring's first sentence, whole: click's own short help stops at "e.g." and cuts
    at the terminal's width."""
    paragraph = " ".join(inspect.cleandoc(text or "").split("\n\n")[0].split())
    match = re.search(r"(?<![.])(?<!\be\.g)(?<!\bi\.e)\.(\s|$)", paragraph)  # an ellipsis ends none
    return paragraph[:match.start() + 1] if match else paragraph


class _Commands(click.Group):
    """`automl --help` lists each command with its first sentence whole (wrapped, never cut)."""

    def format_commands(self, ctx, formatter) -> None:
        rows = [(name, first_sentence(command.help)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="automl-cli")
def cli() -> None:
    """Hyperparameter search for deep-learning MMARs, on GPU workers or CPU."""


class _BackendChoice(click.Choice):
    """--backend's names, read from backends/registry.py only when the option is parsed or
    shown: no backend's code is imported at start-up, and a registered one is selectable."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self):
        from .backends.registry import names

        return tuple(names())

    @choices.setter
    def choices(self, _value) -> None:  # click's __init__ sets them; the registry holds them
        pass


@cli.command(context_settings={"ignore_unknown_options": False})
@MMAR_OPTION
@click.option("--run-id", help="Names the run; its folder is <mmar>/automl/<run-id>.")
@click.option("--workers", help="GPU lists per worker, e.g. 0:1 (two workers) or 0,1:2.  [default: 0]")
@click.option("--algorithm", help="Overrides config_automl.json's controller name (see `automl algorithms`).")
@click.option("--automlconf", help="AutoML config file in config/.  [default: config_automl.json]")
@click.option("--trainconf", help="Training config file in config/.  [default: config_train.json]")
@click.option("--traceout", type=click.Choice(TRACEOUT), help="Where trace lines go.  [default: file]")
@click.option("--resume", is_flag=True,
              help="Continue this run id from its journal (after a crash, a kill or Ctrl-C), with the options and "
                   "--set pairs it was started with (give only what changes: --workers, --traceout, --slurm-*).")
@click.option("--rebuild", is_flag=True,
              help="With --resume: continue approximately when the journal no longer replays exactly (e.g. after a "
                   "library upgrade): finished jobs are kept and the algorithm is rebuilt from their results.")
@click.option("--set", "use_set", is_flag=True,
              help="Read the following KEY=VALUE words as settings, as Clara's script passes them: "
                   "run_id, workers, traceout, trainconf, automlconf, algorithm, seed, or any algorithm parameter.")
@click.option("--backend", type=_BackendChoice(),
              help="Where jobs run: processes here, or one sbatch job each (see docs/slurm.md).  "
                   "[default: local, or slurm with executor SlurmExecutor]")
@click.option("--time-budget",
              help="Search for this long (90s, 45m, 12h, 1d, 1h30m or seconds; the run's own time, over its "
                   "resumes): no new job after it; the best so far is published.  [default: config_automl.json's "
                   "automl_time_budget, else none]")
@click.option("--time-budget-hard/--time-budget-soft", default=None,
              help="At the time budget, stop the running jobs too (they keep their checkpoints), or let them "
                   "finish.  [default: soft]")
@click.option("--slurm-partition", help="sbatch --partition.")
@click.option("--slurm-account", help="sbatch --account.")
@click.option("--slurm-qos", help="sbatch --qos.")
@click.option("--slurm-time", help="sbatch --time, the time limit of one job, e.g. 4:00:00 (jobs requeue at it).")
@click.option("--slurm-gres", help="sbatch --gres of one job ('' for none).  [default: gpu:1]")
@click.option("--slurm-cpus", type=int, help="sbatch --cpus-per-task of one job.  [default: 1]")
@click.option("--slurm-mem", help="sbatch --mem of one job, e.g. 16G.")
@click.option("--slurm-sbatch", multiple=True,
              help="More sbatch options, one per use, e.g. --slurm-sbatch=--constraint=a100.")
@click.option("--slurm-max-jobs", type=int, help="The most SLURM jobs queued or running at once.  [default: 4]")
@click.option("--slurm-setup",
              help="Shell lines run before the trainer (module load, venv activation); @FILE reads a file.")
@click.option("--slurm-signal-seconds", type=int,
              help="Seconds before the time limit at which a job checkpoints and requeues (0: never).  [default: 120]")
@click.option("--slurm-poll-seconds", type=float, help="Seconds between squeue calls.  [default: 5]")
@click.argument("pairs", nargs=-1, metavar="[KEY=VALUE]...")
def run(mmar, run_id, workers, algorithm, automlconf, trainconf, traceout, resume, rebuild, use_set, pairs, backend,
        time_budget, time_budget_hard, **slurm_flags) -> None:
    """Run a search: train the configurations the algorithm picks, keep the best."""
    from .resume import invocation, merge_invocation
    from .run import check_resume, run_search
    from .runconfig import check_trainer, load_mmar, make_algorithm, parse_set_pairs, settings_for_run

    values = parse_set_pairs(pairs, warn=_warn)
    run_id = run_id or values.get("run_id")
    if rebuild and not resume:
        raise UsageError("--rebuild continues a run whose journal no longer replays: give it with --resume")
    asked = invocation(values, {"algorithm": algorithm, "trainconf": trainconf, "automlconf": automlconf,
                                "workers": workers, "traceout": traceout, "backend": backend,
                                "time_budget": time_budget, "time_budget_hard": time_budget_hard},
                       _slurm_values(slurm_flags))
    record = None
    if resume and run_id:
        record = _recorded_run(mmar, run_id, asked["automlconf"])
        if record is not None and record.finished is not None:
            _already_finished(record, run_id)
            return
        if record is not None and record.invocation is not None:  # none in a journal of an older version
            asked = merge_invocation(run_id, record.invocation, asked)
    values = asked["set"]
    loaded = load_mmar(mmar, asked["trainconf"], asked["automlconf"], values)
    traceout = asked["traceout"]
    if traceout is not None and traceout not in TRACEOUT:
        raise UsageError(f"bad traceout '{traceout}': expected one of {', '.join(TRACEOUT)}")
    warnings: list[str] = []  # shown once every check has passed, so an error stays one line
    settings, _ = settings_for_run(
        loaded, run_id=run_id, workers=asked["workers"], algorithm=asked["algorithm"], traceout=traceout,
        set_values=values, warn=warnings.append, backend=asked["backend"], slurm=asked["slurm"],
        budget=asked.get("time_budget"), budget_hard=asked.get("time_budget_hard"),
        budget_option=time_budget is not None,
        # a run started without a budget keeps its schedule: lengthening it would not replay
        fill=record is None or "time_budget" in record.started)
    settings.invocation = asked
    check_trainer(loaded, isolated=True)  # what would fail in every job fails here, before the run folder exists
    algo = make_algorithm(loaded, settings, asked["algorithm"])
    if resume:
        check_resume(settings, algo)  # a resume it cannot honour is one line, before anything else is said
    for warning in warnings:
        _warn(warning)
    click.echo(f"automl: MMAR {loaded.mmar.root}; configs {loaded.train_path.name}, {loaded.automl_path.name}")
    click.echo(f"automl: run folder {settings.run_dir}")
    view = run_search(settings, algo, resume=resume, rebuild=rebuild)
    _print_leaderboard(view)
    best = view.best()
    click.echo(f"best {view.metric_name} {best.metric:.4f} from {best.name}; config and weights in "
               f"{settings.run_dir / 'best'}")


def _recorded_run(mmar: str, run_id: str, automlconf: str | None):
    """What the journal of run `run_id` recorded (resume.RunRecord), or None for a run that
    never got going; a damaged journal is one line (exit 2)."""
    from .resume import read_record
    from .runfolder import find_run

    try:
        run_dir = find_run(mmar, run_id, automlconf, latest=False)
    except UsageError:
        return None  # no journal: nothing to resume, the run starts (run_search checks the folder)
    return read_record(run_dir)


def _already_finished(record, run_id: str) -> None:
    """--resume of a run with nothing left to do: it says so and changes nothing."""
    from .errors import SearchFailed

    message = record.finished.get("message") or record.finished.get("status")
    if record.finished.get("status") != "completed":
        raise SearchFailed(f"run '{run_id}' already finished: {message}; nothing to resume (start another run with a "
                           "new --run-id)")
    click.echo(f"automl: run '{run_id}' is already finished, nothing to resume: {message}")
    _print_leaderboard(record.view())


def _slurm_values(flags: dict) -> dict:
    """--slurm-* flags as SlurmOptions fields (None: not given)."""
    values = {key[len("slurm_"):]: value for key, value in flags.items()}
    values["extra"] = list(values.pop("sbatch")) or None
    setup = values.get("setup")
    if setup is not None and setup.startswith("@"):
        try:
            values["setup"] = Path(setup[1:]).read_text()
        except OSError as exc:
            raise UsageError(f"bad --slurm-setup '{setup}': cannot read {setup[1:]}: {exc.strerror}") from None
    return values


def _print_leaderboard(view, limit: int = 10) -> None:
    from .status import format_params

    console = _console()
    board = view.leaderboard()
    shown = f"top {limit} of {len(board)} scored jobs" if len(board) > limit else f"{len(board)} scored jobs"
    table = Table(title=f"leaderboard of run {view.run_id} ({view.metric_name}, {view.settings.get('direction')}): "
                        f"{shown}", title_justify="left")
    for column in ("rank", "job", view.metric_name, "epoch", "status", "params"):
        table.add_column(column)
    for rank, job in enumerate(board[:limit], start=1):
        add_plain_row(table, str(rank), job.name, f"{job.metric:.4f}", str(job.best_epoch), job.status,
                      format_params(job.params))
    failed = [j for j in view.jobs.values() if j.status == "failed"]
    console.print(table)
    if failed:
        console.print(f"{len(failed)} job(s) failed: " + ", ".join(f"{j.name} ({j.cause})" for j in failed[:5]))


@cli.command()
@_run_options()
@click.option("--json", "as_json", is_flag=True, help="Print the TAO-style status JSON.")
@click.option("--watch", is_flag=True, help="Keep refreshing until the run ends (Ctrl-C to leave; the run goes on).")
@click.option("--interval", default=5.0, type=click.FloatRange(min=0.2), help="Seconds between refreshes with --watch.")
def status(mmar, run_id, automlconf, as_json, watch, interval) -> None:
    """Show a run's jobs and best result, from its journal (safe while it runs)."""
    import time

    from rich.console import Group

    from .runfolder import find_run
    from .status import RunView

    run_dir = find_run(mmar, run_id, automlconf)
    view = RunView.load(run_dir)
    if as_json:
        click.echo(json.dumps(view.status_json(), indent=2))
        return
    console = _console()
    if not watch:
        console.print(Group(*_status_view(view)))
        return
    if not sys.stdout.isatty():  # logs get one summary line per refresh, never control codes
        while True:
            console.print(_status_view(view)[0])
            if view.status != "running":
                return
            time.sleep(interval)
            view = RunView.load(run_dir)
    from rich.live import Live  # only a terminal's --watch redraws in place

    with Live(Group(*_status_view(view)), console=console, auto_refresh=False) as live:
        while view.status == "running":
            time.sleep(interval)
            view = RunView.load(run_dir)
            live.update(Group(*_status_view(view)), refresh=True)


def _status_view(view) -> list:
    """The summary line, the best so far and a table of every job."""
    from rich.text import Text

    from .status import _clock, format_params

    best = view.best()
    counts = ", ".join(f"{n} {s}" for s, n in sorted(view.counts().items())) or "no jobs yet"
    parts: list = [Text(f"run {view.run_id}: {view.status}; algorithm {view.settings.get('algorithm')}; jobs: {counts}"
                        f" of {view.settings.get('planned_jobs') or '?'} planned; eta {_clock(view.eta()) or '?'}")]
    if best:
        parts.append(Text(f"best {view.metric_name} {best.metric:.4f} from {best.name} (epoch {best.best_epoch}) "
                          f"{format_params(best.params)}"))
    if view.control_notes():
        parts.append(Text("; ".join(view.control_notes())))
    table = Table(title_justify="left")
    for column in ("job", "worker", "trial", "rung", "status", "epoch", view.metric_name, "eta", "params", "why"):
        table.add_column(column)
    for job in sorted(view.jobs.values(), key=lambda j: j.job_id):
        add_plain_row(table, job.name, job.worker, str(job.trial_id), job.place, job.status,
                      f"{job.epoch}/{job.stop_epoch}", "-" if job.metric is None else f"{job.metric:.4f}",
                      _clock(job.eta()) or "?", format_params(job.params), job.note[:90])
    return parts + [table]


# -- acting on a running search (read: workers, summary; act: suspend, resume, abort, stop) ------
TIMEOUT_OPTION = click.option("--timeout", default=10.0, type=click.FloatRange(min=0.1),
                              help="Seconds to wait for the run's answer.")


def _acting_options(command):
    """-m, --run-id, --automlconf and --timeout: what every command acting on a live run takes."""
    return _run_options("The running search to act on.")(TIMEOUT_OPTION(command))


def _act(mmar: str, run_id: str, automlconf: str | None, command: str, target: str, timeout: float) -> None:
    from .control import send
    from .runfolder import find_run

    run_dir = find_run(mmar, run_id, automlconf)
    click.echo(send(run_dir, run_dir.name, command, target, timeout))


@cli.command()
@click.argument("worker")
@_acting_options
def suspend(worker, mmar, run_id, automlconf, timeout) -> None:
    """Give WORKER (e.g. W2) no new job; the job it runs now goes on."""
    _act(mmar, run_id, automlconf, "suspend", worker, timeout)


@cli.command("resume")
@click.argument("worker")
@_acting_options
def resume_worker(worker, mmar, run_id, automlconf, timeout) -> None:
    """Give a suspended WORKER jobs again."""
    _act(mmar, run_id, automlconf, "resume", worker, timeout)


@cli.command()
@click.argument("worker_or_job", metavar="WORKER|JOB")
@_acting_options
def abort(worker_or_job, mmar, run_id, automlconf, timeout) -> None:
    """Stop the job a worker runs (W1) or a job by name (W1_1_J7): it ends as stopped, scored
    on the epochs it reported, and the search goes on."""
    _act(mmar, run_id, automlconf, "abort", worker_or_job, timeout)


@cli.command()
@_acting_options
@click.option("--wait", is_flag=True, help="Return only when the run has finished, with its closing message.")
def stop(mmar, run_id, automlconf, timeout, wait) -> None:
    """Finish the search gracefully: no new jobs, the running ones end, best/ is published and
    the run exits 0; `automl run ... --resume` continues it later."""
    import time

    from .control import is_running, send
    from .runfolder import find_run
    from .status import RunView

    run_dir = find_run(mmar, run_id, automlconf)
    run_id = run_dir.name  # `latest` named the newest run
    click.echo(send(run_dir, run_id, "stop", "", timeout))
    if not wait:
        return
    while is_running(run_dir):
        time.sleep(0.5)
    view = RunView.load(run_dir)
    if view.status == "running":
        raise NoLiveRun(f"run '{run_id}' ended without finishing (killed?); --resume continues it")
    click.echo(view.message or f"run '{run_id}' {view.status}")
    if view.status != "completed":
        sys.exit(1)


@cli.command("workers")
@_run_options()
@click.option("--json", "as_json", is_flag=True, help="Print the workers as JSON.")
def workers_command(mmar, run_id, automlconf, as_json) -> None:
    """Show each worker: its GPUs, state (idle, busy, suspended), jobs run so far and current job."""
    view = _load_run(mmar, run_id, automlconf)
    header = f"run {view.run_id}: {view.status}"
    if view.stop_requested and view.status == "running":
        header += f"; stopping ({view.stop_requested})"

    def cells(row: dict) -> list:
        current = "-"
        if row["current_job"]:
            current = f"{row['current_job']} (epoch {row['epoch']})" + (f" on {row['where']}" if row["where"] else "")
        return [row["worker"], row["gpus"], row["state"], str(row["jobs"]), current]
    _print_rows(_worker_rows(view), as_json, header, ("worker", "GPUs", "state", "jobs", "current job"), cells)


def _load_run(mmar: str, run_id: str, automlconf: str | None):
    from .runfolder import find_run
    from .status import RunView

    return RunView.load(find_run(mmar, run_id, automlconf))


def _print_rows(rows: list[dict], as_json: bool, title: str, columns: tuple[str, ...], cells) -> None:
    """Rows as JSON, or as a table whose row cells come from `cells(row)`."""
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        add_plain_row(table, *cells(row))
    _console().print(table)


def _worker_rows(view) -> list[dict]:
    rows = []
    for worker in view.workers.values():
        job = view.jobs.get(worker.current) if worker.current is not None else None
        rows.append({"worker": worker.name, "gpus": _placement(view, worker), "state": worker.state,
                     "jobs": worker.jobs_run, "current_job": job.name if job else None,
                     "epoch": f"{job.epoch}/{job.stop_epoch}" if job else None, "where": worker.where or None})
    return rows


def _placement(view, worker) -> str:
    """What a worker runs on: its GPUs, CPU, or a slot for one SLURM job (SLURM picks the GPUs)."""
    if view.settings.get("backend") == "slurm":
        return "SLURM slot"
    if view.settings.get("device") == "cpu" or not worker.gpus:
        return "CPU"
    return ",".join(map(str, worker.gpus))


@cli.command()
@_run_options()
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON (times in ISO 8601).")
def summary(mmar, run_id, automlconf, as_json) -> None:
    """One row per job: start, end, job folder, score, worker and status."""
    view = _load_run(mmar, run_id, automlconf)

    def cells(row: dict) -> list:
        status = row["status"] + (f" ({row['cause'][:80]})" if row["cause"] else "")
        return [_local_time(row["start"]), _local_time(row["end"]), row["folder"],
                "-" if row["score"] is None else f"{row['score']:.4f}", row["worker"], status]
    _print_rows(_summary_rows(view), as_json, f"jobs of run {view.run_id}: {view.status}; score: best "
                f"{view.metric_name} ({view.settings.get('direction')})",
                ("start", "end", "job folder", "score", "worker", "status"), cells)


def _summary_rows(view) -> list[dict]:
    import datetime as dt

    def stamp(when):
        return None if when is None else dt.datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")

    return [{"job": j.name, "trial": j.trial_id, "start": stamp(j.started), "end": stamp(j.ended),
             "folder": j.directory, "score": j.metric, "epoch": j.epoch, "worker": j.worker, "status": j.status,
             "cause": j.cause} for j in sorted(view.jobs.values(), key=lambda j: j.job_id)]


def _local_time(iso: str | None) -> str:
    return "-" if iso is None else iso[:19].replace("T", " ")


@cli.command("runs")
@MMAR_OPTION
@click.option("--automlconf", help="AutoML config file in config/ (its MMARHandler work_dir says where runs are).  "
                                   "[default: config_automl.json]")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON (times in ISO 8601).")
def runs_command(mmar, automlconf, as_json) -> None:
    """List every run of the MMAR, newest first: algorithm, status, jobs, best score, start and duration."""
    from .mmar import MMAR
    from .runfolder import run_folders, run_places
    from .runlist import COLUMNS, row_cells, run_row

    root = MMAR.open(mmar)
    rows = [run_row(folder) for folder in run_folders(root, automlconf)]
    if not rows and not as_json:
        click.echo(f"no runs yet in {' or '.join(str(p) for p in run_places(root, automlconf))}")
        return
    _print_rows(rows, as_json, f"runs of {root.root}, newest first", COLUMNS, row_cells)


@cli.command()
@MMAR_OPTION
@click.option("--run-id", help="Open on this run (`latest`: the newest); every run of the MMAR is listed at /.")
@click.option("--automlconf", help="AutoML config file in config/ (its MMARHandler work_dir says where runs are).  "
                                   "[default: config_automl.json]")
@click.option("--host", default="127.0.0.1",
              help="Address to listen on; 0.0.0.0 shows the runs to anyone who can reach this machine.")
@click.option("--port", default=8765, type=click.IntRange(0, 65535), help="Port to listen on (0: a free one).")
@click.option("--refresh", default=2.0, type=click.FloatRange(min=0.1),
              help="Seconds between checks of a journal while a page waits for news of its run.")
def dashboard(mmar, run_id, automlconf, host, port, refresh) -> None:
    """Serve the runs' report pages live in a browser, refreshed from the journals while they
    run (read-only; Ctrl-C stops it)."""
    import signal
    import socket
    from urllib.parse import quote

    from .dashboard import serve
    from .mmar import MMAR
    from .runfolder import find_run

    root = MMAR.open(mmar)
    path = "/"
    if run_id is not None:
        path = f"/run/{quote(find_run(mmar, run_id, automlconf).name)}"  # an unknown id: one line listing the runs
    try:
        server = serve(root, automlconf, host, port, refresh)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = server.server_address[1]
    if host in ("0.0.0.0", ""):
        _warn(f"listening on every interface (--host {host or '0.0.0.0'}): anyone who can reach this machine "
              f"can read these runs")
        shown = socket.gethostname()
    else:
        shown = host
    click.echo(f"automl dashboard: runs of {root.root} at http://{shown}:{bound}{path} (Ctrl-C to stop)")
    sys.stdout.flush()

    def stopped(signum, frame):
        raise KeyboardInterrupt  # `kill` stops it as cleanly as Ctrl-C
    signal.signal(signal.SIGTERM, stopped)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    click.echo("automl dashboard: stopped")


@cli.command()
@MMAR_OPTION
@click.option("--algorithm", help="Overrides config_automl.json's controller name.")
@click.option("--workers", help="Worker spec, as for `automl run` (only the count matters here).  [default: the "
                                "workers= the MMAR's commands/automl.sh passes, else run's default 0: one worker]")
@click.option("--epoch-seconds", type=click.FloatRange(min=0, min_open=True),
              help="Seconds one epoch takes.  [default: measured from the newest earlier run]")
@click.option("--startup-seconds", type=click.FloatRange(min=0),
              help="Seconds a job takes before its first epoch (process, imports, data loading), added to every "
                   "job.  [default: measured from the newest earlier run]")
@click.option("--automlconf", help="AutoML config file in config/.  [default: config_automl.json]")
@click.option("--trainconf", help="Training config file in config/.  [default: config_train.json]")
@click.option("--time-budget", help="Show what fits in this time (90s, 45m, 12h, 1d, 1h30m or seconds), as "
                                     "`run --time-budget` would search.  [default: config_automl.json's]")
@click.option("--time-budget-hard/--time-budget-soft", default=None,
              help="At the budget the running jobs are stopped, or finish, as for `run`.  [default: soft]")
@click.option("--set", "use_set", is_flag=True, help="Read the following KEY=VALUE words as settings, as for `run`.")
@click.argument("pairs", nargs=-1, metavar="[KEY=VALUE]...")
def plan(mmar, algorithm, workers, epoch_seconds, startup_seconds, automlconf, trainconf, use_set, pairs, time_budget,
         time_budget_hard) -> None:
    """Show the schedule, the number of jobs and epochs, and an estimated wall time (saying
    what it assumed: workers, seconds per epoch, start-up per job)."""
    from .plan import make_plan, measure, render
    from .runconfig import RUN_KEYS, ALIASES, controller, fill_budget, load_mmar, parse_set_pairs, run_seed
    from .runconfig import time_budget as read_time_budget
    from .runfolder import work_dir_of

    values = parse_set_pairs(pairs, warn=_warn)
    loaded = load_mmar(mmar, trainconf or values.get("trainconf"), automlconf or values.get("automlconf"), values)
    if "path" in loaded.automl_doc.get("controller", {}) and not (algorithm or values.get("algorithm")):
        raise UsageError(f"cannot plan the controller {loaded.automl_doc['controller']['path']}: a user's controller "
                         "decides as results come in; plan one of ours with --algorithm NAME")
    name, params = controller(loaded, algorithm or values.get("algorithm"))
    params.update({ALIASES.get(k, k): v for k, v in values.items() if k not in RUN_KEYS and k not in loaded.variables})
    seed = run_seed(loaded, values)
    n_workers, workers_source = _plan_workers(loaded, workers, values.get("workers"))
    measured = measure(work_dir_of(loaded.mmar, automlconf or values.get("automlconf")))
    source = "given"
    if not epoch_seconds:
        epoch_seconds, source = measured.epoch_seconds, measured.epoch_source
    if startup_seconds is not None:
        startup_source = "given"
    else:
        startup_seconds, startup_source = measured.startup_seconds, measured.startup_source
    given = time_budget if time_budget is not None else values.get("automl_time_budget")
    hard = time_budget_hard if time_budget_hard is not None else values.get("automl_time_budget_hard")
    budget, hard = read_time_budget(loaded, given, hard, option=time_budget is not None)
    # the schedule a run with this budget gets; without the epoch time nothing bounds its simulation
    notes = fill_budget(name, params, loaded.max_epochs, budget) if epoch_seconds else []
    result = make_plan(loaded.space, name, params, loaded.max_epochs, n_workers, epoch_seconds, source,
                       seed=seed, time_budget=budget, time_budget_hard=hard, workers_source=workers_source,
                       startup_seconds=startup_seconds, startup_source=startup_source)
    result.reasons = notes + result.reasons
    for line in render(result):
        click.echo(line)


def _plan_workers(loaded, option: str | None, pair: str | None) -> tuple[int, str]:
    """How many workers `automl run` would have, and where that number comes from: SLURM's
    most jobs at a time, --workers (or workers=), the workers= the MMAR's commands/automl.sh
    passes, else run's own default (0: one worker)."""
    from .backends import registry as backends
    from .plan import mmar_workers
    from .runconfig import check_executor
    from .workers import parse_workers

    executor = check_executor(loaded)
    if backends.executors().get(executor.get("name", "MMARExecutor")) == "slurm":
        from .backends.slurm import slurm_options

        most = slurm_options(loaded, executor, {}).max_jobs
        where = "config_automl.json's executor max_jobs" if "max_jobs" in (executor.get("args") or {}) else \
            "SlurmExecutor's default max_jobs"
        ignored = "; --workers is ignored with SLURM, as by run" if (option or pair) is not None else ""
        return most, f"SLURM: up to {most} jobs at a time, {where}{ignored}"
    if option is not None:
        return len(parse_workers(option)), f"--workers {option}"
    if pair is not None:
        return len(parse_workers(pair)), f"workers={pair} given"
    found = mmar_workers(loaded.mmar.root)
    if found is not None:
        return len(parse_workers(found[0])), found[1]
    return 1, "automl run's default --workers 0; give --workers to plan more"


@cli.command()
@MMAR_OPTION
@click.option("--automlconf", help="AutoML config file in config/.  [default: config_automl.json]")
@click.option("--trainconf", help="Training config file in config/.  [default: config_train.json]")
def validate(mmar, automlconf, trainconf) -> None:
    """Check the MMAR's config files and print the search space."""
    from .runconfig import check_trainer, describe_components, load_mmar

    loaded = load_mmar(mmar, trainconf, automlconf)
    components = describe_components(loaded) + check_trainer(loaded)
    console = _console()

    table = Table(title=f"search space of {loaded.train_path}", title_justify="left")
    for column in ("name", "applied to", "domain", "type", "range / choices", "scale", "condition", "source"):
        table.add_column(column)
    for p in loaded.space.params:
        add_plain_row(table, p.name, ", ".join(p.places()), p.domain, p.kind, p.describe(), p.scale,
                      p.describe_condition(), f"{p.origin} ({p.source})"
                      + (f"; free tag(s) {', '.join(p.tags)}" if p.tags else ""))
    console.print(table)
    for note in loaded.notes:
        console.print(f"derived: {note}", markup=False)
    for line in components:
        console.print(line, markup=False)
    console.print(f"metric {loaded.metric} ({loaded.direction}); {loaded.max_epochs} epochs per full training")
    console.print("configs are valid")


@cli.command()
@MMAR_OPTION
@click.option("--epochs", type=click.IntRange(min=1), help="Train up to this epoch.  [default: config's epochs]")
@click.option("--trainconf", default="config_train.json", help="Training config file in config/.")
@click.option("--validate-only", is_flag=True, help="Evaluate models/model.pt on the validation data; no training.")
@click.option("--trainer", "chosen", type=click.Choice(("auto",) + TRAINERS), default="auto", show_default=True,
              help="reference (mmar_template's components) or clara4 (MONAI, Clara 4.x configs); auto: by the "
                   "config's form.")
@click.option("--set", "variables", multiple=True, metavar="VAR=VALUE",
              help="Set a {VAR} of the config (environment.json's or a top-level key); repeatable.")
def train(mmar, epochs, trainconf, validate_only, chosen, variables) -> None:
    """Train one MMAR once (resumes from models/checkpoint.pt): the reference trainer, or
    MONAI's engines for a Clara 4.x config."""
    from .mmar import MMAR
    from .runconfig import parse_set_pairs
    from .trainers import trainer_for

    root = MMAR.open(mmar)
    config, path = root.load_train_config(trainconf, extra=parse_set_pairs(variables) if variables else None)
    if trainer_for(config, chosen) == "clara4":
        loop = _clara4_trainer(path)
    else:
        from .train import loop
    try:
        _train(loop, config, root, epochs, validate_only)
    except ConfigError:
        raise
    except (ValueError, FileNotFoundError) as exc:  # a component the config names is wrong
        where = getattr(exc, "where", None)
        if where is not None:
            raise ConfigError(path, where, str(exc)) from None
        raise UsageError(f"{path}: {exc}") from None


def _clara4_trainer(path):
    """The Clara 4.x trainer, or one line naming the extra that brings MONAI."""
    from .trainers import require_monai

    require_monai(path)
    from .clara4 import trainer

    return trainer


def _train(loop, config, root, epochs, validate_only) -> None:
    if validate_only:
        result = loop.evaluate(config, root.root, root.root / "models" / "model.pt")
        click.echo(json.dumps(result))
        return
    try:
        loop.train(config, root.root, epochs=epochs)
    except loop.TrainingInterrupted:
        click.echo("automl train: stopped by SIGTERM after saving the checkpoint", err=True)
        sys.exit(143)
    except FloatingPointError as exc:
        click.echo(f"automl train: {exc}", err=True)
        sys.exit(3)


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False),
              help="HTML file to write.  [default: <run>/report.html; several runs: <runs>/compare-A-B.html]")
@click.option("--automlconf", help="AutoML config file in config/ (its MMARHandler work_dir says where runs are).  "
                                   "[default: config_automl.json]")
@click.option("--run-id", "run_ids", required=True, multiple=True,
              help="The run to report on; give it twice or more to compare runs on shared axes.  "
                   "`latest`: the newest run (`automl runs` lists them).")
@MMAR_OPTION
def report(mmar, run_ids, automlconf, out) -> None:
    """Write a self-contained HTML report (leaderboard, curves, importance) and a leaderboard CSV;
    with several --run-id, one page comparing the runs on shared axes."""
    from .report import render_page, write_report
    from .runfolder import find_run
    from .status import RunView

    run_dirs = list(dict.fromkeys(find_run(mmar, run_id, automlconf) for run_id in run_ids))
    views = [RunView.load(run_dir) for run_dir in run_dirs]
    if len(views) > 1:  # beside the first run's folder, where `automl runs` looks: <runs>/compare-A-B.html
        page = Path(out) if out else run_dirs[0].parent / f"compare-{'-'.join(d.name for d in run_dirs)}.html"
        page.write_text(render_page(views))
        click.echo(f"report comparing {', '.join(d.name for d in run_dirs)}: {page}")
        return
    run_dir, view = run_dirs[0], views[0]
    page, table = write_report(view, run_dir, Path(out) if out else run_dir / "report.html")
    click.echo(f"report: {page}\nleaderboard: {table}")
    from . import tensorboard

    if tensorboard.available():
        click.echo(f"tensorboard: tensorboard --logdir {tensorboard.export(view, run_dir)}")
    else:
        click.echo("tensorboard: not installed (pip install 'automl-cli[tensorboard]' to export the run to it)")


@cli.command()
@_run_options("The run whose journal to restore.")
def recover(mmar, run_id, automlconf) -> None:
    """Restore a damaged journal from its last copy (journal.db.bak, taken at each job's end;
    the damaged one is kept aside) and say what was lost; --resume then continues the run."""
    from .run import _lock
    from .runfolder import find_run
    from .store import recover_journal

    run_dir = find_run(mmar, run_id, automlconf)
    run_id = run_dir.name  # `latest` named the newest run
    lock = _lock(run_dir, run_id)  # never under a live run
    try:
        click.echo(recover_journal(run_dir))
    finally:
        lock.close()
    click.echo(f"continue the run with: automl run -m {mmar} --run-id {run_id} --resume")


@cli.command("algorithms")
def algorithms_command() -> None:
    """List every algorithm, its parameters and their defaults: the presets, then the
    SCHEDULER+PROPOSER pairs that are not presets."""
    from .algorithms import catalogue  # metadata only: no numpy, so this lists as fast as --help

    def show(entry) -> None:
        click.echo(f"{entry.name}: {entry.summary}")
        for key, spec in entry.parameters.items():
            click.echo(f"    {key} = {spec.default!r}  {spec.help}")

    for name in sorted(catalogue.PRESETS):
        show(catalogue.PRESETS[name])
    click.echo("")
    click.echo("pairs: any name SCHEDULER+PROPOSER below (a pair that is a preset runs as the preset: "
               + ", ".join(f"{e.pair} = {e.name}" for e in catalogue.PRESETS.values()) + ")")
    click.echo("  schedulers: " + "; ".join(f"{p.name} ({p.summary})" for p in catalogue.SCHEDULERS.values()))
    click.echo("  proposers: " + "; ".join(f"{p.name} ({p.summary})" for p in catalogue.PROPOSERS.values()))
    click.echo("")
    for entry in catalogue.pairs():
        show(entry)


def main() -> None:
    """Entry point: user errors become one line on stderr and their exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("automl: interrupted", err=True)
        sys.exit(130)
    except AutomlError as exc:
        click.echo(f"automl: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (OSError, sqlite3.Error) as exc:  # a write a command makes finds no room: one line too
        full = disk_full(exc)
        if full is None:
            raise
        click.echo(f"automl: error: {full}", err=True)
        sys.exit(full.exit_code)
    except KeyboardInterrupt:
        click.echo("automl: interrupted", err=True)
        sys.exit(130)
