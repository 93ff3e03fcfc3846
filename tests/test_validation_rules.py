"""One way to validate (issue #21 item 3): each rule on search items, custom ranges and the
run's settings, broken once through `automl validate`: exit 2 and one line naming the file,
the JSON path and the rule. Which keys go together is the schemas' to say; rules that
compare values are ranges.py's, and hold the same for a search item and a custom range."""
import json

import pytest

from conftest import run_cli, write_json

LR = {"domain": "lr", "type": "float", "args": ["lr"], "targets": [0.0001, 0.1], "log": True}
CHOICE = {"domain": "net", "type": "enum", "args": ["choice"], "targets": [["good"], ["bad"]]}
BEHAVIOUR = {"type": "bool", "args": ["behaviour"]}

TRAIN_CASES = [
    ({**LR, "weights": [1, 2]}, "$.fake.search[0].weights", '"weights" applies to enum and bool items only'),
    ({**CHOICE, "log": True}, "$.fake.search[0].log", '"log" applies to float and int items, not enum'),
    ({**BEHAVIOUR, "step": 1}, "$.fake.search[0].step", '"step" applies to float and int items, not bool'),
    ({"type": "float", "args": ["lr"]}, "$.fake.search[0]", "missing required key: 'targets'"),
    ({**LR, "targets": [0, 0.1]}, "$.fake.search[0].targets", "a log range needs min > 0, got 0"),
    ({**LR, "targets": [0.1, 0.01]}, "$.fake.search[0].targets", "expected min < max"),
    ({**LR, "log": False, "step": 0.5}, "$.fake.search[0].step", "step 0.5 is larger than the range"),
    ({"type": "int", "args": ["lr"], "targets": [1, 9], "step": 1.5}, "$.fake.search[0].step",
     "an int range needs a whole step"),
    ({"type": "float", "args": ["@disabled#off"], "targets": [0, 1]}, "$.fake.search[0].type",
     '"@disabled" takes true or false: search it with an enum'),
    ({**CHOICE, "weights": [1]}, "$.fake.search[0].weights", "expected 2 weights, one per choice, got 1"),
    ({**CHOICE, "weights": [1, 0]}, "$.fake.search[0].weights[1]", "0"),
]

AUTOML_CASES = [
    ({"custom_automl_ranges": {"Fake.lr": {"valid_min": 0, "valid_max": 0.1}}}, "$.custom_automl_ranges.Fake.lr",
     "a log range needs valid_min > 0, got 0 (Fake.lr is searched on a log scale"),
    ({"custom_automl_ranges": {"Fake.lr": {"valid_min": 0.1, "valid_max": 0.01}}}, "$.custom_automl_ranges.Fake.lr",
     "expected valid_min < valid_max"),
    ({"custom_automl_ranges": {"Fake.lr": {"valid_min": 0.1, "valid_maximum": 1}}},
     "$.custom_automl_ranges.Fake.lr.valid_maximum", "unknown key (expected valid_min, valid_max"),
    ({"custom_automl_ranges": {"Fake.lr": {"valid_min": "low", "valid_max": 1}}},
     "$.custom_automl_ranges.Fake.lr.valid_min", 'expected number, got "low"'),
    ({"custom_automl_ranges": {"Fake.choice": {"option_weights": [1, 2]}}}, "$.custom_automl_ranges.Fake.choice",
     "option_weights needs valid_options"),
    ({"custom_automl_ranges": {"Fake.choice": {"valid_options": ["good", "bad"], "option_weights": [1]}}},
     "$.custom_automl_ranges.Fake.choice.option_weights", "expected 2 weights, one per option, got 1"),
    ({"seed": -1}, "$.seed", "0"),
    ({"seed": 1.5}, "$.seed", "expected integer, got 1.5"),
    ({"seed": True}, "$.seed", "expected integer, got true"),
    ({"automl_max_retries": -1}, "$.automl_max_retries", "0"),
    ({"automl_max_retries": "2"}, "$.automl_max_retries", 'expected integer, got "2"'),
]


def _validate_fails(mmar, file: str, where: str, expected: str) -> None:
    result = run_cli("validate", "-m", str(mmar))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"automl: error: {mmar / 'config' / file}: {where}: "), lines[0]
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("item, where, expected", TRAIN_CASES, ids=[c[2][:40] for c in TRAIN_CASES])
def test_a_search_item_breaking_a_rule_is_one_line(fake_mmar, item, where, expected):
    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["fake"]["args"]["behaviour"] = False
    config["fake"]["search"] = [item]
    write_json(path, config)
    _validate_fails(fake_mmar, "config_train.json", where, expected)


@pytest.mark.parametrize("change, where, expected", AUTOML_CASES, ids=[c[1] + " " + c[2][:30] for c in AUTOML_CASES])
def test_config_automl_breaking_a_rule_is_one_line(fake_mmar, change, where, expected):
    path = fake_mmar / "config" / "config_automl.json"
    write_json(path, {**json.loads(path.read_text()), **change})
    _validate_fails(fake_mmar, "config_automl.json", where, expected)


def test_a_custom_range_keeps_the_log_scale_it_fits(fake_mmar):
    path = fake_mmar / "config" / "config_automl.json"
    write_json(path, {**json.loads(path.read_text()),
                      "custom_automl_ranges": {"Fake.lr": {"valid_min": 0.001, "valid_max": 0.01}}})
    result = run_cli("validate", "-m", str(fake_mmar))
    assert result.returncode == 0, result.stderr
    assert "[0.001, 0.01] log" in result.stdout
