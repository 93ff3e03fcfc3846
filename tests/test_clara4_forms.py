"""Clara Train 4.x's AutoML examples (trn_autoML_*.json of Clara 4.1) in the shape Clara 4.x
writes its configs: components under `train` / `validate` in `pre_transforms` lists, MONAI
names and args, a `trainer` and an `evaluator`. Each of the five forms must parse, sample
and apply: the chosen value lands at its JSON place and the "disabled" flags are set.

Only the search space is exercised here (no trainer runs): parse_search_space, sample,
contains and apply on a config written as Clara 4.x writes it.
"""
import copy
from pathlib import Path

import numpy as np
import pytest

from automl_cli.errors import ConfigError
from automl_cli.space import parse_search_space
from automl_cli.trainers import is_clara4

FILE = Path("config/config_train.json")


def transforms() -> list:
    return [
        {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
        {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
        {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0,
                                                  "b_max": 1.0, "clip": True}},
        {"name": "RandFlipd", "args": {"keys": ["image", "label"], "prob": 0.5, "spatial_axis": 0}},
        {"name": "RandRotate90d", "args": {"keys": ["image", "label"], "prob": 0.5, "max_k": 3}},
        {"name": "RandShiftIntensityd", "args": {"keys": "image", "offsets": 0.1, "prob": 0.5}},
        {"name": "ToTensord", "args": {"keys": ["image", "label"]}},
    ]


def clara4(**top) -> dict:
    """A config_train.json as Clara 4.1 writes it (abridged)."""
    doc = {
        "epochs": 40,
        "num_interval_per_valid": 2,
        "learning_rate": 2e-4,
        "multi_gpu": False,
        "amp": True,
        "determinism": {"random_seed": 0},
        "train": {
            "loss": {"name": "DiceLoss", "args": {"to_onehot_y": True, "softmax": True}},
            "optimizer": {"name": "Adam", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}"}},
            "lr_scheduler": {"name": "StepLR", "args": {"optimizer": "@optimizer", "step_size": 5000, "gamma": 0.1}},
            "model": {"name": "UNet", "args": {"dimensions": 3, "in_channels": 1, "out_channels": 2,
                                               "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2],
                                               "num_res_units": 2, "norm": "batch"}},
            "pre_transforms": transforms(),
            "dataset": {"name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}",
                        "data_file_base_dir": "{DATA_ROOT}", "data_list_key": "training",
                        "args": {"cache_num": 32, "cache_rate": 1.0, "num_workers": 4}},
            "dataloader": {"name": "DataLoader", "args": {"batch_size": 2, "shuffle": True, "num_workers": 4}},
            "inferer": {"name": "SimpleInferer"},
            "handlers": [{"name": "CheckpointLoader", "disabled": "{dont_load_ckpt_model}",
                          "args": {"load_path": "{MMAR_CKPT}", "load_dict": ["model"]}},
                         {"name": "StatsHandler", "rank": 0, "args": {"tag_name": "train_loss",
                                                                     "output_transform": "lambda x: x['loss']"}}],
            "post_transforms": [{"name": "Activationsd", "args": {"keys": "pred", "softmax": True}}],
            "metrics": [{"name": "Accuracy", "log_label": "train_acc",
                         "args": {"output_transform": "lambda x: (x['pred'], x['label'])"}}],
            "trainer": {"name": "SupervisedTrainer", "args": {"max_epochs": "{epochs}"}},
        },
        "validate": {
            "pre_transforms": [{"ref": "LoadImaged"}, {"ref": "EnsureChannelFirstd"},
                               {"ref": "ScaleIntensityRanged"}, {"ref": "ToTensord"}],
            "dataset": {"name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}",
                        "data_file_base_dir": "{DATA_ROOT}", "data_list_key": "validation",
                        "args": {"cache_num": 9, "cache_rate": 1.0, "num_workers": 4}},
            "dataloader": {"name": "DataLoader", "args": {"batch_size": 1, "shuffle": False, "num_workers": 4}},
            "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [160, 160, 160], "sw_batch_size": 4}},
            "metrics": [{"name": "MeanDice", "log_label": "val_mean_dice", "is_key_metric": True,
                         "args": {"include_background": False,
                                  "output_transform": "lambda x: (x['pred'], x['label'])"}}],
            "evaluator": {"name": "SupervisedEvaluator"},
        },
    }
    doc.update(top)
    assert is_clara4(doc)
    return doc


def samples(space, n: int = 40) -> list[dict]:
    rng = np.random.default_rng(0)
    out = [space.sample(rng) for _ in range(n)]
    assert all(space.contains(v) for v in out)
    return out


def untouched_but(doc: dict, job: dict, *paths) -> None:
    """The job's config equals the original apart from `paths` (tuples of keys) and the search keys."""
    expected, got = copy.deepcopy(doc), copy.deepcopy(job)
    for path in paths:
        for tree in (expected, got):
            node = tree
            for key in path[:-1]:
                node = node[key]
            node.pop(path[-1], None)
    expected.pop("search", None)
    expected.pop("lr_search", None)
    for section in ("train", "validate"):
        for value in expected[section].values():
            for component in value if isinstance(value, list) else [value]:
                if isinstance(component, dict):
                    component.pop("search", None)
                    component.pop("apply", None)
    assert got == expected


# 1. trn_autoML_Enum.json: the network's channels and strides move together
def test_an_enum_over_grouped_network_args_sets_both_lists():
    doc = clara4()
    doc["train"]["model"]["search"] = [{
        "type": "enum", "domain": "net", "args": ["channels", "strides"],
        "targets": [[[16, 32, 64], [2, 2]], [[16, 32, 64, 128], [2, 2, 2]], [[16, 32, 64, 128, 256], [2, 2, 2, 2]]]}]
    space = parse_search_space(doc, FILE)
    [p] = space.params
    assert p.name == "UNet.channels+strides" and p.places() == ["train.model.args.channels", "train.model.args.strides"]
    seen = set()
    for values in samples(space):
        channels, strides = values[p.name]
        job = space.apply(doc, values)
        assert job["train"]["model"]["args"]["channels"] == channels
        assert job["train"]["model"]["args"]["strides"] == strides
        assert len(channels) == len(strides) + 1
        assert "search" not in job["train"]["model"]
        untouched_but(doc, job, ("train", "model", "args"))
        seen.add(len(strides))
    assert seen == {2, 3, 4}


# 2. trn_autoML_LR.json: a top-level learning_rate fed to the optimizer as "{learning_rate}"
def test_a_top_level_learning_rate_is_searched_where_it_is_and_the_optimizer_keeps_its_variable():
    doc = clara4(search=[{"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-5, 1e-3],
                          "log": True}])
    space = parse_search_space(doc, FILE)
    [p] = space.params
    assert (p.name, p.domain, p.places(), p.tags) == ("learning_rate", "lr", ["learning_rate"], ())
    for values in samples(space, 10):
        job = space.apply(doc, values)
        assert job["learning_rate"] == values["learning_rate"] and 1e-5 <= job["learning_rate"] <= 1e-3
        assert job["train"]["optimizer"]["args"]["lr"] == "{learning_rate}"  # resolved in the job's folder
        assert "search" not in job
        untouched_but(doc, job, ("learning_rate",))


# 3. trn_autoML_Loss_Optimizer.json: two losses and two optimizers, each pair switched by free tags
def test_two_losses_and_two_optimizers_as_lists_one_of_each_enabled_by_free_tags():
    doc = clara4(search=[
        {"domain": "loss", "type": "enum", "args": ["dice_off", "dicece_off"],
         "targets": [[False, True], [True, False]]},
        {"domain": "optimizer", "type": "enum", "args": ["adam_off", "sgd_off"],
         "targets": [[False, True], [True, False]]}])
    doc["train"]["loss"] = [
        {"name": "DiceLoss", "args": {"to_onehot_y": True, "softmax": True}, "apply": {"@disabled": "dice_off"}},
        {"name": "DiceCELoss", "args": {"to_onehot_y": True, "softmax": True}, "apply": {"@disabled": "dicece_off"}}]
    doc["train"]["optimizer"] = [
        {"name": "Adam", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}"},
         "apply": {"@disabled": "adam_off"}},
        {"name": "SGD", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}", "momentum": 0.9},
         "apply": {"@disabled": "sgd_off"}}]
    space = parse_search_space(doc, FILE)
    assert [p.tags for p in space.params] == [("dice_off", "dicece_off"), ("adam_off", "sgd_off")]
    assert space.params[0].places() == ["dice_off -> train.loss.0.disabled (apply)",
                                        "dicece_off -> train.loss.1.disabled (apply)"]
    combos = set()
    for values in samples(space):
        job = space.apply(doc, values)
        losses = [c["disabled"] for c in job["train"]["loss"]]
        optimizers = [c["disabled"] for c in job["train"]["optimizer"]]
        assert losses == values["dice_off+dicece_off"] and optimizers == values["adam_off+sgd_off"]
        assert sorted(losses) == [False, True] and sorted(optimizers) == [False, True]  # exactly one of each on
        assert not any(k in c for c in job["train"]["loss"] + job["train"]["optimizer"] for k in ("apply", "search"))
        assert "dice_off" not in job and "search" not in job  # a free tag is written nowhere itself
        untouched_but(doc, job, *[("train", s, i, "disabled") for s in ("loss", "optimizer") for i in (0, 1)])
        combos.add((tuple(losses), tuple(optimizers)))
    assert len(combos) == 4


# 4. trn_autoML_Transform.json: a top-level tag written with its "@", applied without it
@pytest.mark.parametrize("applied_as", ["myTransformDisable", "@myTransformDisable"])
def test_a_top_level_tag_written_with_its_at_sign_switches_the_transforms_that_apply_it(applied_as):
    doc = clara4(search=[{"domain": "transform", "type": "enum", "args": ["@myTransformDisable"],
                          "targets": [[True], [False]]}])
    doc["train"]["pre_transforms"][3]["apply"] = {"@disabled": applied_as}
    doc["train"]["pre_transforms"][4]["apply"] = {"@disabled": applied_as}
    space = parse_search_space(doc, FILE)
    [p] = space.params
    assert p.name == "myTransformDisable" and p.tags == ("myTransformDisable",)
    assert p.places() == ["train.pre_transforms.3.disabled (apply)", "train.pre_transforms.4.disabled (apply)"]
    seen = set()
    for values in samples(space, 20):
        job = space.apply(doc, values)
        [flag] = values["myTransformDisable"]
        assert job["train"]["pre_transforms"][3]["disabled"] is flag
        assert job["train"]["pre_transforms"][4]["disabled"] is flag
        assert "disabled" not in job["train"]["pre_transforms"][5]
        assert "myTransformDisable" not in job and "@myTransformDisable" not in job
        untouched_but(doc, job, ("train", "pre_transforms", 3, "disabled"), ("train", "pre_transforms", 4, "disabled"))
        seen.add(flag)
        kept = space.apply(doc, values, remove_search=False)
        assert kept["train"]["pre_transforms"][3]["apply"] == {"@disabled": applied_as}
        assert kept["train"]["pre_transforms"][3]["disabled"] is flag
    assert seen == {True, False}


def test_the_at_sign_form_and_the_plain_form_are_the_same_tag():
    plain = clara4(search=[{"type": "bool", "args": ["myTransformDisable"]}])
    at = clara4(search=[{"type": "bool", "args": ["@myTransformDisable"]}])
    for doc in (plain, at):
        doc["train"]["pre_transforms"][3]["apply"] = {"@disabled": "myTransformDisable"}
    a, b = parse_search_space(plain, FILE), parse_search_space(at, FILE)
    assert [(p.name, p.tags, p.places(), p.choices) for p in a.params] == \
        [(p.name, p.tags, p.places(), p.choices) for p in b.params]
    values = {"myTransformDisable": [True]}
    assert a.apply(plain, values) == b.apply(at, values)


def test_an_at_tag_with_an_alias_and_beside_other_tags():
    doc = clara4(search=[{"type": "enum", "args": ["@flipOff#flips", "@rotateOff"],
                          "targets": [[True, False], [False, True], [False, False]]}])
    doc["train"]["pre_transforms"][3]["apply"] = {"@disabled": "flips"}
    doc["train"]["pre_transforms"][4]["apply"] = {"@disabled": "@rotateOff"}
    space = parse_search_space(doc, FILE)
    [p] = space.params
    assert p.tags == ("flipOff", "rotateOff") and p.slot_names == ("flips", "rotateOff")
    job = space.apply(doc, {p.name: [False, True]})
    assert job["train"]["pre_transforms"][3]["disabled"] is False
    assert job["train"]["pre_transforms"][4]["disabled"] is True


@pytest.mark.parametrize("search, apply, where, expected", [
    # an @-tag nobody applies is a mistake, as a plain free tag is
    ([{"type": "bool", "args": ["@myTransformDisable"]}], None, "$.search[0].args[0]",
     "myTransformDisable"),
    # "@disabled" is the component's own attribute, never a top-level tag
    ([{"type": "bool", "args": ["@disabled"]}], None, "$.search[0].args[0]", "belongs to a component's search"),
    # an @-tag feeding "disabled" must take true or false
    ([{"type": "float", "args": ["@myProb"], "targets": [0.0, 1.0]}], {"@disabled": "myProb"},
     "$.train.pre_transforms[3].apply.@disabled", "must take true or false"),
    # the tag and the plain word written twice are one name
    ([{"type": "bool", "args": ["@off"]}, {"type": "bool", "args": ["off"]}], {"@disabled": "off"},
     "$.search[1].args[0]", 'the name "off" is given twice'),
    ([{"type": "bool", "args": ["@"]}], None, "$.search[0].args[0]", 'expected "<arg>"'),
])
def test_a_bad_at_tag_is_one_error_with_its_json_path(search, apply, where, expected):
    doc = clara4(search=search)
    if apply:
        doc["train"]["pre_transforms"][3]["apply"] = apply
    with pytest.raises(ConfigError) as err:
        parse_search_space(doc, FILE)
    assert err.value.path == where and expected in err.value.detail, str(err.value)


def test_an_at_sign_inside_a_components_search_is_still_refused():
    doc = clara4()
    doc["train"]["pre_transforms"][3]["search"] = [{"type": "bool", "args": ["@flipOff"]}]
    with pytest.raises(ConfigError) as err:
        parse_search_space(doc, FILE)
    assert err.value.path == "$.train.pre_transforms[3].search[0].args[0]"
    assert 'unknown attribute "@flipOff"' in err.value.detail


# 5. trn_autoML_TransformProb.json: one probability, named, shared by two transforms
def test_an_aliased_probability_is_applied_to_another_transform():
    doc = clara4()
    doc["train"]["pre_transforms"][3]["search"] = [{"domain": "transform", "type": "float", "args": ["prob#myProb"],
                                                    "targets": [0.0, 1.0]}]
    doc["train"]["pre_transforms"][4]["apply"] = {"prob": "myProb"}
    doc["train"]["pre_transforms"][5]["apply"] = {"prob": "myProb"}
    space = parse_search_space(doc, FILE)
    [p] = space.params
    assert p.name == "myProb" and p.places() == ["train.pre_transforms.3.args.prob",
                                                 "train.pre_transforms.4.args.prob (apply)",
                                                 "train.pre_transforms.5.args.prob (apply)"]
    for values in samples(space, 10):
        job = space.apply(doc, values)
        probs = [job["train"]["pre_transforms"][i]["args"]["prob"] for i in (3, 4, 5)]
        assert probs == [values["myProb"]] * 3 and 0.0 <= probs[0] <= 1.0
        untouched_but(doc, job, *[("train", "pre_transforms", i, "args", "prob") for i in (3, 4, 5)])


def test_all_five_forms_in_one_clara4_config():
    doc = clara4(search=[
        {"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-5, 1e-3], "log": True},
        {"domain": "transform", "type": "enum", "args": ["@myTransformDisable"], "targets": [[True], [False]]},
        {"domain": "loss", "type": "enum", "args": ["dice_off", "dicece_off"],
         "targets": [[False, True], [True, False]]},
    ])
    train = doc["train"]
    train["model"]["search"] = [{"type": "enum", "args": ["channels", "strides"],
                                 "targets": [[[16, 32, 64], [2, 2]], [[16, 32, 64, 128], [2, 2, 2]]]}]
    train["loss"] = [{"name": "DiceLoss", "args": {"softmax": True}, "apply": {"@disabled": "dice_off"}},
                     {"name": "DiceCELoss", "args": {"softmax": True}, "apply": {"@disabled": "dicece_off"}}]
    train["pre_transforms"][3]["search"] = [{"type": "float", "args": ["prob#myProb"], "targets": [0.0, 1.0]}]
    train["pre_transforms"][4]["apply"] = {"prob": "myProb"}
    train["pre_transforms"][5]["apply"] = {"@disabled": "myTransformDisable"}
    space = parse_search_space(doc, FILE)
    assert sorted(p.name for p in space.params) == ["UNet.channels+strides", "dice_off+dicece_off",
                                                    "learning_rate", "myProb", "myTransformDisable"]
    for values in samples(space, 20):
        job = space.apply(doc, values)
        assert job["learning_rate"] == values["learning_rate"]
        assert [job["train"]["model"]["args"][k] for k in ("channels", "strides")] == values["UNet.channels+strides"]
        assert [c["disabled"] for c in job["train"]["loss"]] == values["dice_off+dicece_off"]
        assert job["train"]["pre_transforms"][4]["args"]["prob"] == values["myProb"]
        assert [job["train"]["pre_transforms"][5]["disabled"]] == values["myTransformDisable"]
        assert job["validate"] == doc["validate"]
