"""The console: a live table in a terminal (driven through a pseudo-terminal), plain
timestamped lines without control codes elsewhere."""
import os
import pty
import re
import subprocess
import sys

from conftest import ROOT, run_cli


def test_not_a_terminal_gives_plain_lines_only(fake_mmar):
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "plain", "--set", "automl_max_recommendations=2")
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    lines = [l for l in result.stdout.splitlines() if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", l)]
    assert any("job W1_1_J1 started" in l for l in lines) and any("AutoML run is successful" in l for l in lines)


def test_a_terminal_gets_the_live_table(fake_mmar):
    env = dict(os.environ)
    env.update({"COLUMNS": "160", "LINES": "50"})
    pid, fd = pty.fork()
    if pid == 0:  # the child: automl on a pseudo-terminal
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "automl_cli", "run", "-m", str(fake_mmar), "--run-id", "tty",
                                   "--workers", "0:1", "--set", "automl_max_recommendations=4"], env)
    output = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    text = output.decode("utf-8", "replace")
    assert "\x1b[" in text  # a real terminal gets the live display
    assert re.search(r"run tty · random · jobs \d/4 done · best val_mean_dice", text)
    assert "progress" in text and "W1_1_J1" in text


def test_a_journal_still_being_created_reads_as_a_run_with_no_events_yet(tmp_path):
    import sqlite3

    from automl_cli.status import RunView
    from automl_cli.store import JOURNAL

    db = sqlite3.connect(tmp_path / JOURNAL)  # the file exists, its table not yet
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    assert RunView.load(tmp_path).jobs == {}


def test_the_live_table_says_which_workers_are_suspended_and_that_a_stop_was_asked():
    from rich.console import Console

    from automl_cli.status import RunView
    from automl_cli.store import Event
    from automl_cli.trace import _table

    view = RunView()
    events = [("run_started", {"run_id": "live", "algorithm": "random", "metric": "val_mean_dice",
                               "workers": [{"name": "W1", "gpus": [0]}, {"name": "W2", "gpus": [1]}]}),
              ("worker_suspended", {"worker": "W2"})]
    for seq, (kind, data) in enumerate(events, 1):
        view.apply(Event(seq, float(seq), kind, data))

    def rendered() -> str:
        console = Console(width=200, record=True, file=open(os.devnull, "w"))
        console.print(_table(view))
        return console.export_text()

    assert "suspended: W2 (no new jobs for them)" in rendered()
    assert "stopping:" not in rendered()
    view.apply(Event(3, 3.0, "run_stop_requested", {"reason": "asked by automl stop"}))
    view.apply(Event(4, 4.0, "worker_resumed", {"worker": "W2"}))
    text = rendered()
    assert "stopping: asked by automl stop (no new jobs; the running ones end)" in text and "suspended:" not in text
