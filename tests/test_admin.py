"""Acting on a running search from another shell: `automl workers`, `summary`, `suspend`,
`resume`, `abort` and `stop` against live runs of the stand-in trainer, and the control
channel's rules (a run that is not running, malformed and stale requests, two commands at
once, a run that does not answer)."""
import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from automl_cli.algorithms import get_algorithm
from automl_cli.backends.simulated import SimulatedBackend
from automl_cli.control import CONTROL_DIR, ControlInbox, send
from automl_cli.engine import Engine, EngineSettings
from automl_cli.errors import NoLiveRun, UsageError
from automl_cli.space import parse_search_space
from automl_cli.status import RunView
from automl_cli.store import JOURNAL, Event, Journal
from automl_cli.workers import Worker
from conftest import ROOT, pace_jobs, run_cli, start_run, wait_for

HOLD = [0.1, 600]  # epoch 1 is reported at once, then jobs stay in epoch 2 until released
QUICK = 0.05


def admin(mmar: Path, run_id: str, *args: str):
    return run_cli(*args, "-m", str(mmar), "--run-id", run_id)


def admin_at_once(mmar: Path, run_id: str, *commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Several admin commands started together, as from several shells; their results in order."""
    env = dict(os.environ)
    started = [subprocess.Popen([sys.executable, "-m", "automl_cli", *args, "-m", str(mmar), "--run-id", run_id],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
               for args in commands]
    outputs = [p.communicate(timeout=120) for p in started]
    return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(started, outputs)]


def view_of(run_dir: Path) -> RunView:
    try:
        return RunView.load(run_dir)
    except Exception:  # the run has not created its journal yet
        return RunView()


def as_json(result) -> list:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(result, code: int, text: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [f"automl: error: {text}"]


def test_one_live_run_suspended_aborted_resumed_stopped_and_continued_from_another_shell(fake_mmar):
    """Every command against one live run (each run start costs seconds on a loaded machine)."""
    pace_jobs(fake_mmar, HOLD)
    tool = start_run(fake_mmar, "--run-id", "adm", "--workers", "0:1", "--set", "automl_max_recommendations=6")
    run_dir = fake_mmar / "automl" / "adm"
    try:
        assert wait_for(lambda: len(v := view_of(run_dir).jobs) == 2 and all(j.epoch == 1 for j in v.values()))

        done = admin(fake_mmar, "adm", "suspend", "W2")
        assert done.returncode == 0 and done.stdout.strip() == "W2 suspended; its job W2_1_J2 runs on", done.stderr
        workers, summary, status, unknown, unknown_job = admin_at_once(
            fake_mmar, "adm", ["workers", "--json"], ["summary", "--json"], ["status"], ["suspend", "W9"],
            ["abort", "W9_1_J1"])
        rows = as_json(workers)
        assert [(r["worker"], r["gpus"], r["state"], r["jobs"], r["current_job"], r["epoch"]) for r in rows] == [
            ("W1", "CPU", "busy", 1, "W1_1_J1", "1/3"), ("W2", "CPU", "suspended (busy)", 1, "W2_1_J2", "1/3")]
        live = as_json(summary)
        assert [(r["job"], r["worker"], r["status"], r["end"]) for r in live] == [
            ("W1_1_J1", "W1", "running", None), ("W2_1_J2", "W2", "running", None)]
        assert all(r["start"] and r["score"] is not None and r["folder"].endswith(r["job"]) for r in live)
        assert "suspended: W2 (no new jobs for them)" in status.stdout
        one_line_error(unknown, 2, "no worker 'W9' (workers: W1, W2)")
        one_line_error(unknown_job, 2, "no worker or job 'W9_1_J1' (workers: W1, W2)")

        # W2's job by its name, then W1's by the worker: W1 gets the next job, W2 (free but
        # suspended) none, although four trials wait
        by_name, by_worker = admin_at_once(fake_mmar, "adm", ["abort", "W2_1_J2"], ["abort", "W1"])
        assert (by_name.stdout.strip(), by_worker.stdout.strip()) == ("job W2_1_J2 stopping", "job W1_1_J1 stopping")
        assert wait_for(lambda: 3 in (v := view_of(run_dir)).jobs and v.jobs[3].epoch == 1)
        view = view_of(run_dir)
        assert [j.worker for j in view.jobs.values()] == ["W1", "W2", "W1"]
        assert [(w.name, w.state, w.jobs_run) for w in view.workers.values()] == [("W1", "busy", 2),
                                                                                  ("W2", "suspended", 1)]

        assert admin(fake_mmar, "adm", "resume", "W2").stdout.strip() == "W2 resumed"
        assert wait_for(lambda: 4 in (v := view_of(run_dir)).jobs and v.jobs[4].worker == "W2")

        waiting = subprocess.Popen([sys.executable, "-m", "automl_cli", "stop", "--wait", "-m", str(fake_mmar),
                                    "--run-id", "adm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=ROOT)
        assert wait_for(lambda: view_of(run_dir).stop_requested)
        again, status = admin_at_once(fake_mmar, "adm", ["stop"], ["status"])
        assert again.stdout.strip() == "run 'adm' is already stopping (asked by automl stop)"
        assert "stopping: asked by automl stop (no new jobs; the running ones end)" in status.stdout
        pace_jobs(fake_mmar, QUICK)  # the two running jobs train on to their end
        out, err = tool.communicate(timeout=60)
        asked, _ = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, asked
        assert asked.splitlines()[0] == ("run 'adm' stopping: no new jobs; its 2 running job(s) end first, then best/ "
                                         "is published (--resume continues the search)")
        assert asked.splitlines()[1].startswith("AutoML run is successful") and "stopped early" in asked
    finally:
        if tool.poll() is None:
            tool.kill()
    assert tool.returncode == 0, err
    view = RunView.load(run_dir)
    assert view.status == "completed" and "stopped early: asked by automl stop" in view.message
    assert [(j.name, j.status, j.cause, j.epoch) for j in view.jobs.values()] == [
        ("W1_1_J1", "stopped", "aborted by the user", 1), ("W2_1_J2", "stopped", "aborted by the user", 1),
        ("W1_1_J3", "completed", "", 3), ("W2_1_J4", "completed", "", 3)]
    assert view.jobs[1].metric is not None and view.jobs[2].metric is not None  # scored on epoch 1
    assert json.loads((run_dir / "best" / "summary.json").read_text())["job"] == view.best().name
    journal = Journal(run_dir / JOURNAL, readonly=True)
    kinds = [e.kind for e in journal.events()]
    journal.close()
    assert [kinds.count(k) for k in ("worker_suspended", "worker_resumed", "stop_requested", "run_stop_requested")] \
        == [1, 1, 2, 1]
    assert "control: 'suspend W2' from pid" in (run_dir / "trace.log").read_text()

    # after the end: every worker idle; one summary row per job
    workers, workers_table, status, summary, table = admin_at_once(
        fake_mmar, "adm", ["workers", "--json"], ["workers"], ["status", "--json"], ["summary", "--json"], ["summary"])
    assert [(r["worker"], r["state"], r["jobs"], r["current_job"]) for r in as_json(workers)] == [
        ("W1", "idle", 2, None), ("W2", "idle", 2, None)]
    assert "run adm: completed" in workers_table.stdout
    assert as_json(status)["adm"]["stop_requested"] == "asked by automl stop"
    final = as_json(summary)
    assert [r["job"] for r in final] == [j.name for j in view.jobs.values()]
    assert all(r["end"] >= r["start"] for r in final)
    assert table.returncode == 0
    for job in view.jobs.values():
        line = next(line for line in table.stdout.splitlines() if job.directory in line)
        assert job.worker in line and job.status in line and f"{job.metric:.4f}" in line
    assert "stopped (aborted by the user)" in table.stdout

    # a run that is not running: one line, exit 1, nothing written
    before = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))
    for result in admin_at_once(fake_mmar, "adm", ["suspend", "W1"], ["resume", "W1"], ["abort", "W1"], ["stop"]):
        one_line_error(result, 1, "run 'adm' is not running")
    assert sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")) == before
    one_line_error(admin(fake_mmar, "nope", "stop"), 2, f"no run 'nope' in {fake_mmar / 'automl'}; runs there, "
                   "newest first: adm (automl runs lists them)")

    # --resume continues the stopped search to its 6 trials, every worker taking jobs again
    again = run_cli("run", "-m", str(fake_mmar), "--run-id", "adm", "--workers", "0:1", "--resume",
                    "--set", "automl_max_recommendations=6")
    assert again.returncode == 0, again.stderr
    view = RunView.load(run_dir)
    assert [j.status for j in view.jobs.values()][2:] == ["completed"] * 4
    assert view.stop_requested is None and "stopped early" not in view.message
    assert sum(w.jobs_run for w in view.workers.values()) == 6 and not view.suspended_workers()


# -- the channel's rules, in-process: a real engine on a virtual clock, the lock held by the test
def small_engine() -> Engine:
    space = parse_search_space({"x": 0.5, "search": [{"args": ["x"], "type": "float", "targets": [0.0, 1.0]}]},
                               Path("<test>"))
    algo = get_algorithm("random")(space, max_epochs=3, seed=0, params={"automl_max_recommendations": 4})
    backend = SimulatedBackend(lambda config, epoch, state: (config["x"], 1.0), "objective",
                               lambda values: space.apply({"x": 0.5}, values))
    return Engine(EngineSettings("live", "random", space, [Worker(1, ()), Worker(2, ())], "objective", "minimize", 3),
                  algo, backend, Journal(Path(":memory:")))


@pytest.fixture
def live_dir(tmp_path):
    """A run folder whose lock is held, as by a live run."""
    run_dir = tmp_path / "live"
    run_dir.mkdir()
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield run_dir


def serve(inbox: ControlInbox, engine: Engine, senders: list[threading.Thread]) -> None:
    """Turn the run's loop (here: its inbox alone) until every sender has its answer."""
    for sender in senders:
        sender.start()
    while any(s.is_alive() for s in senders):
        inbox.next_look = 0.0
        inbox.tick(engine)
        time.sleep(0.01)


def test_two_commands_at_once_each_get_their_own_answer_in_the_order_sent(live_dir):
    engine, traced = small_engine(), []
    inbox = ControlInbox(live_dir, lambda message, **kw: traced.append(message))
    inbox.attach(engine)
    answers = {}

    def ask(name, command, target):
        try:
            answers[name] = send(live_dir, "live", command, target, timeout=20)
        except UsageError as exc:
            answers[name] = f"usage: {exc}"
    senders = [threading.Thread(target=ask, args=("a", "suspend", "W2")),
               threading.Thread(target=ask, args=("b", "suspend", "W7"))]
    serve(inbox, engine, senders)
    assert answers == {"a": "W2 suspended", "b": "usage: no worker 'W7' (workers: W1, W2)"}
    assert engine.suspended == {"W2"}
    assert list((live_dir / CONTROL_DIR / "inbox").iterdir()) == []
    assert list((live_dir / CONTROL_DIR / "replies").iterdir()) == []  # each command took its answer away


def test_malformed_and_stale_requests_are_answered_never_acted_on(live_dir):
    engine, traced = small_engine(), []
    inbox = ControlInbox(live_dir, lambda message, **kw: traced.append(message))
    inbox.attach(engine)
    folder = live_dir / CONTROL_DIR
    (folder / "inbox" / "1-bad.json").write_text('{"command": "explode", "session": "x"}')
    (folder / "inbox" / "2-notjson.json").write_text("{")
    # sent to an earlier start of the run (it died, and this is the --resume)
    (folder / "inbox" / "3-old.json").write_text(json.dumps({"session": "0123", "command": "stop", "target": ""}))
    inbox.tick(engine)
    replies = {p.stem: json.loads(p.read_text()) for p in (folder / "replies").iterdir()}
    assert replies["1-bad"] == {"code": 2, "message": f"malformed request {folder / 'inbox' / '1-bad.json'}: "
                                                      "$.command: expected one of suspend, resume, abort, stop, "
                                                      'got "explode"'}
    assert replies["2-notjson"]["code"] == 2 and "not JSON" in replies["2-notjson"]["message"]
    assert replies["3-old"] == {"code": 1, "message": "run 'live' has restarted since the request was sent; nothing "
                                                      "was done (send it again)"}
    assert engine.stopping is None and list(engine.journal.events()) == []
    assert list((folder / "inbox").iterdir()) == []
    assert sum("control: ignored" in line for line in traced) == 3

    # a new start of the run clears the answers nobody read, and has a new session
    old_session = inbox.session
    again = ControlInbox(live_dir)
    again.attach(small_engine())
    assert list((folder / "replies").iterdir()) == []
    assert json.loads((folder / "session.json").read_text())["session"] not in (old_session, "")


def test_a_request_the_run_never_takes_is_withdrawn_and_after_the_end_nothing_is_acted_on(live_dir):
    engine = small_engine()
    inbox = ControlInbox(live_dir)
    inbox.attach(engine)
    with pytest.raises(NoLiveRun, match=r"^run 'live' did not answer within 0.3 s \(is it stuck\?\); nothing was "
                                        r"done$"):
        send(live_dir, "live", "suspend", "W1", timeout=0.3)
    assert list((live_dir / CONTROL_DIR / "inbox").iterdir()) == []  # taken back: the run will never see it
    inbox.tick(engine)
    assert engine.suspended == set()

    # once the run has journaled its end, waiting requests get "ended", not an action
    answers = []
    sender = threading.Thread(target=lambda: answers.append(_error_of(send, live_dir, "live", "stop", "", 20)))
    sender.start()
    assert wait_for(lambda: any((live_dir / CONTROL_DIR / "inbox").glob("*.json")), timeout=10)
    inbox.on_event(Event(9, 0.0, "run_finished", {"status": "completed"}))
    sender.join(20)
    assert answers == ["run 'live' has ended (completed); nothing was done"] and engine.stopping is None


def _error_of(function, *args):
    try:
        return function(*args)
    except NoLiveRun as exc:
        return str(exc)


def test_a_command_on_a_run_nobody_runs_writes_nothing(tmp_path):
    run_dir = tmp_path / "idle"
    run_dir.mkdir()
    (run_dir / ".lock").write_text("")
    with pytest.raises(NoLiveRun, match=r"^run 'idle' is not running$"):
        send(run_dir, "idle", "suspend", "W1")
    assert [p.name for p in run_dir.iterdir()] == [".lock"]


def test_workers_are_followed_through_suspension_a_stop_and_a_resume_with_other_workers():
    view = RunView()
    started = {"run_id": "r", "workers": [{"name": "W1", "gpus": [0]}, {"name": "W2", "gpus": [1]}]}

    def job(job_id, worker):
        return {"job_id": job_id, "name": f"{worker}_1_J{job_id}", "trial_id": job_id, "worker": worker, "gpus": [],
                "params": {}, "start_epoch": 0, "stop_epoch": 3, "where": f"SLURM job {100 + job_id}"}
    for seq, (kind, data) in enumerate([
            ("run_started", started), ("job_started", job(1, "W1")), ("job_started", job(2, "W2")),
            ("worker_suspended", {"worker": "W2"}), ("run_stop_requested", {"reason": "asked by automl stop"}),
            ("job_finished", {"job_id": 1, "status": "completed"})], start=1):
        view.apply(Event(seq, float(seq), kind, data))
    assert [(w.name, w.state, w.jobs_run, w.current, w.where) for w in view.workers.values()] == [
        ("W1", "idle", 1, None, ""), ("W2", "suspended (busy)", 1, 2, "SLURM job 102")]
    assert view.status_json()["r"]["suspended_workers"] == ["W2"]
    assert view.status_json()["r"]["stop_requested"] == "asked by automl stop"

    # the tool died; the resumed run has three workers and found J2 still with SLURM
    view.apply(Event(7, 7.0, "run_resumed", {"relaunched": [], "reattached": [2], "workers": [
        {"name": "W1", "gpus": [0]}, {"name": "W2", "gpus": [1]}, {"name": "W3", "gpus": [2]}]}))
    assert [(w.name, w.state, w.jobs_run, w.current) for w in view.workers.values()] == [
        ("W1", "idle", 1, None), ("W2", "busy", 1, 2), ("W3", "idle", 0, None)]
    assert view.stop_requested is None and view.suspended_workers() == []
