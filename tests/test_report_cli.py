"""`automl report` on the command line, without a browser: several --run-id compare the runs
on one page beside them (no CSV), `latest` still names the newest run, and a run named twice
is reported once, as a single run."""
from conftest import run_cli


def test_several_run_ids_write_one_compare_page_and_latest_still_works(fake_mmar):
    for run_id in ("a", "b"):
        result = run_cli("run", "-m", str(fake_mmar), "--run-id", run_id, "--workers", "0",
                         "--set", "automl_max_recommendations=2")
        assert result.returncode == 0, result.stderr
    runs = fake_mmar.resolve() / "automl"
    result = run_cli("report", "-m", str(fake_mmar), "--run-id", "a", "--run-id", "latest")
    assert result.returncode == 0, result.stderr
    page = runs / "compare-a-b.html"
    assert result.stdout.strip() == f"report comparing a, b: {page}"
    text = page.read_text()
    assert text.count("</body>") == 1 and "AutoML runs compared: a, b" in text
    assert "id='summary'" in text and "id='leaderboard-a'" in text and "id='leaderboard-b'" in text
    assert not (runs / "a" / "report.csv").exists() and not list(runs.glob("*.csv"))  # no CSV for a compare

    out = fake_mmar / "elsewhere.html"
    result = run_cli("report", "-m", str(fake_mmar), "--run-id", "b", "--run-id", "a", "--out", str(out))
    assert result.returncode == 0 and out.is_file() and "AutoML runs compared: b, a" in out.read_text()

    result = run_cli("report", "-m", str(fake_mmar), "--run-id", "latest", "--run-id", "b")  # one run, twice
    assert result.returncode == 0, result.stderr
    assert f"report: {runs / 'b' / 'report.html'}" in result.stdout and (runs / "b" / "report.csv").is_file()


def test_an_unknown_run_among_several_is_one_line(fake_mmar):
    assert run_cli("run", "-m", str(fake_mmar), "--run-id", "a", "--workers", "0",
                   "--set", "automl_max_recommendations=1").returncode == 0
    result = run_cli("report", "-m", str(fake_mmar), "--run-id", "a", "--run-id", "nope")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no run 'nope'" in result.stderr
