"""Tables people load (issue #20 item 5): an enum's value is the value itself, not a list of
one value per arg, in status.json, best/summary.json, report.csv and stats.csv; a grouped
enum gives one column per arg; the leaderboard says "top 10 of N"."""
import csv
import json

import pytest

from automl_cli.status import arg_names, csv_cell, flat_columns, flat_values
from conftest import run_cli, write_json


def test_flat_values():
    widths = {"Fake.lr": 1, "Fake.choice": 1, "Net.act+width": 2, "Noise.p": 1}
    params = {"Fake.lr": 0.01, "Fake.choice": ["good"], "Net.act+width": ["relu", 8], "Noise.p": [0.0]}
    assert flat_values(params, widths) == {"Fake.lr": 0.01, "Fake.choice": "good", "Net.act": "relu",
                                           "Net.width": 8, "Noise.p": 0.0}
    assert flat_values({"Net.act+width": None, "Fake.lr": None}, widths) == {"Net.act": None, "Net.width": None,
                                                                            "Fake.lr": None}
    assert flat_values({"Fake.choice": [[8, 8]]}) == {"Fake.choice": [8, 8]}  # a one-arg enum whose value is a list
    assert flat_columns(widths) == ["Fake.lr", "Fake.choice", "Net.act", "Net.width", "Noise.p"]
    assert arg_names("SegAhnet.if_use_psp+final_activation", 2) == ["SegAhnet.if_use_psp", "SegAhnet.final_activation"]
    assert arg_names("loss+lr", 2) == ["loss", "lr"]  # top-level args, or aliases
    assert arg_names("train.model.search[0]", 2) == ["train.model.search[0][0]", "train.model.search[0][1]"]
    assert [csv_cell(v) for v in ("softmax", 0.0, 8, True, None, [8, 8])] == ["softmax", 0.0, 8, "true", "", "[8, 8]"]


@pytest.fixture
def grouped_mmar(fake_mmar):
    """The stand-in MMAR with a grouped enum (two args that the trainer ignores) and the
    Clara stats handler writing stats.csv."""
    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["fake"]["args"].update({"act": "relu", "width": 8})
    config["fake"]["search"].append({"domain": "net", "type": "enum", "args": ["act", "width"],
                                     "targets": [["relu", 8], ["gelu", 16]]})
    write_json(path, config)
    path = fake_mmar / "config" / "config_automl.json"
    automl = json.loads(path.read_text())
    automl["handlers"] = [{"name": "StatsHandler"}]
    write_json(path, automl)
    return fake_mmar


COLUMNS = ["Fake.lr", "Fake.choice", "Fake.act", "Fake.width"]


def test_files_show_enum_values_as_themselves(grouped_mmar):
    result = run_cli("run", "-m", str(grouped_mmar), "--run-id", "v", "--workers", "0:1",
                     "--set", "automl_max_recommendations=12")
    assert result.returncode == 0, result.stderr
    run_dir = grouped_mmar / "automl" / "v"
    # the end-of-run leaderboard: 10 of the 12 jobs, and it says so
    assert "leaderboard of run v (val_mean_dice, maximize): top 10 of 12 scored jobs" in result.stdout

    status = json.loads((run_dir / "status.json").read_text())
    jobs = [entry for name, entry in status.items() if name != "v"]
    assert len(jobs) == 12
    for entry in jobs + [status["v"]["best"]]:
        params = entry["params"]
        assert list(params) == COLUMNS
        assert isinstance(params["Fake.lr"], float) and params["Fake.choice"] in ("good", "bad")
        assert (params["Fake.act"], params["Fake.width"]) in (("relu", 8), ("gelu", 16))
    shown = run_cli("status", "-m", str(grouped_mmar), "--run-id", "v", "--json")
    assert json.loads(shown.stdout) == status  # automl status --json is status.json

    summary = json.loads((run_dir / "best" / "summary.json").read_text())
    assert summary["params"] == status["v"]["best"]["params"]
    assert summary["schedule"][-1]["params"] == summary["params"]

    with open(run_dir / "stats.csv", newline="") as handle:
        stats = list(csv.DictReader(handle))
    assert list(stats[0]) == ["name", "worker", "status", "score", "epochs", "seconds", *COLUMNS]
    by_name = {row["name"]: row for row in stats}
    assert len(by_name) == 12

    assert run_cli("report", "-m", str(grouped_mmar), "--run-id", "v").returncode == 0
    with open(run_dir / "report.csv", newline="") as handle:
        report = list(csv.DictReader(handle))
    assert list(report[0]) == ["rank", "job", "trial", "val_mean_dice", "best_epoch", "status", *COLUMNS]
    for row in report:
        expected = status[row["job"]]["params"]
        for source in (row, by_name[row["job"]]):  # CSV cells: the values as text, no brackets or quotes
            assert source["Fake.choice"] == expected["Fake.choice"] and source["Fake.act"] == expected["Fake.act"]
            assert source["Fake.width"] == str(expected["Fake.width"])
            assert float(source["Fake.lr"]) == pytest.approx(expected["Fake.lr"])
