"""Clara's further search forms: @disabled, arg#alias with apply, top-level free tags,
lr_search, and what a job's config looks like with and without remove_search_augs."""
import copy
from pathlib import Path

import numpy as np
import pytest

from automl_cli.customize import customize
from automl_cli.errors import ConfigError
from automl_cli.space import parse_search_space

FILE = Path("config/config_train.json")
AUTOML = Path("config/config_automl.json")


def flip(**extra):
    return {"name": "RandomAxisFlip", "args": {"fields": ["image", "label"], "probability": 0.0}, **extra}


def noise(**extra):
    return {"name": "AddGaussianNoise", "args": {"fields": ["image"], "probability": 0.5, "std": 0.05}, **extra}


def config(transforms=(), loss=None, **top):
    return {"epochs": 2, **top,
            "train": {"loss": loss or {"name": "DiceLoss", "args": {}},
                      "optimizer": {"name": "Adam", "args": {"lr": 0.001}},
                      "transforms": list(transforms)}}


def test_disabled_searches_the_components_own_attribute_not_its_args():
    doc = config([noise(search=[{"args": ["@disabled"], "type": "enum", "targets": [[True], [False]]}])])
    [p] = parse_search_space(doc, FILE).params
    space = parse_search_space(doc, FILE)
    assert (p.name, p.kind, p.choices) == ("AddGaussianNoise.@disabled", "enum", ((True,), (False,)))
    assert p.places() == ["train.transforms.0.disabled"]
    out = space.apply(doc, {p.name: [True]})
    assert out["train"]["transforms"][0] == {**noise(), "disabled": True}  # args untouched, search gone
    assert space.apply(doc, {p.name: [False]})["train"]["transforms"][0]["disabled"] is False


def test_disabled_as_bool_type_and_grouped_with_an_arg():
    doc = config([noise(search=[{"args": ["@disabled", "std"], "type": "enum",
                                 "targets": [[True, 0.05], [False, 0.1]]}]),
                  flip(search=[{"args": "@disabled", "type": "bool"}])])
    space = parse_search_space(doc, FILE)
    grouped, switch = space.params
    out = space.apply(doc, {grouped.name: [False, 0.1], switch.name: [True]})
    assert out["train"]["transforms"][0]["disabled"] is False
    assert out["train"]["transforms"][0]["args"]["std"] == 0.1
    assert out["train"]["transforms"][1]["disabled"] is True


def test_alias_names_the_value_and_apply_sends_it_to_every_other_component():
    doc = config([flip(search=[{"args": ["probability#aug_prob"], "type": "float", "targets": [0.0, 1.0]}]),
                  noise(apply={"probability": "aug_prob"}),
                  {"name": "AddGaussianNoise", "args": {"probability": 0.1, "std": 0.2},
                   "apply": {"probability": "aug_prob", "std": "aug_prob"}}])
    space = parse_search_space(doc, FILE)
    [p] = space.params
    assert p.name == "aug_prob" and p.args == ("probability",)
    assert p.places() == ["train.transforms.0.args.probability", "train.transforms.1.args.probability (apply)",
                          "train.transforms.2.args.probability (apply)", "train.transforms.2.args.std (apply)"]
    out = space.apply(doc, {"aug_prob": 0.3})
    transforms = out["train"]["transforms"]
    assert [t["args"]["probability"] for t in transforms] == [0.3, 0.3, 0.3]
    assert transforms[2]["args"]["std"] == 0.3
    assert all("apply" not in t and "search" not in t for t in transforms)


def test_apply_takes_one_slot_of_a_grouped_enum_by_its_alias():
    doc = config([noise(search=[{"args": ["@disabled#noise_off", "std#noise_std"], "type": "enum",
                                 "targets": [[True, 0.05], [False, 0.1]]}]),
                  flip(apply={"@disabled": "noise_off"}),
                  noise(apply={"std": "noise_std"})])
    space = parse_search_space(doc, FILE)
    [p] = space.params
    assert p.name == "noise_off+noise_std" and p.slot_names == ("noise_off", "noise_std")
    out = space.apply(doc, {p.name: [False, 0.1]})
    assert [t.get("disabled") for t in out["train"]["transforms"]] == [False, False, None]
    assert out["train"]["transforms"][2]["args"]["std"] == 0.1


def test_a_condition_may_name_an_alias():
    doc = config([flip(search=[{"args": ["probability#p"], "type": "enum", "targets": [0.0, 0.5]}]),
                  noise(search=[{"args": "std", "type": "float", "targets": [0.01, 0.2],
                                 "condition": {"param": "p", "in": [0.5]}}])])
    space = parse_search_space(doc, FILE)
    draws = [space.sample(np.random.default_rng(s)) for s in range(20)]
    assert all((d["AddGaussianNoise.std"] is None) == (d["p"] == [0.0]) for d in draws)


TWO_LOSSES = [{"name": "DiceLoss", "args": {}, "apply": {"@disabled": "dice_off"}},
              {"name": "BCELoss", "args": {}, "apply": {"@disabled": "bce_off"}}]
LOSS_TAGS = {"args": ["dice_off", "bce_off"], "type": "enum", "targets": [[False, True], [True, False]]}


def test_top_level_free_tags_pick_one_of_two_losses_and_are_written_nowhere_else():
    doc = config(loss=copy.deepcopy(TWO_LOSSES), search=[LOSS_TAGS])
    space = parse_search_space(doc, FILE)
    [p] = space.params
    assert p.tags == ("dice_off", "bce_off") and p.holder == ()
    assert p.places() == ["dice_off -> train.loss.0.disabled (apply)", "bce_off -> train.loss.1.disabled (apply)"]
    out = space.apply(doc, {p.name: [True, False]})
    assert [loss.get("disabled") for loss in out["train"]["loss"]] == [True, False]
    assert "dice_off" not in out and "bce_off" not in out and "search" not in out


def test_top_level_search_mixes_first_level_keys_and_tags():
    doc = config(loss=copy.deepcopy(TWO_LOSSES), batch_size=8,
                 search=[{"args": ["batch_size", "dice_off", "bce_off"], "type": "enum",
                          "targets": [[4, False, True], [8, True, False]]}])
    space = parse_search_space(doc, FILE)
    out = space.apply(doc, {space.params[0].name: [4, False, True]})
    assert out["batch_size"] == 4 and [loss["disabled"] for loss in out["train"]["loss"]] == [False, True]


def test_lr_search_prefers_the_top_level_learning_rate_and_is_log_scaled():
    doc = config(learning_rate=0.01, lr_search=[1e-4, 1e-1])
    doc["train"]["optimizer"]["args"]["lr"] = "{learning_rate}"
    space = parse_search_space(doc, FILE)
    [p] = space.params
    assert (p.name, p.holder, p.args, p.log, p.domain, p.source) == ("learning_rate", (), ("learning_rate",), True,
                                                                     "lr", "$.lr_search")
    out = space.apply(doc, {"learning_rate": 0.002})
    assert out["learning_rate"] == 0.002 and "lr_search" not in out
    assert out["train"]["optimizer"]["args"]["lr"] == "{learning_rate}"  # resolved in the job, as Clara does
    lrs = np.array([space.sample(np.random.default_rng(s))["learning_rate"] for s in range(400)])
    assert 0.4 < np.mean(lrs < 1e-2) < 0.85  # log-uniform: two of three decades below 1e-2


def test_lr_search_falls_back_to_the_optimizers_lr_and_is_linear_from_zero():
    doc = config(lr_search=[0, 0.01])
    [p] = parse_search_space(doc, FILE).params
    assert (p.name, p.places(), p.log) == ("Adam.lr", ["train.optimizer.args.lr"], False)


def test_without_remove_search_augs_the_keys_stay_and_the_values_are_still_written():
    doc = config([flip(search=[{"args": ["probability#p"], "type": "float", "targets": [0.0, 1.0]}]),
                  noise(apply={"probability": "p"},
                        search=[{"args": ["@disabled"], "type": "enum", "targets": [[True], [False]]}])],
                 lr_search=[1e-4, 1e-2])
    space = parse_search_space(doc, FILE)
    values = {"p": 0.7, "AddGaussianNoise.@disabled": [True], "Adam.lr": 0.005}
    kept = space.apply(doc, values, remove_search=False)
    assert kept["lr_search"] == [1e-4, 1e-2] and kept["train"]["transforms"][1]["apply"] == {"probability": "p"}
    assert kept["train"]["transforms"][1]["disabled"] is True
    assert kept["train"]["transforms"][1]["args"]["probability"] == 0.7
    assert kept["train"]["optimizer"]["args"]["lr"] == 0.005
    removed = space.apply(doc, values)
    assert removed["train"]["transforms"][1] == {**noise(), "disabled": True, "args": {**noise()["args"],
                                                                                     "probability": 0.7}}


def test_an_alias_works_as_a_name_in_custom_automl_ranges():
    doc = config([flip(search=[{"args": ["probability#p"], "type": "float", "targets": [0.0, 1.0]}])])
    space, _ = customize(parse_search_space(doc, FILE), doc, {"custom_automl_ranges": {"p": {"valid_max": 0.5}}},
                         AUTOML)
    assert space.params[0].high == 0.5


def test_a_custom_range_cannot_turn_a_switch_into_numbers():
    doc = config([noise(search=[{"args": ["@disabled#noise_off"], "type": "bool"}])])
    with pytest.raises(ConfigError) as err:
        customize(parse_search_space(doc, FILE), doc,
                  {"custom_automl_ranges": {"noise_off": {"valid_options": [0, 1]}}}, AUTOML)
    assert err.value.path == "$.custom_automl_ranges.noise_off" and "true or false" in err.value.detail


SEARCH_P = [{"args": ["probability#p"], "type": "float", "targets": [0.0, 1.0]}]


@pytest.mark.parametrize("doc, where, expected", [
    (config([flip(search=SEARCH_P), noise(apply={"probability": "q"})]), "$.train.transforms[1].apply.probability",
     'unknown parameter "q" (known: p)'),
    (config([flip(search=SEARCH_P), noise(apply={"prob": "p"})]), "$.train.transforms[1].apply.prob",
     '"prob" is not an arg of component AddGaussianNoise'),
    (config([flip(search=SEARCH_P), noise(apply={"@disabled": "p"})]), "$.train.transforms[1].apply.@disabled",
     'must take true or false, but it takes [0, 1]'),
    (config([flip(search=SEARCH_P), noise(apply=["p"])]), "$.train.transforms[1].apply", "expected an object"),
    (config([flip(search=SEARCH_P), noise(apply={"probability": 3})]), "$.train.transforms[1].apply.probability",
     "unknown parameter 3"),
    (config([flip(search=SEARCH_P), flip(apply={"probability": "p"},
                                         search=[{"args": "probability", "type": "float", "targets": [0, 1]}])]),
     "$.train.transforms[1].apply.probability", "train.transforms.1.args.probability is set by two searched values"),
    (config([flip(search=SEARCH_P), noise(search=SEARCH_P)]), "$.train.transforms[1].search[0].args[0]",
     'the name "p" is given twice (first at $.train.transforms[0].search[0].args[0])'),
    (config([flip(search=[{"args": "probability#", "type": "float", "targets": [0, 1]}])]),
     "$.train.transforms[0].search[0].args", 'expected "<arg>" or "<arg>#<name>"'),
    (config([noise(search=[{"args": ["@enabled"], "type": "bool"}])]), "$.train.transforms[0].search[0].args[0]",
     'unknown attribute "@enabled"'),
    (config([noise(search=[{"args": ["@disabled"], "type": "float", "targets": [0, 1]}])]),
     "$.train.transforms[0].search[0].type", '"@disabled" takes true or false'),
    (config([noise(search=[{"args": ["@disabled"], "type": "enum", "targets": [[1], [0]]}])]),
     "$.train.transforms[0].search[0].targets[0]", '"@disabled" takes true or false, got 1'),
    (config(search=[{"args": ["@disabled"], "type": "bool"}]), "$.search[0].args[0]",
     "belongs to a component's search"),
    (config(search=[{"args": ["dice_of"], "type": "bool"}]), "$.search[0].args[0]",
     '"dice_of" is neither a first-level key nor a tag that a component applies'),
    (config(loss=copy.deepcopy(TWO_LOSSES), search=[{**LOSS_TAGS, "args": ["dice_off", "bce_of"]}]),
     "$.train.loss[1].apply.@disabled", 'unknown parameter "bce_off" (known: dice_off, bce_of)'),
    ({**config(), "apply": {"epochs": "x"}}, "$.apply", 'an "apply" belongs to a component'),
    (config([flip(search=[{"args": "probability", "type": "float", "targets": [0, 1]}]),
             flip(search=[{"args": "probability", "type": "float", "targets": [0, 1]}]),
             noise(apply={"probability": "RandomAxisFlip.probability"})]),
     "$.train.transforms[2].apply.probability", '"RandomAxisFlip.probability" names several searched values'),
    (config([flip(search=[{"args": "probability#Adam.lr", "type": "float", "targets": [0, 1]}])], lr_search=[0, 1]),
     "$.lr_search", '"Adam.lr" names this parameter and also the alias or tag at $.train.transforms[0].search[0]'),
    (config(lr_search=[0.1]), "$.lr_search", "expected [min, max], two numbers, got [0.1]"),
    (config(lr_search="0.1"), "$.lr_search", "expected [min, max]"),
    (config(lr_search=[0.1, 0.01]), "$.lr_search", "expected 0 <= min < max"),
    (config(lr_search=[-1, 0.01]), "$.lr_search", "expected 0 <= min < max"),
    ({"epochs": 1, "lr_search": [0.001, 0.1]}, "$.lr_search", "no learning rate to search"),
    ({**config(lr_search=[0.001, 0.1]), "train": {"optimizer": {"name": "Adam", "args": {"lr": 0.1}, "search": [
        {"args": "lr", "type": "float", "targets": [0.01, 0.1]}]}}}, "$.lr_search",
     "train.optimizer.args.lr is set by two searched values: $.train.optimizer.search[0] and this one"),
])
def test_every_malformed_form_is_rejected_with_file_and_json_path(doc, where, expected):
    with pytest.raises(ConfigError) as err:
        parse_search_space(doc, FILE)
    assert err.value.file == str(FILE)
    assert err.value.path == where
    assert expected in err.value.detail
    assert "\n" not in str(err.value)
