"""The reference trainer on the template's own config (shrunk): resume, weights, signals, NaN."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from automl_cli.mmar import MMAR
from automl_cli.train import loop
from automl_cli.train.registry import build
from conftest import ROOT

TEMPLATE = ROOT / "mmar_template"


def small_config(**changes) -> dict:
    config, _ = MMAR.open(TEMPLATE).load_train_config()
    config["train"]["data"]["args"]["num_samples"] = 32
    config["validate"]["data"]["args"]["num_samples"] = 16
    config["train"]["optimizer"]["args"]["lr"] = changes.get("lr", 0.01)
    return config


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_time(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_resume_from_epoch_2_to_4_continues_exactly_like_a_straight_run(tmp_path):
    config = small_config()
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    loop.train(config, straight, epochs=4, log=lambda s: None)
    loop.train(config, resumed, epochs=2, log=lambda s: None)
    assert [r["epoch"] for r in lines(resumed / "models" / "metrics.jsonl")] == [1, 2]
    summary = loop.train(config, resumed, epochs=4, log=lambda s: None)
    got = lines(resumed / "models" / "metrics.jsonl")
    assert [r["epoch"] for r in got] == [1, 2, 3, 4]
    expected = lines(straight / "models" / "metrics.jsonl")
    for a, b in zip(without_time(got), without_time(expected)):
        assert a == pytest.approx(b, abs=1e-6)
    assert summary["epochs_completed"] == 4
    # asking again for epochs already trained trains nothing
    loop.train(config, resumed, epochs=4, log=lambda s: None)
    assert len(lines(resumed / "models" / "metrics.jsonl")) == 4


def test_a_resumed_job_takes_the_learning_rate_of_its_config_not_the_checkpoint(tmp_path):
    loop.train(small_config(lr=0.01), tmp_path, epochs=1, log=lambda s: None)
    state = torch.load(tmp_path / "models" / "checkpoint.pt", weights_only=False)
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.01
    loop.train(small_config(lr=0.0005), tmp_path, epochs=2, log=lambda s: None)
    state = torch.load(tmp_path / "models" / "checkpoint.pt", weights_only=False)
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.0005


def test_best_weights_reload_to_the_logged_best_metric(tmp_path):
    config = small_config()
    summary = loop.train(config, tmp_path, epochs=3, log=lambda s: None)
    rows = lines(tmp_path / "models" / "metrics.jsonl")
    best = max(rows, key=lambda r: r["val_mean_dice"])
    assert (summary["best_metric"], summary["best_epoch"]) == (best["val_mean_dice"], best["epoch"])
    assert loop.evaluate(config, tmp_path, tmp_path / "models" / "model.pt") == {"val_mean_dice": best["val_mean_dice"]}


@pytest.mark.slow
def test_hyperparameters_change_the_score():
    """Not a flat landscape: the learning rate alone moves Dice a lot after 3 epochs."""
    import tempfile

    scores = {}
    for lr in (0.0001, 0.01):
        with tempfile.TemporaryDirectory() as d:
            scores[lr] = loop.train(small_config(lr=lr), Path(d), epochs=3, log=lambda s: None)["best_metric"]
    assert scores[0.01] - scores[0.0001] > 0.2


def test_unknown_components_and_3d_segahnet_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown model 'UNet3000' \(known: SegAhnet\)"):
        build("model", {"name": "UNet3000", "args": {}})
    with pytest.raises(ValueError, match="n_spatial_dim must be 2"):
        build("model", {"name": "SegAhnet", "args": {"n_spatial_dim": 3}})
    with pytest.raises(FileNotFoundError, match="pretrain_weight_name"):
        build("model", {"name": "SegAhnet", "args": {"pretrain_weight_name": "/nope.pt"}})


def test_random_axis_flip_probability_0_keeps_and_1_flips_image_and_label_together():
    gen = torch.Generator().manual_seed(0)
    image = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    label = (image[:, 0] > 10).long()
    same = build("transform", {"name": "RandomAxisFlip", "args": {"probability": 0.0}})(
        {"image": image.clone(), "label": label.clone()}, gen)
    assert torch.equal(same["image"], image) and torch.equal(same["label"], label)
    flipped = build("transform", {"name": "RandomAxisFlip", "args": {"probability": 1.0}})(
        {"image": image.clone(), "label": label.clone()}, gen)
    for i in range(2):
        assert not torch.equal(flipped["image"][i], image[i])
        options = [torch.flip(image[i], [1]), torch.flip(image[i], [2])]
        which = [torch.equal(flipped["image"][i], o) for o in options].index(True)
        assert torch.equal(flipped["label"][i], torch.flip(label[i], [which]))


def write_mmar(tmp_path: Path, config: dict) -> Path:
    root = tmp_path / "mmar"
    (root / "config").mkdir(parents=True)
    (root / "config" / "config_train.json").write_text(json.dumps(config))
    return root


def test_sigterm_saves_and_exits_143_and_a_new_run_resumes(tmp_path):
    config = small_config()
    config["train"]["data"]["args"]["num_samples"] = 256
    root = write_mmar(tmp_path, config)
    metrics = root / "models" / "metrics.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "automl_cli", "train", "-m", str(root), "--epochs", "200"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    saved = torch.load(root / "models" / "checkpoint.pt", weights_only=False)["epoch"]
    assert saved >= 1 and saved == len(lines(metrics))
    result = subprocess.run([sys.executable, "-m", "automl_cli", "train", "-m", str(root), "--epochs", str(saved + 1)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stdout and f"at epoch {saved}" in result.stdout
    assert [r["epoch"] for r in lines(metrics)] == list(range(1, saved + 2))


NAN_LOSS = """
import sys
from automl_cli.train import losses
real = losses.DiceLoss.__call__
losses.DiceLoss.__call__ = lambda self, probs, label: real(self, probs, label) * float("nan")
from automl_cli.cli import main
sys.argv = ["automl", "train", "-m", sys.argv[1], "--epochs", "3"]
main()
"""


def test_a_nan_loss_writes_null_and_exits_3(tmp_path):
    root = write_mmar(tmp_path, small_config())
    result = subprocess.run([sys.executable, "-c", NAN_LOSS, str(root)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 3, result.stderr
    assert "epoch 1: train_loss nan" in result.stderr and "not finite" in result.stderr
    assert lines(root / "models" / "metrics.jsonl") == [
        {"epoch": 1, "train_loss": None, "val_mean_dice": pytest.approx(0.0, abs=1.0), "seconds": pytest.approx(0, abs=60)}]
    assert not (root / "models" / "checkpoint.pt").exists()
