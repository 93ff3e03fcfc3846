"""The reference trainer's side of Clara's search forms: "disabled" components, a list of
losses, and learning-rate policies."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from automl_cli.train import loop
from automl_cli.train.losses import BCELoss, DiceLoss
from automl_cli.train.lr_policies import CosineDecay, StepDecay
from automl_cli.train.registry import known
from conftest import ROOT, run_cli

QUIET = {"log": lambda line: None}
BROKEN_TRANSFORM = {"name": "AddGaussianNoise", "args": {"fields": ["no_such_field"]}}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config() -> dict:
    text = (ROOT / "mmar_template" / "config" / "config_train.json").read_text()
    config = json.loads(text.replace("{PRETRAIN_WEIGHTS_FILE}", ""))
    config.pop("search")
    config["train"]["data"]["args"]["num_samples"] = 16
    config["validate"]["data"]["args"]["num_samples"] = 8
    config["train"]["model"]["args"]["base_channels"] = 4
    for component in [config["train"]["model"], config["train"]["optimizer"], *config["train"]["transforms"]]:
        component.pop("search", None)
    return config


def lines(root: Path) -> list[dict]:
    rows = [json.loads(line) for line in (root / "models" / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_a_disabled_transform_is_skipped_as_if_it_were_not_there(tmp_path):
    plain = tiny_config()
    switched = copy.deepcopy(plain)
    # called, this transform would fail (its field does not exist): disabled, it never runs
    switched["train"]["transforms"].insert(1, {**BROKEN_TRANSFORM, "disabled": True})
    switched["validate"]["transforms"].append({**BROKEN_TRANSFORM, "disabled": True})
    loop.train(plain, tmp_path / "plain", epochs=1, **QUIET)
    loop.train(switched, tmp_path / "switched", epochs=1, **QUIET)
    assert lines(tmp_path / "switched") == lines(tmp_path / "plain")

    switched["train"]["transforms"][1]["disabled"] = False  # and enabled it really runs
    with pytest.raises(KeyError, match="no_such_field"):
        loop.train(switched, tmp_path / "enabled", epochs=1, **QUIET)


def test_losses_in_a_list_drop_the_disabled_and_sum_the_enabled():
    config = tiny_config()
    dice, bce = {"name": "DiceLoss", "args": {}}, {"name": "BCELoss", "args": {}}
    config["train"]["loss"] = [dice, {**bce, "disabled": True}]
    assert isinstance(loop._build_loss(config), DiceLoss)
    config["train"]["loss"] = [dice, {**bce, "disabled": False}]
    both = loop._build_loss(config)
    probs = torch.softmax(torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    label = torch.randint(0, 2, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    assert float(both(probs, label)) == pytest.approx(float(DiceLoss()(probs, label) + BCELoss()(probs, label)))
    config["train"]["loss"] = {**dice, "disabled": True}
    with pytest.raises(ValueError, match=r"^train\.loss: every loss is disabled; at least one must be enabled$"):
        loop._build_loss(config)


def test_every_loss_disabled_fails_the_training_with_one_line_saying_so(tmp_path):
    root = tmp_path / "mmar"
    (root / "config").mkdir(parents=True)
    config = tiny_config()
    config["train"]["loss"] = [{"name": "DiceLoss", "args": {}, "disabled": True},
                               {"name": "BCELoss", "args": {}, "disabled": True}]
    (root / "config" / "config_train.json").write_text(json.dumps(config))
    result = run_cli("train", "-m", str(root), "--epochs", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("train.loss: every loss is disabled; at least one must "
                                                           "be enabled")


@pytest.mark.parametrize("where, value, expected", [
    (("train", "transforms", 0), "yes", r"train\.transforms\[0\]\.disabled must be true or false, got 'yes'"),
    (("train", "model"), True, r"train\.model is disabled, but training needs it"),
    (("train", "optimizer"), True, r"train\.optimizer is disabled"),
])
def test_a_disabled_flag_that_cannot_be_honoured_is_a_clear_error(tmp_path, where, value, expected):
    config = tiny_config()
    node = config
    for part in where:
        node = node[part]
    node["disabled"] = value
    with pytest.raises(ValueError, match=expected):
        loop.train(config, tmp_path, epochs=1, **QUIET)


def test_bce_loss_is_zero_for_a_perfect_prediction_and_log2_for_a_coin_flip():
    label = torch.tensor([[[0, 1], [1, 0]]])
    perfect = torch.nn.functional.one_hot(label, 2).movedim(-1, 1).float()
    assert float(BCELoss()(perfect, label)) < 1e-5
    assert float(BCELoss()(torch.full((1, 2, 2, 2), 0.5), label)) == pytest.approx(math.log(2))


def test_lr_policies_are_registered_and_give_their_factors():
    assert known("lr_policy") == ["CosineDecay", "StepDecay"]
    assert "BCELoss" in known("loss")
    assert [StepDecay(step_size=2, gamma=0.5).factor(e, 10) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    cosine = CosineDecay(min_factor=0.1)
    assert cosine.factor(0, 4) == 1.0 and cosine.factor(2, 4) == pytest.approx(0.55)
    assert cosine.factor(4, 4) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="gamma"):
        StepDecay(gamma=0)


def test_the_lr_follows_the_enabled_policies_and_resumes_exactly(tmp_path):
    config = tiny_config()
    config["epochs"] = 3
    config["train"]["optimizer"]["args"]["lr"] = 0.01
    config["train"]["lr_policy"] = [{"name": "StepDecay", "args": {"step_size": 1, "gamma": 0.5}},
                                    {"name": "CosineDecay", "args": {}, "disabled": True}]
    logged: list[str] = []
    loop.train(config, tmp_path / "straight", log=logged.append)
    rates = [line.split(" lr ")[1].split()[0] for line in logged if line.startswith("epoch ")]
    assert rates == ["0.01", "0.005", "0.0025"]
    loop.train(config, tmp_path / "resumed", epochs=1, **QUIET)
    loop.train(config, tmp_path / "resumed", **QUIET)
    resumed, straight = lines(tmp_path / "resumed"), lines(tmp_path / "straight")
    assert len(resumed) == len(straight) == 3
    for a, b in zip(resumed, straight):
        assert a == pytest.approx(b, abs=1e-6)
