"""A stand-in trainer for engine tests: follows the trainer contract (reads the job's
config_train.json, appends one JSON line per epoch to $AUTOML_METRICS_FILE, resumes from a
checkpoint file, writes models/model.pt) without torch, so engine tests take seconds.

The score peaks at lr = 0.003 with the "good" choice. `behaviour` in the config's
"fake" section makes the job crash, get killed, report NaN, refuse its config (exit 2,
before any epoch) or hang after its first epoch (deaf to SIGTERM, as a deadlocked trainer),
to test failure handling.

As the trainer contract asks, SIGTERM stops it between two slices of an epoch (never between
writing an epoch's metrics line and its checkpoint), exit code 143. With FAKE_TRAINER_LEDGER
set, each epoch it completes is also appended to that file ("job-name epoch pid started
completed", times as time.time()), and so is its end ("job-name end pid started ended
exit-code got-SIGTERM"): a record that outlives job folders, for tests that count epochs
trained twice, or trainers that went on after their tool died without being told.
"""
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

_stop = []  # SIGTERM arrived


def _on_sigterm(signum, frame):  # noqa: ARG001
    _stop.append(signum)


def epoch_seconds(config: dict, epoch: int) -> float:
    """How long `epoch` takes: config "sleep", seconds or a list with one per epoch (the last
    repeated); with "pace_file", what that file holds now (the same forms), so a test can
    hold jobs in an epoch and release them while they run."""
    sleep = config.get("sleep", 0.05)
    pace = config.get("pace_file")
    if pace:
        try:
            sleep = json.loads(Path(pace).read_text())
        except (OSError, ValueError):
            pass
    return sleep[min(epoch, len(sleep)) - 1] if isinstance(sleep, list) else sleep


def train_one_epoch(config: dict, epoch: int) -> None:
    started = time.monotonic()
    while True:
        if _stop:
            print("SIGTERM: stopping with the last epoch's checkpoint", flush=True)
            sys.exit(143)
        left = started + epoch_seconds(config, epoch) - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def hang() -> None:
    """Stop making progress and ignore SIGTERM, as a trainer stuck in a deadlock."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("hanging (simulated)", flush=True)
    while True:
        time.sleep(3600)


def main(mmar: str, epochs: int) -> int:
    root = Path(mmar)
    config = json.loads((root / "config" / "config_train.json").read_text())
    args = config["fake"]["args"]
    lr, choice = args["lr"], args["choice"]
    metrics = Path(os.environ.get("AUTOML_METRICS_FILE", root / "models" / "metrics.jsonl"))
    ckpt = root / "models" / "checkpoint.pt"  # JSON inside; the name is what jobs carry over
    start = json.loads(ckpt.read_text())["epoch"] if ckpt.exists() else 0
    print(f"resume at {start}", flush=True)
    if args.get("behaviour") == "config_error":  # as `automl train` refuses a bad config: exit 2
        print(f"building from {root / 'config' / 'config_train.json'}", flush=True)
        print("automl: error: config_train.json: $.fake.name: unknown model 'Fakee' (simulated)", file=sys.stderr,
              flush=True)
        return 2
    quality = math.exp(-(math.log10(lr) - math.log10(0.003)) ** 2) * (1.0 if choice == "good" else 0.6)
    ledger = os.environ.get("FAKE_TRAINER_LEDGER")
    started = time.time()
    for epoch in range(start + 1, epochs + 1):
        if args.get("behaviour") == "hang" and epoch == 2:
            hang()
        train_one_epoch(config, epoch)
        if args.get("behaviour") == "crash" and epoch == 2:
            print("Traceback: RuntimeError: CUDA out of memory (simulated)", flush=True)
            return 1
        if args.get("behaviour") == "killed" and epoch == 2:  # as the kernel's OOM killer does
            os.kill(os.getpid(), 9)
        value = quality * (1 - 0.5 ** epoch)
        if args.get("behaviour") == "nan" and epoch == 2:
            value = None
        with open(metrics, "a") as out:
            out.write(json.dumps({"epoch": epoch, "train_loss": 1 - value if value else None,
                                  "val_mean_dice": value, "seconds": 0.05}) + "\n")
        ckpt.write_text(json.dumps({"epoch": epoch}))
        (root / "models" / "model.pt").write_text(json.dumps({"epoch": epoch, "value": value}))
        if ledger:
            with open(ledger, "a") as out:
                out.write(f"{os.environ.get('AUTOML_JOB_NAME', root.name)} {epoch} {os.getpid()} {started:.3f} "
                          f"{time.time():.3f}\n")
        print(f"epoch {epoch} val_mean_dice {value}", flush=True)
    return 0


def _run(mmar: str, epochs: int) -> int:
    started, code = time.time(), 1
    try:
        code = main(mmar, epochs)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        ledger = os.environ.get("FAKE_TRAINER_LEDGER")
        if ledger:
            with open(ledger, "a") as out:
                out.write(f"{os.environ.get('AUTOML_JOB_NAME', Path(mmar).name)} end {os.getpid()} {started:.3f} "
                          f"{time.time():.3f} {code} {int(bool(_stop))}\n")
    return code


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.exit(_run(sys.argv[1], int(sys.argv[2])))
