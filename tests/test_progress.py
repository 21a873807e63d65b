"""Progress reports: bounded in frequency, and the final count said once."""

from kmerl.progress import Progress, ProgressTracker


def test_the_final_count_is_reported_once_however_often_reports_come() -> None:
    seen: list[Progress] = []
    every_time = ProgressTracker(4, seen.append, interval_s=0.0, unit="reports")
    every_time.advance(2)
    every_time.advance(2)
    assert every_time.finish().done == 4
    assert [p.done for p in seen] == [2, 4]  # the last advance already said 4/4: finish adds nothing

    seen.clear()
    rarely = ProgressTracker(4, seen.append, interval_s=3600.0, unit="reports")
    rarely.advance(3)
    rarely.advance(1)
    rarely.finish()
    assert [(p.done, p.total, p.unit) for p in seen] == [(4, 4, "reports")]  # nothing in between, the end once
