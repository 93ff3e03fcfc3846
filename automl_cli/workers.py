"""Workers: who runs jobs, and on which GPUs.

A worker spec is Clara's: colon-separated workers, each a comma-separated GPU list.
`0,1:2` is W1 on GPUs 0 and 1 and W2 on GPU 2; `0:0:1:1` is two workers per GPU.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from .errors import UsageError

_GPU_ID = re.compile(r"^\d+$")


@dataclass(frozen=True)
class Worker:
    """A slot that runs one job at a time; `gpus` are ids as the tool sees them."""

    index: int  # 1-based, as in the name
    gpus: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"W{self.index}"


def parse_workers(spec: str) -> list[Worker]:
    """Parse `0,1:2` into [W1 (0, 1), W2 (2,)]; anything malformed is a usage error."""
    text = str(spec).strip()
    if not text:
        raise UsageError("bad worker spec '': expected GPU lists separated by ':', e.g. 0:1 or 0,1:2")
    workers = []
    for index, part in enumerate(text.split(":"), start=1):
        ids = part.split(",")
        if not part or any(not _GPU_ID.match(i.strip()) for i in ids):
            raise UsageError(
                f"bad worker spec '{spec}': worker W{index} is '{part}', expected comma-separated "
                "GPU ids such as 0 or 0,1 (workers are separated by ':', e.g. 0,1:2)")
        gpus = tuple(int(i) for i in ids)
        if len(set(gpus)) != len(gpus):
            raise UsageError(f"bad worker spec '{spec}': worker W{index} lists a GPU twice")
        workers.append(Worker(index, gpus))
    return workers


def visible_gpu_mask(environ: dict | None = None) -> list[str] | None:
    """The CUDA_VISIBLE_DEVICES the tool inherited, as a list, or None when unset."""
    env = os.environ if environ is None else environ
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    return [d.strip() for d in raw.split(",") if d.strip() and d.strip() != "-1"]


def count_gpus(environ: dict | None = None) -> int:
    """GPUs this process may use, without importing torch: the inherited mask, else nvidia-smi."""
    mask = visible_gpu_mask(environ)
    if mask is not None and not mask:
        return 0
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    found = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    return min(found, len(mask)) if mask is not None else found


def device_env(worker: Worker, have_gpus: bool, environ: dict | None = None) -> str:
    """The CUDA_VISIBLE_DEVICES a job of `worker` gets: its GPU ids mapped through the mask
    the tool inherited (GPU 0 under CUDA_VISIBLE_DEVICES=3,5 is device 3); "" on CPU."""
    if not have_gpus:
        return ""
    mask = visible_gpu_mask(environ)
    if mask is None:
        return ",".join(str(g) for g in worker.gpus)
    return ",".join(mask[g] for g in worker.gpus)


def check_against_devices(workers: list[Worker], n_gpus: int) -> None:
    """Every GPU id must exist when GPUs are present."""
    for worker in workers:
        for gpu in worker.gpus:
            if gpu >= n_gpus:
                raise UsageError(
                    f"worker {worker.name} asks for GPU {gpu} but only {n_gpus} GPU(s) are visible (ids 0-{n_gpus - 1})")


def threads_per_worker(n_workers: int) -> int:
    """CPU threads a CPU job may use, so workers share the cores instead of fighting over them."""
    return max(1, (os.cpu_count() or 1) // max(1, n_workers))
