"""backends/metrics.py: the one reader of a trainer's metrics file."""
from __future__ import annotations

from automl_cli.backends.metrics import MetricsTail, read_metrics


def test_tail_returns_complete_lines_once_and_waits_for_a_partial_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read() == []  # no file yet
    path.write_text('{"epoch": 1, "acc": 0.5}\n{"epoch": 2, "ac')
    assert tail.read() == [{"epoch": 1, "acc": 0.5}]
    with open(path, "a") as handle:
        handle.write('c": 0.6}\n\n[1, 2]\nnot json\n')
    assert tail.read() == [{"epoch": 2, "acc": 0.6}, {"unreadable": "[1, 2]"}, {"unreadable": "not json"}]
    assert tail.read() == []


def test_a_whole_file_is_read_to_its_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2}')  # a trainer that died before its newline
    assert read_metrics(path) == [{"epoch": 1}, {"epoch": 2}]
    path.write_text('{"epoch": 1}\n{"epo')  # the line being written when it died: no epoch
    assert read_metrics(path) == [{"epoch": 1}, {"unreadable": '{"epo'}]
