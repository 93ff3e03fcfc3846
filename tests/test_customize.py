"""TAO-style customisation: additional parameters, removals, custom ranges."""
from pathlib import Path

import numpy as np
import pytest

from automl_cli.customize import customize
from automl_cli.errors import ConfigError
from automl_cli.mmar import validate
from automl_cli.space import parse_search_space

TRAIN = {
    "epochs": 3, "batch_size": 8, "amp": False, "name_of_run": "x",
    "train": {
        "optimizer": {"name": "SGD", "args": {"lr": 0.01, "weight_decay": 0.0001, "momentum": 0.9},
                      "search": [{"args": "lr", "type": "float", "targets": [0.001, 0.1], "log": True, "domain": "lr"}]},
        "model": {"name": "Net", "args": {"depth": 4, "act": "relu"},
                  "search": [{"args": "act", "type": "enum", "targets": ["relu", "gelu"]}]},
    },
}
FILE = Path("config/config_automl.json")


def custom(**automl):
    validate(automl, "config_automl", FILE)  # as load_mmar does: the schema checks each range's keys and types
    space = parse_search_space(TRAIN, Path("config/config_train.json"))
    return customize(space, TRAIN, automl, FILE)


def test_additional_parameters_get_ranges_derived_from_their_current_values():
    space, notes = custom(additional_automl_parameters=["train.optimizer.args.weight_decay", "train.model.args.depth",
                                                        "amp", "batch_size"])
    wd, depth, amp, batch = space.params[2:]
    assert (wd.kind, wd.low, wd.high, wd.log) == ("float", pytest.approx(1e-5), pytest.approx(1e-3), True)
    assert (depth.kind, depth.low, depth.high) == ("int", 2, 8)
    assert amp.kind == "bool" and batch.kind == "int" and (batch.low, batch.high) == (4, 16)
    assert [n.split(":")[0] for n in notes] == ["train.optimizer.args.weight_decay", "train.model.args.depth", "amp",
                                                "batch_size"]
    assert "derived from its current value 0.0001" in notes[0]
    values = space.sample(np.random.default_rng(0))
    out = space.apply(TRAIN, values)
    assert out["train"]["optimizer"]["args"]["weight_decay"] == values["train.optimizer.args.weight_decay"]
    assert out["train"]["model"]["args"]["depth"] == values["train.model.args.depth"]
    assert out["batch_size"] == values["batch_size"] and out["amp"] == values["amp"][0]


def test_custom_ranges_options_weights_and_disable_list():
    space, _ = custom(additional_automl_parameters=["train.optimizer.args.momentum", "train.model.args.depth"],
                      custom_automl_ranges={
                          "train.optimizer.args.momentum": {"valid_options": [0.0, 0.9, 0.99],
                                                            "option_weights": [1, 2, 1]},
                          "train.model.args.depth": {"valid_options": [2, 8], "disable_list": True},
                          "SGD.lr": {"valid_min": 0.0001, "valid_max": 0.01},
                          "train.model.args.act": {"valid_options": ["relu", "silu", "gelu"]}})
    lr, act, momentum, depth = space.params
    assert (lr.low, lr.high, lr.log, lr.origin) == (0.0001, 0.01, True, "search section + custom range")
    assert act.choices == (("relu",), ("silu",), ("gelu",))
    assert momentum.kind == "enum" and momentum.weights == (0.25, 0.5, 0.25)
    assert (depth.kind, depth.low, depth.high) == ("int", 2, 8)


def test_removal_by_name_or_dotted_path():
    space, _ = custom(remove_default_automl_parameters=["SGD.lr"])
    assert [p.name for p in space.params] == ["Net.act"]
    space, _ = custom(remove_default_automl_parameters=["train.model.args.act"])
    assert [p.name for p in space.params] == ["SGD.lr"]


@pytest.mark.parametrize("automl, where, expected", [
    ({"additional_automl_parameters": ["train.optimizer.args.nope"]}, "$.additional_automl_parameters[0]",
     'no "nope" in config_train.json at train.optimizer.args'),
    ({"additional_automl_parameters": ["train.optimiser.args.lr"]}, "$.additional_automl_parameters[0]",
     'no "optimiser" in config_train.json at train'),
    ({"additional_automl_parameters": ["name_of_run"]}, "$.additional_automl_parameters[0]",
     "cannot derive a range from the current value 'x'"),
    ({"additional_automl_parameters": ["train.optimizer.args.lr"]}, "$.additional_automl_parameters[0]",
     "searched already"),
    ({"remove_default_automl_parameters": ["Adam.lr"]}, "$.remove_default_automl_parameters[0]",
     '"Adam.lr" names no search parameter'),
    ({"custom_automl_ranges": {"SGD.lr": {"valid_min": 1, "valid_max": 0.5}}}, "$.custom_automl_ranges.SGD.lr",
     "expected valid_min < valid_max"),
    ({"custom_automl_ranges": {"SGD.lr": {"valid_min": 1, "valid_maximum": 2}}},
     "$.custom_automl_ranges.SGD.lr.valid_maximum", "unknown key"),
    ({"custom_automl_ranges": {"Net.act": {"valid_options": ["a", "b"], "option_weights": [1]}}},
     "$.custom_automl_ranges.Net.act.option_weights", "expected 2 weights, one per option"),
    ({"custom_automl_ranges": {"Net.act": {"valid_options": ["a", "b"], "disable_list": True}}},
     "$.custom_automl_ranges.Net.act.valid_options", "disable_list needs two or more numbers"),
    ({"custom_automl_ranges": {"train.model.args.depth": {"valid_min": 1, "valid_max": 9}}},
     "$.custom_automl_ranges.train.model.args.depth", "names no searched parameter"),
])
def test_customisation_mistakes_name_the_file_and_path(automl, where, expected):
    with pytest.raises(ConfigError) as err:
        custom(**automl)
    assert err.value.file == str(FILE) and err.value.path == where and expected in err.value.detail


def test_yaml_configs_work_and_their_errors_name_file_line_and_path(fake_mmar):
    import json

    import yaml

    from conftest import run_cli

    for name in ("config_train", "config_automl", "environment"):
        path = fake_mmar / "config" / f"{name}.json"
        (fake_mmar / "config" / f"{name}.yaml").write_text(yaml.safe_dump(json.loads(path.read_text())))
        path.unlink()
    assert run_cli("validate", "-m", str(fake_mmar)).returncode == 0
    (fake_mmar / "config" / "config_automl.yaml").write_text("controller:\n  name: random\n   args: [\n")
    bad = run_cli("validate", "-m", str(fake_mmar))
    assert bad.returncode == 2 and "config_automl.yaml: $: invalid YAML at line 3" in bad.stderr
    (fake_mmar / "config" / "config_automl.yaml").write_text("direction: up\n")
    bad = run_cli("validate", "-m", str(fake_mmar))
    assert bad.returncode == 2 and 'config_automl.yaml: $.direction: expected one of' in bad.stderr
