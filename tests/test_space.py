"""The search-section parser: the Clara guide's examples, applying values, every error case."""
from pathlib import Path

import numpy as np
import pytest

from automl_cli.errors import ConfigError
from automl_cli.space import parse_search_space

FILE = Path("config/config_train.json")

# The Clara guide's model example, verbatim in structure.
SEGAHNET = {
    "name": "SegAhnet",
    "args": {"num_classes": 2, "if_use_psp": False, "pretrain_weight_name": "{PRETRAIN_WEIGHTS_FILE}",
             "plane": "z", "final_activation": "softmax", "n_spatial_dim": 3},
    "search": [{"args": ["if_use_psp", "final_activation"], "domain": "net", "type": "enum",
                "targets": [[True, "softmax"], [False, "sigmoid"]]}],
}
FLIP = {"name": "RandomAxisFlip", "args": {"fields": ["image", "label"], "probability": 0.0},
        "search": [{"domain": "transform", "type": "float", "args": ["probability"], "targets": [0.0, 1.0]}]}


def doc(**train):
    return {"epochs": 3, "train": {"model": SEGAHNET, "transforms": [FLIP], **train}}


def test_seed_examples_parse_into_a_grouped_enum_and_a_float():
    space = parse_search_space(doc(), FILE)
    enum, flip = space.params
    assert (enum.name, enum.kind, enum.domain, enum.args) == (
        "SegAhnet.if_use_psp+final_activation", "enum", "net", ("if_use_psp", "final_activation"))
    assert enum.choices == ((True, "softmax"), (False, "sigmoid"))
    assert enum.source == "$.train.model.search[0]"
    assert (flip.name, flip.kind, flip.domain, flip.low, flip.high) == ("RandomAxisFlip.probability", "float",
                                                                         "transform", 0.0, 1.0)
    assert flip.source == "$.train.transforms[0].search[0]"
    assert space.dims == 3  # one-hot block of 2 + one coordinate


def test_enum_choice_sets_every_grouped_arg_together_and_search_is_removed():
    space = parse_search_space(doc(), FILE)
    out = space.apply(doc(), {"SegAhnet.if_use_psp+final_activation": [False, "sigmoid"],
                              "RandomAxisFlip.probability": 0.25})
    model = out["train"]["model"]
    assert model["args"]["if_use_psp"] is False and model["args"]["final_activation"] == "sigmoid"
    assert out["train"]["transforms"][0]["args"]["probability"] == 0.25
    assert "search" not in model and "search" not in out["train"]["transforms"][0]
    assert "search" in doc()["train"]["model"]  # the source document is left alone


def test_guide_three_choice_example_choice_two_assigns_true_and_sigmoid():
    model = {**SEGAHNET, "search": [{"args": ["if_use_psp", "final_activation"], "domain": "net", "type": "enum",
                                     "targets": [[True, "softmax"], [False, "sigmoid"], [True, "sigmoid"]]}]}
    d = {"model": model}
    space = parse_search_space(d, FILE)
    out = space.apply(d, {space.params[0].name: list(space.params[0].choices[2])})
    assert out["model"]["args"]["if_use_psp"] is True
    assert out["model"]["args"]["final_activation"] == "sigmoid"


def test_args_as_a_string_and_separate_items_per_arg():
    model = {**SEGAHNET, "search": [
        {"args": "if_use_psp", "domain": "net", "type": "enum", "targets": [[True], [False]]},
        {"args": "final_activation", "domain": "net", "type": "enum", "targets": [["softmax"], ["sigmoid"]]}]}
    space = parse_search_space({"model": model}, FILE)
    assert [p.args for p in space.params] == [("if_use_psp",), ("final_activation",)]
    out = space.apply({"model": model}, {"SegAhnet.if_use_psp": [True], "SegAhnet.final_activation": ["sigmoid"]})
    assert out["model"]["args"]["if_use_psp"] is True and out["model"]["args"]["final_activation"] == "sigmoid"


def test_float_value_goes_to_every_listed_arg():
    comp = {"name": "Opt", "args": {"lr": 0.1, "lr_min": 0.1},
            "search": [{"domain": "lr", "type": "float", "args": ["lr", "lr_min"], "targets": [0.001, 0.01]}]}
    space = parse_search_space({"optimizer": comp}, FILE)
    out = space.apply({"optimizer": comp}, {"Opt.lr+lr_min": 0.005})
    assert out["optimizer"]["args"] == {"lr": 0.005, "lr_min": 0.005}


def test_top_level_search_applies_to_first_level_keys():
    d = {"learning_rate": 0.1, "search": [{"args": ["learning_rate"], "type": "float", "targets": [0.01, 0.1]}]}
    space = parse_search_space(d, FILE)
    assert space.apply(d, {"learning_rate": 0.05}) == {"learning_rate": 0.05}


def test_sampling_encoding_and_decoding_stay_inside_the_space():
    space = parse_search_space(doc(), FILE)
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = space.sample(rng)
        assert space.contains(values)
        point = space.encode(values)
        assert np.all((point >= 0) & (point <= 1))
        assert space.decode(point) == values
        assert space.contains(space.perturb(values, rng, 0.3, 0.5))


def test_log_int_and_weighted_enum():
    comp = {"name": "C", "args": {"lr": 0.1, "depth": 2, "opt": "adam"}, "search": [
        {"args": "lr", "type": "float", "targets": [1e-5, 1e-1], "log": True},
        {"args": "depth", "type": "int", "targets": [1, 4]},
        {"args": "opt", "type": "enum", "targets": ["adam", "sgd"], "weights": [3, 1]}]}
    space = parse_search_space({"c": comp}, FILE)
    rng = np.random.default_rng(1)
    draws = [space.sample(rng) for _ in range(4000)]
    lrs = np.array([d["C.lr"] for d in draws])
    assert 0.4 < np.mean(lrs < 1e-3) < 0.6  # log-uniform: half the mass below the middle decade
    assert {d["C.depth"] for d in draws} == {1, 2, 3, 4}
    assert 0.72 < np.mean([d["C.opt"] == ["adam"] for d in draws]) < 0.78
    assert space.params[2].weights == (0.75, 0.25)


@pytest.mark.parametrize("item, where, expected", [
    ({"args": ["nope"], "type": "float", "targets": [0, 1]}, "$.train.model.search[0].args[0]",
     '"nope" is not an arg of component SegAhnet'),
    ({"args": "nope", "type": "float", "targets": [0, 1]}, "$.train.model.search[0].args",
     '"nope" is not an arg of component SegAhnet'),
    ({"args": ["num_classes"], "type": "float", "targets": [1]}, "$.train.model.search[0].targets",
     "expected [min, max]"),
    ({"args": ["num_classes"], "type": "float", "targets": [2, 1]}, "$.train.model.search[0].targets",
     "expected min < max"),
    ({"args": ["num_classes"], "type": "float", "targets": ["a", 1]}, "$.train.model.search[0].targets",
     "expected [min, max]"),
    ({"args": ["num_classes"], "type": "int", "targets": [1.5, 3]}, "$.train.model.search[0].targets",
     "two integers"),
    ({"args": ["num_classes"], "type": "float", "targets": [0, 1], "log": True}, "$.train.model.search[0].targets",
     "log range needs min > 0"),
    ({"args": ["if_use_psp", "final_activation"], "type": "enum", "targets": [[True]]},
     "$.train.model.search[0].targets[0]", "expected 2 value(s)"),
    ({"args": ["if_use_psp", "final_activation"], "type": "enum", "targets": [True, False]},
     "$.train.model.search[0].targets[0]", "expected a list of 2 values"),
    ({"args": ["if_use_psp"], "type": "enum", "targets": [[True], [True]]}, "$.train.model.search[0].targets",
     "a choice is listed twice"),
    ({"args": ["if_use_psp"], "type": "enum", "targets": [[True], [False]], "weights": [1]},
     "$.train.model.search[0].weights", "expected 2 weights"),
    ({"args": ["if_use_psp"], "type": "enum", "targets": [[True], [False]], "weights": [1, 0]},
     "$.train.model.search[0].weights[1]", "0"),
    ({"args": ["num_classes"], "type": "float", "targets": [0, 1], "weights": [1, 1]},
     "$.train.model.search[0].weights", "enum and bool items only"),
    ({"args": ["if_use_psp"], "type": "enum", "targets": [[True], [False]], "log": True},
     "$.train.model.search[0].log", "float and int"),
    ({"args": ["num_classes"], "type": "choice", "targets": [0, 1]}, "$.train.model.search[0].type",
     'expected one of "float", "int", "enum"'),
    ({"args": ["num_classes"], "type": "float"}, "$.train.model.search[0]", "missing required key: 'targets'"),
    ({"args": [], "type": "float", "targets": [0, 1]}, "$.train.model.search[0].args", ""),
    ({"args": ["num_classes"], "type": "float", "targets": [0, 1], "target": 1}, "$.train.model.search[0]",
     "unknown key ('target' was unexpected)"),
    ({"args": ["num_classes", "num_classes"], "type": "float", "targets": [0, 1]}, "$.train.model.search[0].args",
     "listed twice"),
    ("lr", "$.train.model.search[0]", "expected object"),
])
def test_every_malformed_item_is_rejected_with_file_and_json_path(item, where, expected):
    model = {**SEGAHNET, "search": [item]}
    with pytest.raises(ConfigError) as err:
        parse_search_space({"train": {"model": model}}, FILE)
    assert err.value.file == str(FILE)
    assert err.value.path == where
    assert expected in err.value.detail
    assert str(err.value).startswith(f"{FILE}: {where}: ")
    assert "\n" not in str(err.value)


def test_search_must_be_a_list_and_sit_beside_args():
    with pytest.raises(ConfigError, match=r"\$\.model\.search: expected a list"):
        parse_search_space({"model": {**SEGAHNET, "search": {"args": "x"}}}, FILE)
    with pytest.raises(ConfigError, match=r'\$\.model\.search: a search section must sit beside'):
        parse_search_space({"model": {"name": "X", "search": []}}, FILE)
