"""A corpus of broken configs and command lines: each gets one line on stderr, exit code 2,
no traceback, and nothing is written."""
import json
import signal

import pytest

from automl_cli.status import RunView
from conftest import run_cli, set_epoch_seconds, start_run, wait_for, write_json

GOOD_SEARCH = [{"type": "float", "args": "lr", "targets": [0.001, 0.1]}]


def train_doc(**changes):
    doc = {"epochs": 3, "fake": {"name": "Fake", "args": {"lr": 0.01, "choice": "good", "behaviour": "ok"},
                                 "search": GOOD_SEARCH}}
    doc.update(changes)
    return doc


# (file, content) pairs; content is JSON text
CONFIGS = [
    ("config_train.json", "{"),
    ("config_train.json", "[1, 2]"),
    ("config_train.json", '{"epochs": 3}'),
    ("config_train.json", json.dumps(train_doc(epochs="three"))),
    ("config_train.json", json.dumps(train_doc(epochs=-1))),
    ("config_train.json", json.dumps(train_doc(epochs="{NOPE}"))),
    ("config_train.json", json.dumps(train_doc(fake={"name": "F", "args": {"lr": 1}, "search": "lr"}))),
    ("config_train.json", json.dumps(train_doc(fake={"name": "F", "search": GOOD_SEARCH}))),
    ("config_train.json", json.dumps(train_doc(fake={"name": "F", "args": {"lr": 1}, "search": [
        {"type": "float", "args": "momentum", "targets": [0, 1]}]}))),
    ("config_train.json", json.dumps(train_doc(fake={"name": "F", "args": {"lr": 1}, "search": [
        {"type": "float", "args": "lr", "targets": [1, 0]}]}))),
    ("config_train.json", json.dumps(train_doc(fake={"name": "F", "args": {"lr": 1}, "search": [
        {"type": "categorical", "args": "lr", "targets": [1, 0]}]}))),
    ("config_train.json", json.dumps(train_doc(fake={"name": "F", "args": {"lr": 1, "b": 2}, "search": [
        {"type": "enum", "args": ["lr", "b"], "targets": [[1, 2], [3]]}]}))),
    ("config_train.json", json.dumps(train_doc(fake={"name": "F", "args": {"lr": 1}, "search": [
        {"type": "float", "args": "lr", "targets": [0, 1], "log": True}]}))),
    ("config_train.json", json.dumps(train_doc(fake={"name": "F", "args": {"lr": 1}, "search": [
        {"type": "float", "args": "lr", "targest": [0, 1]}]}))),
    ("config_automl.json", "not json"),
    ("config_automl.json", '{"controller": {"name": "nope"}}'),
    ("config_automl.json", '{"controller": {"name": 3}}'),
    ("config_automl.json", '{"controller": {"name": "random", "args": {"automl_max_recommendations": "many"}}}'),
    ("config_automl.json", '{"controller": {"name": "random", "args": {"automl_max_recommendations": 0}}}'),
    ("config_automl.json", '{"controller": {"name": "random", "args": {"automl_R": 27}}}'),
    ("config_automl.json", '{"controller": {"path": "my.Controller"}}'),
    ("config_automl.json", '{"controller": {"name": "hyperband", "args": {"automl_nu": 1}}}'),
    ("config_automl.json", '{"direction": "sideways"}'),
    ("config_automl.json", '{"metric": ""}'),
    ("config_automl.json", '{"executor": {"name": "SlurmExecutorX"}}'),
    ("config_automl.json", '{"executor": {"name": "MMARExecutor", "args": {"train_command": "python train.py"}}}'),
    ("config_automl.json", '{"automl_max_retries": -1}'),
    ("config_automl.json", '{"custom_automl_ranges": {"lr": {"valid_min": 0}}}'),
    ("environment.json", '{"DATA_ROOT": {"nested": 1}}'),
    ("environment.json", '{"bad name": "x"}'),
]

COMMANDS = [
    ["run", "-m", "{mmar}"],                                      # no run id
    ["run", "-m", "{mmar}", "--run-id", "a/b"],
    ["run", "-m", "{mmar}", "--run-id", "my run"],
    ["run", "-m", "{mmar}", "--run-id", "x;touch y"],
    ["run", "-m", "{mmar}", "--run-id", ".."],
    ["run", "-m", "{mmar}", "--run-id", "-x"],
    ["run", "-m", "{mmar}", "--run-id", "x", "--workers", ""],
    ["run", "-m", "{mmar}", "--run-id", "x", "--workers", "0::1"],
    ["run", "-m", "{mmar}", "--run-id", "x", "--workers", "gpu0"],
    ["run", "-m", "{mmar}", "--run-id", "x", "--algorithm", "bohbx"],
    ["run", "-m", "{mmar}", "--run-id", "x", "--traceout", "loud"],
    ["run", "-m", "{mmar}", "--run-id", "x", "--set", "seed=abc"],
    ["run", "-m", "{mmar}", "--run-id", "x", "--set", "=noequals"],  # a bare word is only a warning: below
    ["run", "-m", "{mmar}", "--run-id", "x", "--set", "automl_max_retries=-2"],
    ["run", "-m", "{mmar}", "--run-id", "x", "--trainconf", "missing.json"],
    ["run", "-m", "{mmar}", "--run-id", "x", "--automlconf", "missing.json"],
    ["run", "-m", "/no/such/mmar", "--run-id", "x"],
    ["run", "-m", "{mmar}/config", "--run-id", "x"],
    ["run", "--run-id", "x"],
    ["status", "-m", "{mmar}", "--run-id", "never"],
    ["plan", "-m", "{mmar}", "--algorithm", "nope"],
    ["plan", "-m", "{mmar}", "--epoch-seconds", "-1"],
    ["train", "-m", "{mmar}", "--epochs", "0"],
    ["train", "-m", "{mmar}"],                                    # its config has no train section
    ["nosuchcommand"],
]


def check_refused(result, mmar):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [l for l in result.stderr.splitlines() if l.strip() and "warning" not in l]
    assert lines and "Traceback" not in result.stderr
    assert not (mmar / "automl").exists()
    return lines


@pytest.mark.parametrize("file, content", CONFIGS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CONFIGS)])
def test_a_broken_config_is_one_line_naming_file_and_path(fake_mmar, file, content):
    (fake_mmar / "config" / file).write_text(content)
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "x")
    lines = check_refused(result, fake_mmar)
    assert len(lines) == 1
    assert file in lines[0] or "algorithm" in lines[0] or "parameter" in lines[0]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[:1] + a[3:]) for a in COMMANDS])
def test_a_bad_command_line_is_a_usage_error(fake_mmar, args):
    result = run_cli(*[a.replace("{mmar}", str(fake_mmar)) for a in args])
    lines = check_refused(result, fake_mmar)
    assert len(lines) <= 3  # click's usage errors add a "Usage:" and a "Try --help" line


def test_corpus_is_large_enough():
    assert len(CONFIGS) + len(COMMANDS) >= 30


def test_a_second_run_on_a_live_run_id_is_refused_and_a_dead_ones_lock_is_taken_over(fake_mmar):
    set_epoch_seconds(fake_mmar, 1.0)
    first = start_run(fake_mmar, "--run-id", "live")
    try:
        assert wait_for(lambda: (fake_mmar / "automl" / "live" / "W1_1_J1").exists())
        second = run_cli("run", "-m", str(fake_mmar), "--run-id", "live", "--resume")
        assert second.returncode == 2 and "in use by another automl process" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    set_epoch_seconds(fake_mmar, 0.01)
    taken = run_cli("run", "-m", str(fake_mmar), "--run-id", "live", "--resume")
    assert taken.returncode == 0, taken.stderr
    assert RunView.load(fake_mmar / "automl" / "live").status == "completed"


def test_a_trainer_killed_by_a_signal_is_retried_then_recorded_with_its_cause(fake_mmar):
    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["fake"]["search"].append({"type": "enum", "args": ["behaviour"], "targets": [["killed"]]})
    write_json(path, config)
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "oom", "--set", "automl_max_recommendations=1")
    assert result.returncode == 1
    view = RunView.load(fake_mmar / "automl" / "oom")
    [job] = view.jobs.values()
    # the second attempt resumed from the first one's checkpoint (epoch 1) before it was killed too
    assert job.status == "failed" and job.cause == "killed by SIGKILL: resume at 1" and job.name == "W1_2_J1"
    assert "W1_2_J1/train.log" in result.stderr


# -- a bare word among --set pairs (Clara's commands/automl.sh passes "$*" after its pairs) ----
def test_a_bare_word_among_set_pairs_is_ignored_with_a_one_line_warning(fake_mmar):
    result = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=x", "workers=0", "myrun")
    assert result.returncode == 0, result.stderr
    assert [l for l in result.stderr.splitlines() if "myrun" in l] == \
        ["automl: warning: ignoring 'myrun' among --set pairs (not KEY=VALUE)"]
    view = RunView.load(fake_mmar / "automl" / "x")
    assert view.status == "completed" and len(view.jobs) == 4
    assert not (fake_mmar / "automl" / "myrun").exists()


def test_plan_ignores_a_bare_word_among_set_pairs_too(fake_mmar):
    result = run_cli("plan", "-m", str(fake_mmar), "--epoch-seconds", "1", "--set", "workers=0:0", "myrun")
    assert result.returncode == 0, result.stderr
    assert "automl: warning: ignoring 'myrun' among --set pairs (not KEY=VALUE)" in result.stderr


def test_a_pair_without_a_key_is_still_an_error(fake_mmar):
    result = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=x", "=0:1")
    lines = check_refused(result, fake_mmar)
    assert lines == ["automl: error: bad --set item '=0:1': expected KEY=VALUE, e.g. run_id=test1 workers=0:1"]


# -- a job that exits 2 (its trainer refused the config) is not retried ------------------------
def test_a_job_exiting_with_a_config_error_fails_at_once_with_its_cause_and_is_not_retried(fake_mmar):
    from automl_cli.store import JOURNAL, Journal

    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["fake"]["search"].append({"type": "enum", "args": ["behaviour"], "targets": [["config_error"]]})
    write_json(path, config)
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "cfg", "--set", "automl_max_recommendations=1",
                     "automl_max_retries=3")
    assert result.returncode == 1
    run_dir = fake_mmar / "automl" / "cfg"
    [job] = RunView.load(run_dir).jobs.values()
    error = "automl: error: config_train.json: $.fake.name: unknown model 'Fakee' (simulated)"
    assert job.name == "W1_1_J1" and job.status == "failed"
    assert job.cause == f"exit code 2 (a config error, not retried): {error}"
    assert not (run_dir / "W1_2_J1").exists()
    journal = Journal(run_dir / JOURNAL, readonly=True)
    try:
        finished = [e.data for e in journal.events() if e.kind == "job_finished"]
    finally:
        journal.close()
    assert len(finished) == 1 and finished[0]["status"] == "failed" and finished[0]["returncode"] == 2
    assert finished[0]["log_tail"][-1].strip() == error
    trace = (run_dir / "trace.log").read_text()
    assert f"job W1_1_J1 failed: exit code 2 (a config error, not retried): {error}" in trace
    assert "retrying" not in trace and "crashed" not in trace
    assert f"the last lines of its train.log: resume at 0 | building from {run_dir}/W1_1_J1/config/" in trace
    assert trace.rstrip().splitlines()[-1].endswith("every job failed; the first: W1_1_J1: exit code 2 (a config "
                                                    f"error, not retried): {error}; log: {run_dir}/W1_1_J1/train.log")


def test_config_errors_do_not_stop_the_search_and_crashes_are_still_retried(fake_mmar):
    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["fake"]["search"].append({"type": "enum", "args": ["behaviour"],
                                     "targets": [["config_error"], ["crash"], ["ok"]]})
    write_json(path, config)
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "mixed", "--set", "automl_max_recommendations=9",
                     "seed=3")
    assert result.returncode == 0, result.stderr
    jobs = RunView.load(fake_mmar / "automl" / "mixed").jobs.values()
    by = {}
    for job in jobs:
        by.setdefault(job.params["Fake.behaviour"][0], []).append(job)
    assert {"config_error", "crash", "ok"} <= set(by)
    assert all(j.name.split("_")[1] == "1" and j.status == "failed" and "a config error, not retried" in j.cause
               for j in by["config_error"])
    assert all(j.name.split("_")[1] == "2" and j.status == "failed" for j in by["crash"])  # retried once
    assert all(j.status == "completed" for j in by["ok"])


# -- the last tracebacks on bad input: one line naming the file and JSON path, exit 2 ----------
def _config(mmar, name="config_train.json"):
    return json.loads((mmar / "config" / name).read_text())


def _not_utf8(mmar):
    (mmar / "config" / "config_train.json").write_bytes(b'{"epochs": 3,\n "note": "caf\xe9"}')
    return [], "config_train.json: $: not UTF-8 text: byte 0xe9 at line 2"


def _nested_beyond_the_parser(mmar):
    (mmar / "config" / "config_train.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return [], "config_train.json: $: nested too deeply to read"


def _nested_beyond_the_checks(mmar):  # the parser copes; the schema check and substitution would not
    (mmar / "config" / "config_automl.json").write_text('{"x": ' + "[" * 900 + "]" * 900 + "}")
    return [], "config_automl.json: $.x[0][0][0][0][0][0][0][0][0]: nested more than 100 levels deep"


def _infinite_bound(mmar):
    doc = _config(mmar)
    doc["fake"]["search"][0]["targets"] = [0.0001, float("inf")]
    write_json(mmar / "config" / "config_train.json", doc)
    return [], "config_train.json: $.fake.search[0].targets[1]: expected a finite number, got Infinity"


def _nan_custom_range(mmar):
    doc = _config(mmar, "config_automl.json")
    doc["custom_automl_ranges"] = {"Fake.lr": {"valid_min": 0.001, "valid_max": float("nan")}}
    write_json(mmar / "config" / "config_automl.json", doc)
    return [], "config_automl.json: $.custom_automl_ranges.Fake.lr.valid_max: expected a finite number, got NaN"


def _negative_seed_in_config(mmar):
    doc = _config(mmar, "config_automl.json")
    doc["seed"] = -5
    write_json(mmar / "config" / "config_automl.json", doc)
    return [], "config_automl.json: $.seed"


def _trainconf_is_a_folder(mmar):
    (mmar / "config" / "sub.json").mkdir()
    return ["--trainconf", "sub.json"], "sub.json is a folder, not a file"


def _config_is_a_symlink_loop(mmar):
    (mmar / "config" / "config_train.json").unlink()
    (mmar / "config" / "config_train.json").symlink_to("loop.json")
    (mmar / "config" / "loop.json").symlink_to("config_train.json")
    return [], "config_train.json is a symlink loop"


def _mmar_is_a_file(mmar):
    return ["-m", str(mmar / "config" / "config_train.json")], "config_train.json is a file, not an MMAR folder"


def _mmar_is_a_symlink_loop(mmar):
    (mmar.parent / "loop_a").symlink_to(mmar.parent / "loop_b")
    (mmar.parent / "loop_b").symlink_to(mmar.parent / "loop_a")
    return ["-m", str(mmar.parent / "loop_a")], "loop_a is a symlink loop"


def _set(*pairs, said):
    def setup(mmar):
        return ["--set", *pairs], said
    setup.__name__ = "_set " + " ".join(pairs)
    return setup


BAD_INPUT = [_not_utf8, _nested_beyond_the_parser, _nested_beyond_the_checks, _infinite_bound, _nan_custom_range,
             _negative_seed_in_config, _trainconf_is_a_folder, _config_is_a_symlink_loop, _mmar_is_a_file,
             _mmar_is_a_symlink_loop,
             _set("seed=-5", said="seed must be an integer >= 0, got -5"),
             _set("automl_max_recommendations=Infinity", said="expected int, got inf"),
             _set("algorithm=pbt", "automl_truncation=0.9", said="automl_truncation: must be at most 0.5, got 0.9"),
             _set("algorithm=pbt", "automl_perturbation_factor=Infinity", said="expected float (finite), got inf")]


@pytest.mark.parametrize("command", ["run", "plan"])
@pytest.mark.parametrize("setup", BAD_INPUT, ids=[s.__name__.strip("_") for s in BAD_INPUT])
def test_the_last_tracebacks_on_bad_input_are_one_line_naming_the_place(fake_mmar, setup, command):
    args, said = setup(fake_mmar)
    mmar = ["-m", str(fake_mmar)] if "-m" not in args else []
    result = run_cli(command, *mmar, *(["--run-id", "x"] if command == "run" else []), *args)
    lines = check_refused(result, fake_mmar)
    assert len(lines) == 1 and said in lines[0], result.stderr
    assert lines[0].startswith("automl: error: ")


# -- CUDA_VISIBLE_DEVICES as CUDA reads it (a fake nvidia-smi listing 2 GPUs) -----------------
def _with_two_gpus(tmp_path, mask, *args):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "GPU 0: Fake GPU (UUID: GPU-0000)"\necho "GPU 1: Fake GPU (UUID: GPU-1111)"\n')
    smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CUDA_VISIBLE_DEVICES": mask}
    return subprocess.run([sys.executable, "-m", "automl_cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize("mask, workers, said", [
    ("7", "0", "CUDA_VISIBLE_DEVICES=7 names GPU 7, but this machine has 2 GPU(s) (ids 0-1"),
    ("1,2", "0", "CUDA_VISIBLE_DEVICES=1,2 names GPU 2, but this machine has 2 GPU(s)"),
    ("0,-1,1", "0:1", "worker W2 asks for GPU 1 but only 1 GPU(s) are visible (ids 0-0, through "
                      "CUDA_VISIBLE_DEVICES=0,-1,1)"),
])
def test_a_gpu_mask_cuda_would_cut_short_is_refused_in_one_line(fake_mmar, tmp_path, mask, workers, said):
    result = _with_two_gpus(tmp_path, mask, "run", "-m", str(fake_mmar), "--run-id", "x", "--workers", workers)
    lines = check_refused(result, fake_mmar)
    assert len(lines) == 1 and said in lines[0], result.stderr


def test_a_gpu_mask_with_an_invalid_entry_is_warned_about_and_only_what_cuda_shows_is_used(fake_mmar, tmp_path):
    result = _with_two_gpus(tmp_path, "0,-1,1", "run", "-m", str(fake_mmar), "--run-id", "x", "--workers", "0",
                            "--set", "automl_max_recommendations=1")
    assert result.returncode == 0, result.stderr
    warned = [l for l in result.stderr.splitlines() if "CUDA_VISIBLE_DEVICES" in l]
    assert warned == ["automl: warning: CUDA_VISIBLE_DEVICES=0,-1,1: CUDA stops reading at the invalid entry '-1', "
                      "so it shows GPU(s) 0 only and hides 1"]
    [job] = RunView.load(fake_mmar / "automl" / "x").jobs.values()
    assert job.gpus == [0]
