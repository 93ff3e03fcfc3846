"""MMARHandler: Clara's handler for the job MMARs of a run.

- `num_mmars_to_keep` N: keep the weights of only the best N job folders. Deleting a
  checkpoint that the search may still start from would silently retrain from scratch, so
  the rule is: during the run, a folder loses its weights only when a *later job of the
  same trial has completed* (a promotion, the next PBT segment or a retry continues from
  the trial's latest folder, so an earlier folder whose successor completed is referred to
  by nothing) and it is not among the best N so far. PBT copies a donor's checkpoint at the
  epoch the copying member reached, so in a PBT run a folder also keeps its weights while a
  member has not yet passed the epoch it ends at. When the search completes (the algorithm
  is done) every folder outside the best N loses its weights. A run stopped early
  (stop_threshold, a stop request), interrupted or failed keeps every trial's latest
  weights, so `--resume` continues from them. best/ is a copy and is never touched;
  metrics, logs and configs stay in every folder.
- `stop_threshold`: finish the search once a job's score reaches it (>= for a maximised
  metric, <= for a minimised one): no new jobs, running ones end, best/ is published.
- `work_dir`, `key_mmar_content_only`, `train_config_file`: where and how job folders are
  made; read by runconfig into `JobLayout` (see `layout`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..mmar import TRAIN_CONFIG
from .handler import BadArgument, Handler, HandlerContext, JobInfo

WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class JobLayout:
    """Where a run's folders go and how a job MMAR is made."""

    work_dir: str | None = None  # run folders go to <work_dir>/<run_id> (relative: to the MMAR)
    copy_whole_mmar: bool = False  # copy every folder into a job instead of linking all but config/, commands/
    job_train_config: str = TRAIN_CONFIG  # the name of the applied training config in a job's config/


class MMARHandler(Handler):
    def __init__(self, num_mmars_to_keep: int | None = None, stop_threshold: float | None = None,
                 train_config_file: str | None = None, work_dir: str | None = None,
                 key_mmar_content_only: bool = True):
        if num_mmars_to_keep is not None and (isinstance(num_mmars_to_keep, bool)
                                              or not isinstance(num_mmars_to_keep, int) or num_mmars_to_keep < 1):
            raise BadArgument("num_mmars_to_keep", f"expected an integer >= 1, got {num_mmars_to_keep!r}")
        if stop_threshold is not None and (isinstance(stop_threshold, bool)
                                           or not isinstance(stop_threshold, (int, float))):
            raise BadArgument("stop_threshold", f"expected a number, got {stop_threshold!r}")
        for arg, value in (("train_config_file", train_config_file), ("work_dir", work_dir)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise BadArgument(arg, f"expected a non-empty string, got {value!r}")
        if not isinstance(key_mmar_content_only, bool):
            raise BadArgument("key_mmar_content_only", f"expected true or false, got {key_mmar_content_only!r}")
        self.keep = num_mmars_to_keep
        # folders already emptied: a job outside the best N never re-enters it (scores are final
        # and the best only improve), so each folder is emptied once, not listed at every job end
        self.pruned: set[str] = set()
        self.threshold = None if stop_threshold is None else float(stop_threshold)
        self.layout = JobLayout(work_dir, not key_mmar_content_only,
                                Path(train_config_file).name if train_config_file else TRAIN_CONFIG)

    def start_automl(self, ctx: HandlerContext) -> None:
        if ctx.resumed:  # a run that reached its threshold before is over: resuming changes nothing
            self._check_threshold(ctx, ctx.best)

    def end_job(self, ctx: HandlerContext) -> None:
        self._check_threshold(ctx, ctx.job)
        if self.keep is not None:
            self._prune(ctx, final=False)

    def end_automl(self, ctx: HandlerContext) -> None:
        if self.keep is not None and ctx.status == "completed":
            self._prune(ctx, final=ctx.search_complete)

    def _check_threshold(self, ctx: HandlerContext, job: JobInfo | None) -> None:
        if self.threshold is None or job is None or job.score is None or job.status not in ("completed", "stopped"):
            return
        reached = job.score >= self.threshold if ctx.direction == "maximize" else job.score <= self.threshold
        if reached:
            ctx.request_stop(f"{ctx.metric} {job.score:.4f} of {job.name} reached stop_threshold {self.threshold:g} "
                             "(MMARHandler)")

    def _prune(self, ctx: HandlerContext, final: bool) -> None:
        keep = {j.name for j in self._best(ctx)}
        best = ctx.view.best()
        if best is not None:
            keep.add(best.name)
        last_completed = {j.trial_id: index for index, j in enumerate(ctx.jobs) if j.status == "completed"}
        frontier = _pbt_frontier(ctx) if not final else None
        for index, job in enumerate(ctx.jobs):
            if job.name in keep or job.name in self.pruned or job.status == "running":
                continue
            if frontier is not None and job.stop_epoch >= frontier:
                continue  # a PBT member still behind may copy this checkpoint when it gets there
            if final or index < last_completed.get(job.trial_id, -1):  # a later job of its trial completed
                self.pruned.add(job.name)
                removed = _remove_weights(job.directory)
                if removed:
                    why = "the search is complete" if final else "a later job of its trial completed"
                    ctx.log(f"removed the weights of {job.name} ({', '.join(removed)}): not among the best "
                            f"{self.keep} and {why}")

    def _best(self, ctx: HandlerContext) -> list[JobInfo]:
        scored = [j for j in ctx.jobs if j.score is not None and j.status in ("completed", "stopped")]
        sign = -1.0 if ctx.direction == "maximize" else 1.0
        return sorted(scored, key=lambda j: (sign * j.score, j.job_id))[:self.keep]


def _pbt_frontier(ctx: HandlerContext) -> int | None:
    """In a PBT run, the epoch the slowest member still training has reached or is training
    to (its latest job's stop epoch); None for other algorithms or when no member trains on."""
    if ctx.algorithm != "pbt":
        return None
    latest = {j.trial_id: j for j in ctx.jobs}  # in start order: the last is the trial's latest
    return min((j.stop_epoch for j in latest.values() if j.status not in ("failed", "stopped")), default=None)


def _remove_weights(job_dir: Path) -> list[str]:
    removed = []
    models = job_dir / "models"
    if not models.is_dir():
        return removed
    for item in sorted(models.iterdir()):
        if item.is_file() and item.suffix in WEIGHT_SUFFIXES:
            item.unlink()
            removed.append(item.name)
    return removed
