"""The example configs mmar_template/config/trn_autoML_*.json, end to end: the real CLI on a
copy of the template, two CPU workers, random search, the reference trainer in every job;
each job's config_train.json must hold the chosen values where the forms send them.

Each run costs seconds of CPU in imports (the CLI's and each job's torch) and little in
training, so the selected examples are all started at once, when the first test asks, and
their waits overlap: the file takes about as long as its slowest run, not their sum.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from automl_cli.cli import cli
from automl_cli.status import RunView
from conftest import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def example_runs(request, tmp_path_factory):
    """`automl run` on trn_autoML_<example>.json for every example the selected tests of this
    file name, started together; maps the example to (its process, its MMAR copy)."""
    examples = sorted({item.callspec.params["example"] for item in request.session.items
                       if item.module is request.module and hasattr(item, "callspec")})
    env = dict(os.environ)
    runs = {}
    for example in examples:
        root = tmp_path_factory.mktemp(example) / "mmar"
        shutil.copytree(ROOT / "mmar_template", root, ignore=shutil.ignore_patterns("automl"))
        command = [sys.executable, "-m", "automl_cli", "run", "-m", str(root), "--workers", "0:0",
                   "--algorithm", "random", "--set", "run_id=forms", f"trainconf=trn_autoML_{example}.json",
                   "automl_max_recommendations=2"]
        # output to a file: a pipe nobody reads until its test comes could fill and stall the run
        with open(root.parent / "console.txt", "w") as console:
            runs[example] = (subprocess.Popen(command, cwd=ROOT, env=env, stdout=console,
                                              stderr=subprocess.STDOUT), root)
    yield runs
    for process, _ in runs.values():  # a run whose test failed early: stop it as Ctrl-C would
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_example(example_runs, example: str) -> list[tuple[dict, dict, str]]:
    """Wait for the run of trn_autoML_<example>.json (2 CPU workers, 2 random
    configurations); (params, job config, train.log) per job, in job order."""
    process, root = example_runs[example]
    process.wait(timeout=600)
    assert process.returncode == 0, (root.parent / "console.txt").read_text()[-3000:]
    run_dir = root / "automl" / "forms"
    jobs = sorted(RunView.load(run_dir).jobs.values(), key=lambda j: j.job_id)
    assert [j.name for j in jobs] == ["W1_1_J1", "W2_1_J2"]
    assert all(j.status == "completed" for j in jobs)
    out = []
    for job in jobs:
        config = json.loads((run_dir / job.name / "config" / "config_train.json").read_text())
        text = json.dumps(config)
        # remove_search_augs (the template's default): nothing of the search is left
        assert '"search"' not in text and '"apply"' not in text and '"lr_search"' not in text
        assert "@disabled" not in text
        out.append((job.params, config, (run_dir / job.name / "train.log").read_text()))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("example", ["Enum"])
def test_enum_example_sets_the_grouped_network_args(example_runs, example):
    for params, config, _ in run_example(example_runs, example):
        model = config["train"]["model"]["args"]
        assert [model["if_use_psp"], model["final_activation"]] == params["SegAhnet.if_use_psp+final_activation"]
        assert [model["base_channels"]] == params["SegAhnet.base_channels"]


@pytest.mark.parametrize("example", ["Transform"])
def test_transform_example_sets_a_probability_and_switches_the_noise_on_or_off(example_runs, example):
    for params, config, _ in run_example(example_runs, example):
        flip, noise = config["train"]["transforms"][1:]
        assert flip["args"]["probability"] == params["RandomAxisFlip.probability"]
        assert [noise["disabled"]] == params["AddGaussianNoise.@disabled"]
        assert noise["args"]["std"] == params["AddGaussianNoise.std"]
        assert set(noise) == {"name", "args", "disabled"}


@pytest.mark.parametrize("example", ["TransformProb"])
def test_transform_prob_example_shares_one_probability_between_transforms(example_runs, example):
    for params, config, _ in run_example(example_runs, example):
        flip, noise = config["train"]["transforms"][1:]
        assert set(params) >= {"aug_prob"}
        assert flip["args"]["probability"] == noise["args"]["probability"] == params["aug_prob"]


@pytest.mark.parametrize("example", ["Loss_Optimizer"])
def test_loss_optimizer_example_picks_one_loss_through_free_tags(example_runs, example):
    for params, config, _ in run_example(example_runs, example):
        dice, bce = config["train"]["loss"]
        assert [dice["disabled"], bce["disabled"]] == params["dice_disabled+bce_disabled"]
        assert dice["disabled"] != bce["disabled"]
        assert "dice_disabled" not in config and "bce_disabled" not in config  # tags are written nowhere else
        optimizer = config["train"]["optimizer"]["args"]
        assert [optimizer["lr"], optimizer["amsgrad"]] == params["Adam.lr+amsgrad"]


@pytest.mark.parametrize("example", ["LR_LP"])
def test_lr_lp_example_searches_the_learning_rate_and_its_policy(example_runs, example):
    for params, config, log in run_example(example_runs, example):
        lr = params["learning_rate"]
        assert config["learning_rate"] == lr and 3e-4 <= lr <= 3e-2
        assert config["train"]["optimizer"]["args"]["lr"] == "{learning_rate}"
        step, cosine = config["train"]["lr_policy"]
        step_off, cosine_off = params["step_decay_disabled+cosine_decay_disabled"]
        assert (step["disabled"], cosine["disabled"]) == (step_off, cosine_off)
        assert step["args"]["gamma"] == params["StepDecay.gamma"]
        # the trainer honoured the choice: epoch 2's rate is epoch 1's times the enabled policy's factor
        second = lr * (1.0 if step_off else step["args"]["gamma"]) * (1.0 if cosine_off else 0.5)
        rates = [line.split(" lr ")[1].split()[0] for line in log.splitlines() if line.startswith("epoch ")]
        assert rates == [f"{lr:.4g}", f"{second:.4g}"]


def table_rows(text: str) -> dict[str, list[str]]:
    """The rows of a printed table by their first cell, a cell wrapped over lines joined again."""
    rows: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) < 2:
            continue
        if cells[0]:
            current = rows.setdefault(cells[0], cells)
        else:
            for i, cell in enumerate(cells):
                current[i] = f"{current[i]} {cell}".strip() if cell else current[i]
    return rows


def validate(trainconf: str) -> str:
    """`automl validate` in this process: the CLI's imports are paid once, not per call."""
    result = CliRunner().invoke(cli, ["validate", "-m", str(ROOT / "mmar_template"), "--trainconf", trainconf])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_validate_prints_each_parameters_names_source_and_where_it_is_applied():
    rows = table_rows(validate("trn_autoML_LR_LP.json"))
    _, applied, _, _, _, _, _, source = rows["step_decay_disabled+cosine_decay_disabled"]
    assert applied == ("step_decay_disabled -> train.lr_policy.0.disabled (apply), "
                       "cosine_decay_disabled -> train.lr_policy.1.disabled (apply)")
    assert source == "search section ($.search[0]); free tag(s) step_decay_disabled, cosine_decay_disabled"
    _, applied, domain, _, described, _, _, source = rows["learning_rate"]
    assert (applied, domain, described, source) == ("learning_rate", "lr", "[0.0003, 0.03] log",
                                                    "search section ($.lr_search)")
    assert table_rows(validate("trn_autoML_TransformProb.json"))["aug_prob"][1] == ("train.transforms.1.args.probability, "
                                                       "train.transforms.2.args.probability (apply)")
