"""The reference trainer (automl_cli/train): components, resume, checkpoints, SIGTERM, NaN.

Everything runs on the CPU on a shrunk copy of the template's config (32 training and 16
validation samples), with tmp_path as the MMAR root.
"""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from automl_cli.train import loop
from automl_cli.train.losses import DiceLoss
from automl_cli.train.metrics import MeanDice
from automl_cli.train.registry import build, known

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_CONFIG = ROOT / "mmar_template" / "config" / "config_train.json"
QUIET = {"log": lambda line: None}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny convolutions on several threads spend their time waiting for each other, far
    more so on a busy machine; the engine gives each CPU job its OMP_NUM_THREADS too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(lr: float = 0.01) -> dict:
    """The template's config_train.json with its variables substituted by hand, made small."""
    text = TEMPLATE_CONFIG.read_text().replace("{PRETRAIN_WEIGHTS_FILE}", "")
    config = json.loads(text)
    config["train"]["data"]["args"]["num_samples"] = 32
    config["validate"]["data"]["args"]["num_samples"] = 16
    config["train"]["optimizer"]["args"]["lr"] = lr
    return config


def mmar(tmp_path: Path, name: str = "mmar") -> Path:
    root = tmp_path / name
    (root / "models").mkdir(parents=True)
    return root


def metric_lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "models" / "metrics.jsonl").read_text().splitlines()]


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def assert_same_rows(got: list[dict], expected: list[dict]) -> None:
    assert [r["epoch"] for r in got] == [r["epoch"] for r in expected]
    for a, b in zip(without_seconds(got), without_seconds(expected)):
        assert a == pytest.approx(b, abs=1e-6)


# ---- resume, checkpoints, best weights -------------------------------------------------


def test_two_epochs_then_resume_to_four_equals_a_straight_four_epoch_run(tmp_path):
    config = small_config()
    straight, resumed = mmar(tmp_path, "straight"), mmar(tmp_path, "resumed")
    loop.train(config, straight, epochs=4, **QUIET)

    first = loop.train(config, resumed, epochs=2, **QUIET)
    assert first["epochs_completed"] == 2
    assert [r["epoch"] for r in metric_lines(resumed)] == [1, 2]
    messages: list[str] = []
    summary = loop.train(config, resumed, epochs=4, log=messages.append)

    assert any("resumed from" in m and "at epoch 2" in m for m in messages)
    assert_same_rows(metric_lines(resumed), metric_lines(straight))
    assert summary["epochs_completed"] == 4 and summary["metric_key"] == "val_mean_dice"
    assert summary["device"] == "cpu"
    a = torch.load(straight / "models" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(resumed / "models" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_a_checkpoint_already_at_the_requested_epoch_trains_nothing(tmp_path):
    root = mmar(tmp_path)
    loop.train(small_config(), root, epochs=2, **QUIET)
    messages: list[str] = []
    summary = loop.train(small_config(), root, epochs=1, log=messages.append)
    assert summary["epochs_completed"] == 2
    assert len(metric_lines(root)) == 2
    assert any("nothing to train" in m for m in messages)


def test_checkpoint_and_best_weights_are_written_and_evaluate_gives_the_logged_best(tmp_path):
    config = small_config()
    root = mmar(tmp_path)
    summary = loop.train(config, root, epochs=3, **QUIET)
    models = root / "models"
    assert (models / "checkpoint.pt").is_file() and (models / "model.pt").is_file()
    assert not [p.name for p in models.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind

    state = torch.load(models / "checkpoint.pt", weights_only=True)  # plain tensors and numbers only
    assert state["epoch"] == 3
    assert set(state["rng"]) >= {"generator", "torch", "numpy", "python"}

    rows = metric_lines(root)
    assert all(set(r) == {"epoch", "train_loss", "val_mean_dice", "seconds"} for r in rows)
    best = max(rows, key=lambda r: r["val_mean_dice"])
    assert (summary["best_metric"], summary["best_epoch"]) == (best["val_mean_dice"], best["epoch"])
    assert loop.evaluate(config, root, models / "model.pt") == {"val_mean_dice": best["val_mean_dice"]}
    assert loop.evaluate(config, root, Path("models/model.pt")) == {"val_mean_dice": best["val_mean_dice"]}


def test_a_resumed_run_takes_its_learning_rate_from_the_config(tmp_path):
    root = mmar(tmp_path)
    loop.train(small_config(lr=0.01), root, epochs=1, **QUIET)
    loop.train(small_config(lr=0.0005), root, epochs=2, **QUIET)
    state = torch.load(root / "models" / "checkpoint.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.0005
    assert state["optimizer"]["state"]  # the Adam moments came along


def test_the_metrics_file_comes_from_the_argument_else_the_environment(tmp_path, monkeypatch):
    root = mmar(tmp_path)
    monkeypatch.setenv("AUTOML_METRICS_FILE", str(tmp_path / "from_env.jsonl"))
    loop.train(small_config(), root, epochs=1, **QUIET)
    assert len((tmp_path / "from_env.jsonl").read_text().splitlines()) == 1
    loop.train(small_config(), root, epochs=2, metrics_file=tmp_path / "given.jsonl", **QUIET)
    assert json.loads((tmp_path / "given.jsonl").read_text())["epoch"] == 2
    assert not (root / "models" / "metrics.jsonl").exists()


# ---- SIGTERM ---------------------------------------------------------------------------


# SIGUSR1 is SLURM's time-limit warning (--signal=USR1@N): the same checkpoint-and-stop
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_sigterm_mid_epoch_stops_at_a_batch_keeps_the_last_epoch_and_restores_the_handler(tmp_path, monkeypatch,
                                                                                         sig):
    config = small_config()  # 32 samples in batches of 8: four losses per epoch
    root = mmar(tmp_path)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)
    real, calls = DiceLoss.__call__, []

    def loss_then_sigterm_in_epoch_2(self, probs, label):
        calls.append(1)
        if len(calls) == 6:
            os.kill(os.getpid(), sig)
        return real(self, probs, label)

    monkeypatch.setattr(DiceLoss, "__call__", loss_then_sigterm_in_epoch_2)
    with pytest.raises(loop.TrainingInterrupted) as stopped:
        loop.train(config, root, epochs=50, **QUIET)
    assert stopped.value.epoch == 1 and len(calls) == 6  # stopped at the next batch
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)) == before
    assert torch.load(root / "models" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert [r["epoch"] for r in metric_lines(root)] == [1]

    # the half-trained epoch 2 is dropped: resuming gives exactly the uninterrupted run
    monkeypatch.setattr(DiceLoss, "__call__", real)
    loop.train(config, root, epochs=3, **QUIET)
    straight = mmar(tmp_path, "straight")
    loop.train(config, straight, epochs=3, **QUIET)
    assert_same_rows(metric_lines(root), metric_lines(straight))


CHILD = """
import json, sys
from pathlib import Path
from automl_cli.train import loop
config = json.loads(Path(sys.argv[1]).read_text())
try:
    loop.train(config, Path(sys.argv[2]), epochs=10000, log=lambda s: print(s, flush=True))
except loop.TrainingInterrupted as exc:
    print(f"interrupted: {exc}", flush=True)
    sys.exit(143)
"""


def test_sigterm_to_a_training_process_leaves_a_checkpoint_that_the_next_run_resumes(tmp_path):
    config = small_config()
    root = mmar(tmp_path)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    metrics = root / "models" / "metrics.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("AUTOML_METRICS_FILE", None)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(config_file), str(root)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text().strip()):
            assert child.poll() is None, child.stdout.read()
            time.sleep(0.02)
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 143, out
    saved = torch.load(root / "models" / "checkpoint.pt", weights_only=True)["epoch"]
    assert saved >= 1
    assert [r["epoch"] for r in metric_lines(root)] == list(range(1, saved + 1))

    messages: list[str] = []
    summary = loop.train(config, root, epochs=saved + 1, log=messages.append)
    assert any(f"at epoch {saved}" in m for m in messages)
    assert summary["epochs_completed"] == saved + 1
    assert [r["epoch"] for r in metric_lines(root)] == list(range(1, saved + 2))


# ---- non-finite losses and metrics -------------------------------------------------------


def test_a_nan_loss_is_recorded_as_null_and_raises_floating_point_error(tmp_path, monkeypatch):
    real = DiceLoss.__call__
    monkeypatch.setattr(DiceLoss, "__call__", lambda self, probs, label: real(self, probs, label) * float("nan"))
    root = mmar(tmp_path)
    with pytest.raises(FloatingPointError, match="epoch 1: train_loss nan"):
        loop.train(small_config(), root, epochs=3, **QUIET)
    (line,) = metric_lines(root)
    assert line["epoch"] == 1 and line["train_loss"] is None
    assert isinstance(line["val_mean_dice"], float)
    assert not (root / "models" / "checkpoint.pt").exists()


def test_a_non_finite_metric_is_recorded_as_null_and_raises(tmp_path, monkeypatch):
    root = mmar(tmp_path)
    loop.train(small_config(), root, epochs=1, **QUIET)
    monkeypatch.setattr(MeanDice, "value", lambda self: float("inf"))
    with pytest.raises(FloatingPointError, match="not finite"):
        loop.train(small_config(), root, epochs=3, **QUIET)
    rows = metric_lines(root)
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["val_mean_dice"] is None
    assert isinstance(rows[1]["train_loss"], float)
    assert torch.load(root / "models" / "checkpoint.pt", weights_only=True)["epoch"] == 1


# ---- components ----------------------------------------------------------------------


def test_unknown_names_and_bad_args_are_value_errors_that_help():
    with pytest.raises(ValueError, match=r"unknown model 'UNet3000' \(known: SegAhnet\)"):
        build("model", {"name": "UNet3000", "args": {}})
    with pytest.raises(ValueError, match="known: .*Adam.*SGD"):
        build("optimizer", {"name": "Adagrad"}, params=[torch.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="DiceLoss"):
        build("loss", {"name": "DiceLoss", "args": {"smoth": 1.0}})
    assert "SyntheticShapes2D" in known("dataset") and "MeanDice" in known("metric")
    # the search's keys next to name and args are not the trainer's business
    loss = build("loss", {"name": "DiceLoss", "args": {"smooth": 0.5}, "search": [{"type": "float"}], "apply": "x"})
    assert loss.smooth == 0.5


def test_segahnet_is_2d_only_and_loads_pretrained_weights(tmp_path):
    with pytest.raises(ValueError, match="only 2-D"):
        build("model", {"name": "SegAhnet", "args": {"n_spatial_dim": 3}})
    with pytest.raises(FileNotFoundError, match="pretrain_weight_name"):
        build("model", {"name": "SegAhnet", "args": {"pretrain_weight_name": str(tmp_path / "none.pt")}})

    torch.manual_seed(1)
    source = build("model", {"name": "SegAhnet", "args": {"if_use_psp": True}})
    torch.save(source.state_dict(), tmp_path / "pre.pt")
    torch.manual_seed(2)
    args = {"if_use_psp": True, "pretrain_weight_name": str(tmp_path / "pre.pt"), "plane": "x"}
    loaded = build("model", {"name": "SegAhnet", "args": args})
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.state_dict().values()))
    for empty in ("", None):
        build("model", {"name": "SegAhnet", "args": {"pretrain_weight_name": empty}})


@pytest.mark.parametrize("psp, activation", [(True, "softmax"), (False, "sigmoid")])
def test_segahnet_returns_logits_and_applies_its_final_activation(psp, activation):
    model = build("model", {"name": "SegAhnet", "args": {"if_use_psp": psp, "final_activation": activation,
                                                         "num_classes": 3}})
    logits = model(torch.randn(1, 1, 32, 32))  # one sample: the pyramid pooling copes with it
    assert logits.shape == (1, 3, 32, 32)
    probs = model.activate(logits)
    assert probs.min() >= 0 and probs.max() <= 1
    if activation == "softmax":
        assert torch.allclose(probs.sum(1), torch.ones(1, 32, 32), atol=1e-5)


def test_random_axis_flip_with_probability_0_changes_nothing_and_with_1_flips_every_sample():
    image = torch.randn(6, 2, 8, 8)
    label = (torch.rand(6, 8, 8) > 0.5).long()
    keep = build("transform", {"name": "RandomAxisFlip", "args": {"fields": ["image", "label"], "probability": 0.0}})
    out = keep({"image": image.clone(), "label": label.clone()}, torch.Generator().manual_seed(0))
    assert torch.equal(out["image"], image) and torch.equal(out["label"], label)

    flip = build("transform", {"name": "RandomAxisFlip", "args": {"fields": ["image", "label"], "probability": 1.0}})
    out = flip({"image": image.clone(), "label": label.clone()}, torch.Generator().manual_seed(0))
    axes_used = set()
    for i in range(6):
        matches = [axis for axis in (-2, -1) if torch.equal(out["image"][i], torch.flip(image[i], [axis]))]
        assert len(matches) == 1, f"sample {i} is not flipped along one axis"
        assert torch.equal(out["label"][i], torch.flip(label[i], [matches[0]]))  # label follows its image
        axes_used.add(matches[0])
    assert axes_used == {-2, -1}  # the axis is drawn per sample
    # same generator seed, same flips
    again = flip({"image": image.clone(), "label": label.clone()}, torch.Generator().manual_seed(0))
    assert torch.equal(again["image"], out["image"])


def test_scale_intensity_and_gaussian_noise():
    batch = {"image": torch.randn(4, 1, 8, 8) * 5 + 3, "label": torch.zeros(4, 8, 8, dtype=torch.long)}
    scaled = build("transform", {"name": "ScaleIntensity", "args": {"fields": ["image"]}})(batch, torch.Generator())
    flat = scaled["image"].flatten(1)
    assert torch.allclose(flat.min(1).values, torch.zeros(4)) and torch.allclose(flat.max(1).values, torch.ones(4))

    quiet = build("transform", {"name": "AddGaussianNoise", "args": {"fields": ["image"], "probability": 0.0}})
    image = scaled["image"].clone()
    assert torch.equal(quiet({"image": image.clone()}, torch.Generator().manual_seed(0))["image"], image)
    noisy = build("transform", {"name": "AddGaussianNoise", "args": {"fields": ["image"], "probability": 1.0,
                                                                     "std": 0.1}})
    a = noisy({"image": image.clone()}, torch.Generator().manual_seed(3))["image"]
    b = noisy({"image": image.clone()}, torch.Generator().manual_seed(3))["image"]
    assert torch.equal(a, b) and 0.05 < float((a - image).std()) < 0.2


def test_synthetic_shapes_are_reproducible_from_the_seed():
    args = {"num_samples": 8, "image_size": 32, "seed": 5, "noise": 0.1}
    a = build("dataset", {"name": "SyntheticShapes2D", "args": args})
    b = build("dataset", {"name": "SyntheticShapes2D", "args": args})
    c = build("dataset", {"name": "SyntheticShapes2D", "args": {**args, "seed": 6}})
    assert a.image.shape == (8, 1, 32, 32) and a.label.shape == (8, 32, 32) and len(a) == 8
    assert torch.equal(a.image, b.image) and torch.equal(a.label, b.label)
    assert not torch.equal(a.image, c.image)
    assert set(a.label.unique().tolist()) == {0, 1}
    assert 0.03 < float(a.label.float().mean()) < 0.5


def test_dice_loss_and_mean_dice_on_known_answers():
    label = torch.zeros(2, 8, 8, dtype=torch.long)
    label[0, 2:6, 2:6] = 1  # sample 1 has no foreground at all
    perfect = torch.nn.functional.one_hot(label, 2).movedim(-1, 1).float()
    assert float(DiceLoss(smooth=1e-5)(perfect, label)) == pytest.approx(0.0, abs=1e-4)
    assert float(DiceLoss(smooth=1e-5)(1 - perfect, label)) == pytest.approx(1.0, abs=1e-3)

    metric = MeanDice(key="dice")
    metric.update(perfect * 10, label)  # logits: argmax is the label
    assert metric.value() == 1.0
    metric.reset()
    half = label.clone()
    half[0, 2:4, 2:6] = 0  # predicts half of the square
    metric.update(torch.nn.functional.one_hot(half, 2).movedim(-1, 1).float(), label)
    assert metric.value() == pytest.approx((2 * 8 / (8 + 16) + 1.0) / 2)


def test_a_foreign_checkpoint_and_a_missing_config_section_are_clear_errors(tmp_path):
    root = mmar(tmp_path)
    torch.save({"epoch": 3, "model": {}}, root / "models" / "checkpoint.pt")
    with pytest.raises(ValueError, match="not written by this version of the trainer"):
        loop.train(small_config(), root, epochs=4, **QUIET)
    config = small_config()
    del config["validate"]["metric"]
    with pytest.raises(ValueError, match="no validate.metric"):
        loop.train(config, mmar(tmp_path, "other"), epochs=1, **QUIET)


def test_an_optimizer_change_between_segments_starts_its_state_afresh(tmp_path):
    root = mmar(tmp_path)
    loop.train(small_config(), root, epochs=1, **QUIET)
    config = small_config()
    config["train"]["optimizer"] = {"name": "SGD", "args": {"lr": 0.05, "momentum": 0.9}}
    messages: list[str] = []
    loop.train(config, root, epochs=2, log=messages.append)
    assert any("optimizer changed from Adam to SGD" in m for m in messages)
    state = torch.load(root / "models" / "checkpoint.pt", weights_only=True)
    assert state["optimizer_name"] == "SGD" and state["optimizer"]["param_groups"][0]["momentum"] == 0.9


def test_the_template_config_builds_with_its_search_sections_in_place():
    config = json.loads(TEMPLATE_CONFIG.read_text())
    train = copy.deepcopy(config["train"])
    train["model"]["args"]["pretrain_weight_name"] = ""
    build("model", train["model"])
    for transform in train["transforms"]:
        build("transform", transform)
