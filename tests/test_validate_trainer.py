"""`automl validate` (and the start of `automl run`) check config_train.json against the
trainer that will train it: a name the registry does not know, an arg the class does not
take or a missing section would fail every job, so it fails here, once, in one line naming
the file and the JSON path (exit 2, nothing started)."""
import copy
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from automl_cli.errors import ConfigError
from automl_cli.mmar import MMAR
from automl_cli.train.check import check_reference
from automl_cli.trainers import check_train_config
from conftest import ROOT, run_cli, write_json

FILE = Path("config/config_train.json")
TEMPLATE_CONFIGS = sorted(p.name for p in (ROOT / "mmar_template" / "config").glob("*.json")
                          if p.name.startswith(("config_train", "trn_")))
SEGAHNET_ARGS = ("num_classes, if_use_psp, pretrain_weight_name, plane, final_activation, n_spatial_dim, "
                 "in_channels, base_channels")


def template(name: str = "config_train.json") -> dict:
    config, _ = MMAR.open(ROOT / "mmar_template").load_train_config(name, resolve=True)
    return config


@pytest.fixture
def mmar(tmp_path: Path) -> Path:
    root = tmp_path / "mmar"
    shutil.copytree(ROOT / "mmar_template", root, ignore=shutil.ignore_patterns("automl"))
    return root


def edit(root: Path, change, name: str = "config_train.json", automl: bool = False) -> None:
    path = root / "config" / (("config_automl.json" if automl else name))
    doc = json.loads(path.read_text())
    change(doc)
    write_json(path, doc)


@pytest.mark.parametrize("name", TEMPLATE_CONFIGS)
def test_every_template_config_passes_and_is_described(name):
    lines = check_reference(template(name), FILE)
    assert len(lines) == 1 and lines[0].startswith("trainer reference: model SegAhnet, loss DiceLoss")
    assert "optimizer Adam" in lines[0] and "metric MeanDice" in lines[0]


def test_the_description_names_several_losses_and_policies():
    [line] = check_reference(template("trn_autoML_Loss_Optimizer.json"), FILE)
    assert "loss DiceLoss + BCELoss" in line and "1 train and 1 validate transform(s)" in line
    [line] = check_reference(template("trn_autoML_LR_LP.json"), FILE)
    assert "lr policy StepDecay + CosineDecay" in line


def _set(path: tuple, value):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _drop(path: tuple):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


def _loss_list(*flags):
    return _set(("train", "loss"), [{"name": "DiceLoss", "args": {}, "disabled": f} for f in flags])


@pytest.mark.parametrize("change, where, message", [
    (_set(("train", "model", "name"), "SegAhnett"), "$.train.model.name",
     "unknown model 'SegAhnett' (known: SegAhnet)"),
    (_set(("train", "model", "args", "bse_channels"), 8), "$.train.model.args.bse_channels",
     f"SegAhnet has no arg 'bse_channels' (its args: {SEGAHNET_ARGS})"),
    (_set(("train", "optimizer", "args", "momentum"), 0.9), "$.train.optimizer.args.momentum",
     "Adam has no arg 'momentum' (its args: lr, betas, eps, weight_decay, amsgrad"),
    (_set(("train", "optimizer", "args", "params"), "#@model.parameters()"), "$.train.optimizer.args.params",
     "Adam's 'params' is given by the trainer (the model's parameters)"),
    (_set(("train", "optimizer", "name"), "Adamm"), "$.train.optimizer.name",
     "unknown optimizer 'Adamm' (known: Adam, AdamW, SGD)"),
    (_set(("train", "optimizer"), [{"name": "Adam", "args": {}}, {"name": "SGD", "args": {"lr": 0.1}}]),
     "$.train.optimizer", "expected one optimizer (an object), got a list"),
    (_set(("train", "loss"), [{"name": "DiceLoss", "args": {}}, {"name": "DiceLos", "args": {}}]),
     "$.train.loss[1].name", "unknown loss 'DiceLos' (known: BCELoss, DiceLoss)"),
    (_set(("train", "loss", "args", "squared_pred"), True), "$.train.loss.args.squared_pred",
     "DiceLoss has no arg 'squared_pred' (its args: smooth, include_background)"),
    (_set(("train", "transforms", 1, "name"), "RandFlip"), "$.train.transforms[1].name",
     "unknown transform 'RandFlip' (known: AddGaussianNoise, RandomAxisFlip, ScaleIntensity)"),
    (_set(("validate", "transforms", 0, "args"), {"keys": ["image"]}), "$.validate.transforms[0].args.keys",
     "ScaleIntensity has no arg 'keys' (its args: fields)"),
    (_set(("validate", "metric", "name"), "Dice"), "$.validate.metric.name", "unknown metric 'Dice' (known: MeanDice)"),
    (_set(("train", "data", "args", "size"), 32), "$.train.data.args.size", "SyntheticShapes2D has no arg 'size'"),
    (_set(("train", "lr_policy"), {"name": "Cosine", "args": {}}), "$.train.lr_policy.name",
     "unknown learning-rate policy 'Cosine' (known: CosineDecay, StepDecay)"),
    (_set(("train", "model", "args"), [1]), "$.train.model.args", "expected an object of SegAhnet's args, got [1]"),
    (_set(("train", "model"), {"path": "my.Net", "args": {}}), "$.train.model",
     'a "path" to your own class works only with a train_command of your own'),
    (_set(("train", "transforms", 0, "disabled"), "yes"), "$.train.transforms[0].disabled",
     'expected true or false, got "yes"'),
    (_set(("train", "model", "disabled"), True), "$.train.model.disabled",
     "the model is disabled, but training needs it"),
    (_loss_list(True, True), "$.train.loss", "every loss is disabled (and no search switches one on)"),
    (_set(("train", "loss"), []), "$.train.loss", "expected a loss or a list of them, got []"),
    (_drop(("validate",)), "$", 'the reference trainer needs a "validate" section (an object); it is missing'),
    (_set(("train",), [1]), "$.train", 'the reference trainer needs a "train" section (an object); it is a list'),
    (_drop(("train", "model")), "$.train", 'the reference trainer needs "train.model" (the model); the config has '
                                           "no train.model"),
    (_drop(("validate", "metric")), "$.validate", 'needs "validate.metric" (the metric)'),
    (_set(("batch_size",), "8"), "$.batch_size", 'expected an integer >= 1, got "8"'),
])
def test_what_would_fail_every_job_is_one_config_error(change, where, message):
    config = template()
    change(config)
    with pytest.raises(ConfigError) as err:
        check_reference(config, FILE)
    assert err.value.file == str(FILE) and err.value.path == where, str(err.value)
    assert message in err.value.detail, str(err.value)
    assert "\n" not in str(err.value)


def test_the_config_is_checked_as_written_a_component_a_search_switches_is_fine():
    config = template("trn_autoML_Loss_Optimizer.json")
    for loss in config["train"]["loss"]:
        loss["disabled"] = True  # as written; the search's free tags switch one on in each job
    check_reference(config, FILE)
    config = template("trn_autoML_Transform.json")
    config["train"]["transforms"][2]["disabled"] = True  # its own "@disabled" search item
    check_reference(config, FILE)
    config["train"]["transforms"][2]["name"] = "AddGaussianNoize"  # a disabled one is still checked
    with pytest.raises(ConfigError) as err:
        check_reference(config, FILE)
    assert err.value.path == "$.train.transforms[2].name"


def test_optional_sections_may_be_missing_or_null():
    config = template()
    del config["validate"]["transforms"]
    config["train"]["lr_policy"] = None
    config["train"].pop("transforms")
    [line] = check_reference(config, FILE)
    assert "0 train and 0 validate transform(s)" in line


def test_importing_the_check_does_not_import_torch():
    code = ("import sys, automl_cli.train.check, automl_cli.trainers, automl_cli.runconfig; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "False", result.stderr


def test_check_train_config_dispatches_by_the_configs_form_or_the_choice(monkeypatch):
    calls = []
    fake = types.ModuleType("automl_cli.clara4.check")
    fake.check_clara4 = lambda config, path, metric=None: calls.append((path, metric)) or ["trainer clara4: checked"]
    monkeypatch.setitem(sys.modules, "automl_cli.clara4.check", fake)
    clara4 = {"epochs": 1, "train": {"trainer": {"name": "SupervisedTrainer"}}}
    assert check_train_config(clara4, FILE) == ["trainer clara4: checked"]
    assert check_train_config(template(), FILE, "clara4", metric="dice") == ["trainer clara4: checked"]
    assert calls == [(FILE, None), (FILE, "dice")]
    assert check_train_config(template(), FILE)[0].startswith("trainer reference:")
    assert check_train_config(template(), FILE, "auto")[0].startswith("trainer reference:")
    with pytest.raises(ConfigError) as err:
        check_train_config(clara4, FILE, "reference")
    assert err.value.path == "$" and '"validate" section' in err.value.detail


def test_a_clara4_config_without_monai_is_one_line_naming_the_extra(monkeypatch):
    import automl_cli.trainers as trainers

    monkeypatch.setattr(trainers, "monai_available", lambda: False)
    with pytest.raises(ConfigError) as err:
        check_train_config({"train": {"trainer": {}}}, FILE)
    assert err.value.path == "$" and "pip install 'automl-cli[monai]'" in err.value.detail


@pytest.mark.parametrize("metric, change, where", [
    ("val_mean_dice", None, None),
    ("train_loss", None, None),
    ("val_dice", None, "$.validate.metric"),  # MeanDice's default key is val_mean_dice
    ("val_dice", _set(("validate", "metric", "args"), {"key": "val_dice"}), None),
    ("val_mean_dice", _set(("validate", "metric", "args"), {"key": "val_dice"}), "$.validate.metric.args.key"),
])
def test_the_searchs_metric_must_be_one_the_trainer_writes(metric, change, where):
    config = template()
    config["validate"]["metric"]["args"] = {}
    if change:
        change(config)
    if where is None:
        [line] = check_reference(config, FILE, metric=metric)
        assert "metric MeanDice (val_" in line
        return
    with pytest.raises(ConfigError) as err:
        check_reference(config, FILE, metric=metric)
    assert err.value.path == where and f"the search's metric is '{metric}'" in err.value.detail


# -- through the command line ------------------------------------------------------------------
def test_validate_prints_the_trainers_line(mmar):
    result = run_cli("validate", "-m", str(mmar))
    assert result.returncode == 0, result.stderr
    assert "trainer reference: model SegAhnet, loss DiceLoss, optimizer Adam" in result.stdout
    assert result.stdout.index("executor MMARExecutor") < result.stdout.index("trainer reference")


def test_validate_and_run_refuse_a_metric_the_trainer_does_not_write(mmar):
    edit(mmar, lambda doc: doc.update(metric="val_dice"), automl=True)
    for command in (["validate", "-m", str(mmar)], ["run", "-m", str(mmar), "--run-id", "x"]):
        result = run_cli(*command)
        assert result.returncode == 2
        [line] = result.stderr.strip().splitlines()
        assert line.endswith("config_train.json: $.validate.metric.args.key: the trainer writes 'val_mean_dice' (and "
                             "'train_loss') each epoch, but the search's metric is 'val_dice' (config_automl.json): "
                             "every job would end without it")
    assert not (mmar / "automl").exists()


def test_validate_refuses_a_misspelt_model_in_one_line(mmar):
    edit(mmar, _set(("train", "model", "name"), "SegAhnett"))
    result = run_cli("validate", "-m", str(mmar))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"automl: error: {mmar}/config/config_train.json: $.train.model.name: "
                                     "unknown model 'SegAhnett' (known: SegAhnet)")


def test_validate_checks_the_training_config_it_is_given(mmar):
    edit(mmar, _set(("train", "optimizer", "args", "nesterov"), True), name="trn_autoML_Enum.json")
    result = run_cli("validate", "-m", str(mmar), "--trainconf", "trn_autoML_Enum.json")
    assert result.returncode == 2
    assert "trn_autoML_Enum.json: $.train.optimizer.args.nesterov: Adam has no arg 'nesterov'" in result.stderr


def test_run_refuses_before_anything_starts(mmar):
    edit(mmar, _set(("train", "model", "args", "bse_channels"), 8))
    result = run_cli("run", "-m", str(mmar), "--set", "run_id=r1", "workers=0")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"automl: error: {mmar}/config/config_train.json: $.train.model.args.bse_channels: "
                           "SegAhnet has no arg 'bse_channels'")
    assert not (mmar / "automl").exists()


def test_a_train_command_of_ones_own_is_not_checked_unless_a_trainer_is_chosen(fake_mmar):
    result = run_cli("validate", "-m", str(fake_mmar))
    assert result.returncode == 0, result.stderr
    assert "trainer: your own (executor.args.train_command)" in result.stdout
    edit(fake_mmar, lambda doc: doc["executor"]["args"].update(trainer="reference"), automl=True)
    result = run_cli("validate", "-m", str(fake_mmar))
    assert result.returncode == 2
    assert "config_train.json: $: the reference trainer needs a \"train\" section" in result.stderr


def test_a_train_command_running_automl_train_is_checked(mmar):
    edit(mmar, lambda doc: doc["executor"]["args"].update(
        train_command="automl train -m {mmar} --trainconf {trainconf} --epochs {epochs}"), automl=True)
    edit(mmar, _set(("train", "loss", "name"), "Dice"))
    result = run_cli("validate", "-m", str(mmar))
    assert result.returncode == 2 and "$.train.loss.name: unknown loss 'Dice'" in result.stderr


@pytest.mark.parametrize("trainer", ["auto", "reference"])
def test_the_trainer_key_is_accepted(mmar, trainer):
    edit(mmar, lambda doc: doc["executor"]["args"].update(trainer=trainer), automl=True)
    result = run_cli("validate", "-m", str(mmar))
    assert result.returncode == 0, result.stderr
    assert "trainer reference: model SegAhnet" in result.stdout


def test_an_unknown_trainer_is_refused_at_its_json_path(mmar):
    edit(mmar, lambda doc: doc["executor"]["args"].update(trainer="monai"), automl=True)
    for command in (["validate", "-m", str(mmar)], ["run", "-m", str(mmar), "--run-id", "x"]):
        result = run_cli(*command)
        assert result.returncode == 2
        [line] = result.stderr.strip().splitlines()
        assert "config_automl.json: $.executor.args.trainer:" in line and '"monai"' in line
    assert not (mmar / "automl").exists()


def test_slurm_executor_args_may_name_the_trainer():
    from automl_cli.backends.slurm import slurm_options

    loaded = types.SimpleNamespace(automl_path=FILE)
    executor = {"name": "SlurmExecutor", "args": {"trainer": "reference", "partition": "gpu", "time": "1:00:00"}}
    options = slurm_options(loaded, copy.deepcopy(executor), {})
    assert options.partition == "gpu"


def test_run_checks_the_trainer_in_a_child_process_and_keeps_torch_out_of_the_search():
    """A search runs for days: the torch and MONAI that checking imports stay in a child."""
    import subprocess
    import sys

    code = ("import sys; from automl_cli.runconfig import load_mmar, check_trainer; "
            "lines = check_trainer(load_mmar('mmar_template'), isolated=True); "
            "print(lines[0].split(':')[0], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["trainer", "reference", "False"], out
