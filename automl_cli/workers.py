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


_ORDINAL = re.compile(r"[0-9]+")
_UUID_PREFIXES = ("GPU-", "MIG-")


def read_mask(raw: str, n_physical: int | None = None) -> tuple[list[str], str | None, list[str]]:
    """CUDA_VISIBLE_DEVICES as CUDA reads it: entries (GPU ordinals, or GPU-/MIG- UUIDs) in
    order up to the first invalid one (not an ordinal or UUID, or an ordinal the machine lacks
    when `n_physical` is known), which hides itself and every entry after it. Returns the
    entries CUDA keeps, the invalid entry (None if none) and the entries it hides after it."""
    entries = [e.strip() for e in raw.split(",")]
    for i, entry in enumerate(entries):
        ordinal = _ORDINAL.fullmatch(entry) is not None
        if not (entry.startswith(_UUID_PREFIXES) or (ordinal and (n_physical is None or int(entry) < n_physical))):
            return entries[:i], entry, [e for e in entries[i + 1:] if e]
    return entries, None, []


def visible_gpu_mask(environ: dict | None = None) -> list[str] | None:
    """The CUDA_VISIBLE_DEVICES the tool inherited, as the list of entries CUDA keeps
    (see read_mask), or None when unset."""
    env = os.environ if environ is None else environ
    raw = env.get("CUDA_VISIBLE_DEVICES")
    return None if raw is None else read_mask(raw)[0]


def nvidia_smi_count() -> int | None:
    """GPUs `nvidia-smi -L` lists, without importing torch; None when there is no nvidia-smi."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def visible_gpus(environ: dict | None = None, physical: int | None = None) -> tuple[int, str | None]:
    """The GPUs a job may use, given the machine's `physical` GPUs (nvidia-smi's count;
    None: no nvidia-smi) and the CUDA_VISIBLE_DEVICES the tool inherited, with a warning
    when CUDA would hide entries of that mask. A mask naming a GPU the machine lacks is a
    usage error: CUDA would hide that GPU and every one after it."""
    env = os.environ if environ is None else environ
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if not physical:
        return 0, None
    if raw is None:
        return physical, None
    kept, bad, hidden = read_mask(raw, physical)
    if bad is not None and _ORDINAL.fullmatch(bad):
        raise UsageError(f"CUDA_VISIBLE_DEVICES={raw} names GPU {bad}, but this machine has {physical} GPU(s) "
                         f"(ids 0-{physical - 1}, nvidia-smi -L): CUDA would hide it and every GPU after it")
    warning = None
    if bad is not None and (kept or hidden):  # "", "-1" alone: the usual ways of saying "no GPU"
        warning = (f"CUDA_VISIBLE_DEVICES={raw}: CUDA stops reading at the invalid entry {bad!r}, so it shows "
                   + (f"GPU(s) {','.join(kept)} only" if kept else "no GPU")
                   + (f" and hides {','.join(hidden)}" if hidden else ""))
    return len(kept), warning


def count_gpus(environ: dict | None = None) -> int:
    """GPUs this process may use, without importing torch: nvidia-smi's, through the inherited mask."""
    return visible_gpus(environ, nvidia_smi_count())[0]


def device_env(worker: Worker, have_gpus: bool, environ: dict | None = None) -> str:
    """The CUDA_VISIBLE_DEVICES a job of `worker` gets: its GPU ids mapped through the mask
    the tool inherited (GPU 0 under CUDA_VISIBLE_DEVICES=3,5 is device 3); "" on CPU."""
    if not have_gpus:
        return ""
    mask = visible_gpu_mask(environ)
    if mask is None:
        return ",".join(str(g) for g in worker.gpus)
    return ",".join(mask[g] for g in worker.gpus)


def check_against_devices(workers: list[Worker], n_gpus: int, environ: dict | None = None) -> None:
    """Every GPU id must exist when GPUs are present."""
    env = os.environ if environ is None else environ
    mask = env.get("CUDA_VISIBLE_DEVICES")
    for worker in workers:
        for gpu in worker.gpus:
            if gpu >= n_gpus:
                raise UsageError(
                    f"worker {worker.name} asks for GPU {gpu} but only {n_gpus} GPU(s) are visible (ids 0-{n_gpus - 1}"
                    + (f", through CUDA_VISIBLE_DEVICES={mask}" if mask is not None else "") + ")")


def threads_per_worker(n_workers: int) -> int:
    """CPU threads a CPU job may use, so workers share the cores instead of fighting over them."""
    return max(1, (os.cpu_count() or 1) // max(1, n_workers))
