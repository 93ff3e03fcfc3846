"""The kill harness, short: `kill -9` of the tool at random moments of five algorithms'
searches (two of them without and three with a wrapper script between the tool and the
trainer), resumed at once each time. After every kill no process of the dead run may be
left and no trainer may go on without its tool; at the end no epoch was trained twice,
every job is terminal and the run has the jobs of an uninterrupted one. The long version,
with figures: python benchmarks/kill_harness.py --kills 10."""
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.kill_harness import ALGORITHMS, run_all  # noqa: E402

KILLS = 3


@pytest.mark.slow
def test_kill_9_at_random_moments_of_five_algorithms_loses_nothing_and_leaves_nothing(tmp_path):
    assert {"bayesian", "hyperband", "asha", "pbt", "dehb"} <= set(ALGORITHMS)
    results = run_all(list(ALGORITHMS), KILLS, random.Random().randrange(1000), tmp_path)
    figures = {r.algorithm: (r.kills, r.orphans, r.twice, f"{r.jobs}/{r.expected_jobs}") for r in results}
    print("kills, orphans, epochs trained twice, jobs/uninterrupted:", figures)
    assert [r.problems for r in results] == [[] for _ in results], figures
    assert all(r.kills == KILLS and r.survived >= 1 for r in results)
