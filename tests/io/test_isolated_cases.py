"""The case runner of the corpus and fuzz tests reports a crash as the crashing case's result and goes on."""

from __future__ import annotations

from tests.io.isolated_cases import run_batch


def test_a_case_that_kills_its_runner_is_a_crash_and_the_next_cases_still_run():
    results = run_batch("abort", ["a", "abort", "b", "abort"])
    assert [r["outcome"] for r in results] == ["ok", "crash", "ok", "crash"]
    assert "SIGABRT" in results[1]["message"]
