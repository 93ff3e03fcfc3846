"""The one winner rule (RunView.best): what best/, status and simulate() report."""
from __future__ import annotations

from automl_cli.simulate import simulate
from automl_cli.status import RunView
from automl_cli.store import Event


class Feed:
    def __init__(self, direction="maximize"):
        self.view, self.seq = RunView(), 0
        self.event("run_started", run_id="r", metric="acc", direction=direction, workers=[{"name": "W1", "gpus": []}])

    def event(self, kind, **data):
        self.seq += 1
        self.view.apply(Event(self.seq, float(self.seq), kind, data))

    def job(self, job_id, scores, status=None, start=0, stop=10):
        self.event("job_started", job_id=job_id, name=f"W1_1_J{job_id}", trial_id=job_id, worker="W1", gpus=[],
                   params={"x": job_id}, start_epoch=start, stop_epoch=stop)
        for epoch, value in enumerate(scores, start=start + 1):
            self.event("metrics", job_id=job_id, epoch=epoch, values={"epoch": epoch, "acc": value})
        if status:
            self.event("job_finished", job_id=job_id, status=status, metric=max(scores) if scores else None)


def test_before_any_job_completes_the_best_score_of_all_wins():
    feed = Feed()
    feed.job(1, [0.5, 0.6])
    feed.job(2, [0.7], status="stopped")
    assert feed.view.best().job_id == 2


def test_a_job_stopped_early_does_not_beat_a_fully_trained_one():
    feed = Feed()
    feed.job(1, [0.9, 0.95, 0.97], status="stopped")  # better at 3 epochs than anything trained in full
    feed.job(2, [0.1 * e for e in range(1, 10)] + [0.91], status="completed")
    assert feed.view.best().job_id == 2
    assert [j.job_id for j in feed.view.leaderboard()] == [2, 1]  # the winner first, then the others


def test_a_running_job_that_trained_as_far_contends():
    feed = Feed()
    feed.job(1, [0.5] * 10, status="completed")
    feed.job(2, [0.4] * 9 + [0.8])  # still running, at epoch 10
    assert feed.view.best().job_id == 2


def test_failed_jobs_never_win_and_ties_go_to_the_earlier_job():
    feed = Feed(direction="minimize")
    feed.job(1, [0.3] * 10, status="completed")
    feed.job(2, [0.3] * 10, status="completed")
    feed.job(3, [0.1] * 10, status="failed")
    assert feed.view.best().job_id == 1


def test_a_higher_rung_replaces_a_lower_rungs_winner():
    feed = Feed()
    feed.job(1, [0.9], status="completed", stop=1)  # rung 0
    feed.job(2, [0.5], status="completed", stop=1)
    assert feed.view.best().job_id == 1
    feed.job(3, [0.6, 0.7, 0.8], status="completed", start=1, stop=4)  # trial 2 promoted (worse at rung 0's score)
    assert feed.view.best().job_id == 3


def test_simulate_reports_the_view_winner_the_best_at_the_top_rung():
    result = simulate("hyperband", [{"args": ["x"], "type": "float", "targets": [0.0, 1.0]}],
                      lambda c, e, s: ((c["x"] - 0.3) ** 2 + 1.0 / e, 1.0), max_epochs=9, seed=1,
                      params={"automl_R": 9, "automl_nu": 3, "epoch_multiplier": 1})
    top = [j for j in result.jobs if j["stop_epoch"] == 9 and j["status"] == "completed"]
    assert result.best[1] == min(j["metrics"][-1] for j in top)
    assert result.best == (result.jobs[result.view.best().job_id - 1]["config"], result.view.best().metric)
    assert result.incumbent_trace()[-1][1] == result.best[1]
