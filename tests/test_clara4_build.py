"""Clara 4.x's config language, built with MONAI: references, expressions, disabled
entries, list-form entries, renamed arguments, and the errors a user sees."""
from pathlib import Path

import pytest

pytest.importorskip("monai")

from automl_cli.clara4.build import BuildError, Builder, BuildOptions  # noqa: E402
from automl_cli.clara4.names import modernise, find_by_name, UnknownComponent  # noqa: E402


def builder(config: dict, tmp_path: Path, log=None) -> Builder:
    return Builder(config, BuildOptions(mmar_root=tmp_path, log=log or (lambda m: None)))


def unet(**extra):
    return {"name": "UNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8],
                                     "strides": [2], **extra}}


def test_references_and_expressions_reach_across_sections(tmp_path):
    import torch

    config = {
        "learning_rate": 0.01,
        "train": {
            "model": unet(),
            "optimizer": {"name": "Adam", "args": {"params": "#@model.parameters()", "lr": 0.01}},
            "lr_scheduler": {"name": "StepLR", "args": {"optimizer": "@optimizer", "step_size": 2}},
        },
        "validate": {"inferer": {"name": "SimpleInferer"},
                     "net": {"ref": "model"},
                     "handler": {"name": "CheckpointSaver", "args": {"save_dir": "models",
                                                                     "save_dict": {"model": "@model", "c": "@conf"}}}},
    }
    b = builder(config, tmp_path)
    scheduler = b.get("train", "lr_scheduler")
    optimizer = b.get("train", "optimizer")
    model = b.get("train", "model")
    assert isinstance(optimizer, torch.optim.Adam) and scheduler.optimizer is optimizer
    assert [p for g in optimizer.param_groups for p in g["params"]] == list(model.parameters())
    assert b.get("validate", "net") is model  # `ref` and cross-section lookup: the same object
    saver = b.get("validate", "handler")
    assert saver is not None and b.built[("train", "model")] is model  # built once


def test_expression_with_modules_and_from_engine(tmp_path):
    b = builder({"train": {"out": {"name": "StatsHandler", "args": {
        "output_transform": "#monai.handlers.from_engine(['loss'], first=True)"}}}, "validate": {}}, tmp_path)
    handler = b.get("train", "out")
    assert handler.output_transform([{"loss": 3.0}]) == 3.0


def test_disabled_entries_and_list_forms(tmp_path):
    config = {"train": {
        "model": unet(),
        "loss": [{"name": "DiceLoss", "args": {"softmax": True}, "disabled": "true"},
                 {"name": "FocalLoss", "args": {}, "disabled": False}],
        "optimizer": [{"name": "Adam", "args": {"params": "#@model.parameters()"}, "disabled": True},
                      {"name": "Novograd", "args": {"params": "#@model.parameters()", "lr": 0.1}}],
        "pre_transforms": [{"name": "ScaleIntensityd", "args": {"keys": "image"}},
                           {"name": "RandFlipd", "args": {"keys": "image", "prob": 0.5}, "disabled": "1"},
                           {"name": "RandFlipd", "args": {"keys": "image", "prob": 0.5}, "rank": 1}],
    }, "validate": {}}
    b = builder(config, tmp_path)
    assert type(b.get("train", "loss")).__name__ == "FocalLoss"
    assert type(b.get("train", "optimizer")).__name__ == "Novograd"
    assert [type(t).__name__ for t in b.get("train", "pre_transforms").transforms] == ["ScaleIntensityd"]


def test_two_enabled_optimizers_are_an_error_naming_the_entry(tmp_path):
    config = {"train": {"model": unet(), "optimizer": [
        {"name": "Adam", "args": {"params": "#@model.parameters()"}},
        {"name": "SGD", "args": {"params": "#@model.parameters()", "lr": 0.1}}]}, "validate": {}}
    with pytest.raises(BuildError, match="exactly one optimizer must be enabled, found 2") as info:
        builder(config, tmp_path).get("train", "optimizer")
    assert info.value.where == ["train", "optimizer"]


def test_unknown_reference_cycle_and_bad_arg_name_their_place(tmp_path):
    with pytest.raises(BuildError, match="'@network' refers to nothing") as info:
        builder({"train": {"optimizer": {"name": "Adam", "args": {"params": "#@network.parameters()"}}},
                 "validate": {}}, tmp_path).get("train", "optimizer")
    assert info.value.where == ["train", "optimizer", "args", "params"]
    with pytest.raises(BuildError, match="reference cycle: train.a -> train.b -> train.a"):
        builder({"train": {"a": {"name": "Compose", "args": {"transforms": "@b"}},
                           "b": {"name": "Compose", "args": {"transforms": "@a"}}}, "validate": {}},
                tmp_path).get("train", "a")
    with pytest.raises(BuildError, match="UNet takes no argument 'chanels'") as info:
        builder({"train": {"model": unet(chanels=[1])}, "validate": {}}, tmp_path).get("train", "model")
    assert info.value.where == ["train", "model", "args", "chanels"]
    with pytest.raises(BuildError, match="unknown component 'UNett'"):
        builder({"train": {"model": {"name": "UNett"}}, "validate": {}}, tmp_path).get("train", "model")


def test_clara41_argument_names_are_mapped_with_a_warning(tmp_path):
    logged = []
    args = unet()["args"]
    args["dimensions"] = args.pop("spatial_dims")
    config = {"train": {"model": {"name": "UNet", "args": args},
                        "post": {"name": "AsDiscreted", "args": {"keys": "pred", "argmax": True, "to_onehot": True,
                                                                 "n_classes": 2}},
                        "chan": {"name": "AddChanneld", "args": {"keys": "image"}}}, "validate": {}}
    b = builder(config, tmp_path, logged.append)
    assert b.get("train", "model").dimensions == 2
    post = b.get("train", "post")
    assert list(post.to_onehot) == [2]
    assert type(b.get("train", "chan")).__name__ == "EnsureChannelFirstd"
    assert any("'dimensions' is now 'spatial_dims'" in line for line in logged)
    assert any("'to_onehot=True, n_classes=2' is now 'to_onehot=2'" in line for line in logged)
    assert any("AddChanneld was removed from MONAI" in line for line in logged)


def test_modernise_leaves_current_names_alone():
    target = find_by_name("UNet")
    args, warnings = modernise("UNet", target, unet()["args"])
    assert args == unet()["args"] and warnings == []
    with pytest.raises(UnknownComponent):
        find_by_name("NoSuchThing")


def test_as_discrete_per_key_onehot_flags_are_mapped():
    target = find_by_name("AsDiscreted")
    args, warnings = modernise("AsDiscreted", target, {"keys": ["pred", "label"], "argmax": [True, False],
                                                       "to_onehot": [True, True], "n_classes": 3})
    assert args == {"keys": ["pred", "label"], "argmax": [True, False], "to_onehot": [3, 3]} and len(warnings) == 1
    args, _ = modernise("AsDiscreted", target, {"keys": "pred", "threshold_values": True, "logit_thresh": 0.3})
    assert args == {"keys": "pred", "threshold": 0.3}
