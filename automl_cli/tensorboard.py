"""TensorBoard export (when the optional `tensorboard` package is installed): each job's
per-epoch metrics as scalars under <run>/tensorboard/<job>/, and the run as an HParams
table (one row per finished job: its hyperparameters and score), so that
`tensorboard --logdir <run folder>` shows both."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from .status import RunView


def available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def export(view: RunView, run_dir: Path) -> Path:
    """Write (or rewrite) the TensorBoard logs of a run; returns their folder."""
    from torch.utils.tensorboard import SummaryWriter  # torch's writer needs only the tensorboard package

    root = run_dir / "tensorboard"
    shutil.rmtree(root, ignore_errors=True)
    for job in sorted(view.jobs.values(), key=lambda j: j.job_id):
        with SummaryWriter(str(root / job.name)) as writer:
            for epoch in sorted(job.epochs):
                for key, value in job.epochs[epoch].items():
                    if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                        writer.add_scalar(key, value, epoch)
    with SummaryWriter(str(root / "hparams")) as writer:
        for job in sorted(view.jobs.values(), key=lambda j: j.job_id):
            if job.metric is None or job.status == "failed":
                continue
            hparams = {name: value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
                       for name, value in job.params.items() if value is not None}
            writer.add_hparams(hparams, {f"hparam/{view.metric_name}": job.metric}, run_name=job.name)
    return root
