"""YearInference: year-less stamps placed in time, and zones applied. The clock is always pinned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from mailwarden.sources import YearInference


def place(reference: datetime, *stamps: str, tz: tzinfo = UTC) -> list[datetime | None]:
    clock = YearInference(reference, tz)
    return [clock.bsd(stamp) for stamp in stamps]


def test_same_month_as_the_reference_is_the_reference_year() -> None:
    assert place(datetime(2026, 11, 27, tzinfo=UTC), "Nov 27 17:34:14") == [
        datetime(2026, 11, 27, 17, 34, 14, tzinfo=UTC)
    ]


def test_a_month_after_the_reference_month_is_last_year() -> None:
    assert place(datetime(2026, 11, 27, tzinfo=UTC), "Dec  3 10:00:00") == [
        datetime(2025, 12, 3, 10, tzinfo=UTC)
    ]
    # Later in the reference month is this year: clock skew, not a year-old line.
    assert place(datetime(2026, 11, 27, tzinfo=UTC), "Nov 30 23:59:59") == [
        datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    ]


def test_walking_across_new_year() -> None:
    got = place(
        datetime(2027, 1, 2, 8, 0, tzinfo=UTC),
        "Dec 30 10:00:00",
        "Dec 31 23:59:59",
        "Jan  1 00:00:00",
        "Jan  2 07:00:00",
    )
    assert [ts.year if ts else None for ts in got] == [2026, 2026, 2027, 2027]


def test_out_of_order_line_does_not_move_the_year() -> None:
    # After New Year, a late "Dec 31" line is last year's, and "Jan" stays this year.
    got = place(
        datetime(2027, 1, 5, tzinfo=UTC),
        "Dec 31 23:00:00",
        "Jan  1 00:10:00",
        "Dec 31 23:59:58",
        "Jan  1 00:20:00",
    )
    assert [ts.year if ts else None for ts in got] == [2026, 2027, 2026, 2027]


def test_skewed_line_months_away_does_not_drag_the_file_back() -> None:
    got = place(datetime(2026, 11, 30, tzinfo=UTC), "Nov 27 10:00:00", "May  1 00:00:00",
                "Nov 27 10:00:01")  # fmt: skip
    assert [ts.year if ts else None for ts in got] == [2026, 2026, 2026]


def test_feb_29_picks_a_leap_year() -> None:
    # 2027 is common: the nearest leap year before the reference is 2024.
    assert place(datetime(2027, 3, 10, tzinfo=UTC), "Feb 29 12:00:00") == [
        datetime(2024, 2, 29, 12, tzinfo=UTC)
    ]
    # In a leap year, walking from Feb 28 to Feb 29 stays in it.
    assert place(datetime(2028, 3, 1, tzinfo=UTC), "Feb 28 23:59:59", "Feb 29 00:00:01") == [
        datetime(2028, 2, 28, 23, 59, 59, tzinfo=UTC),
        datetime(2028, 2, 29, 0, 0, 1, tzinfo=UTC),
    ]


def test_feb_29_after_a_walk_in_a_common_year_still_finds_a_leap_year() -> None:
    got = place(datetime(2027, 12, 1, tzinfo=UTC), "Feb 28 10:00:00", "Feb 29 10:00:00")
    assert got == [datetime(2027, 2, 28, 10, tzinfo=UTC), datetime(2024, 2, 29, 10, tzinfo=UTC)]


def test_same_stamp_a_year_later_is_not_served_from_the_cache() -> None:
    clock = YearInference(datetime(2026, 11, 30, tzinfo=UTC), UTC)
    early = [clock.bsd(stamp) for stamp in ("Dec  2 10:00:00", "Nov 30 10:00:00")]
    assert [ts.year if ts else None for ts in early] == [2025, 2025]  # second: out of order
    for stamp in ("Jan  1 00:00:00", "Jun  1 00:00:00", "Sep  1 00:00:00", "Nov 29 00:00:00"):
        clock.bsd(stamp)
    again = clock.cache.get("Nov 30 10:00:00") or clock.bsd("Nov 30 10:00:00")
    assert again == datetime(2026, 11, 30, 10, tzinfo=UTC)


def test_seconds_within_an_hour_and_leap_second() -> None:
    clock = YearInference(datetime(2026, 12, 1, tzinfo=UTC), UTC)
    assert clock.bsd("Nov 27 17:00:00") == datetime(2026, 11, 27, 17, tzinfo=UTC)
    assert clock.bsd("Nov 27 17:59:59") == datetime(2026, 11, 27, 17, 59, 59, tzinfo=UTC)
    assert clock.bsd("Nov 27 17:59:60") == datetime(2026, 11, 27, 17, 59, 59, tzinfo=UTC)
    assert clock.bsd("Nov 27 17:60:00") is None
    assert clock.bsd("Nov 27 17:5x:00") is None


def test_local_time_with_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    clock = YearInference(datetime(2026, 12, 1, tzinfo=UTC), berlin)
    summer = clock.bsd("Jul  1 12:00:00")
    winter = clock.bsd("Nov 27 12:00:00")
    assert summer == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert winter == datetime(2026, 11, 27, 11, tzinfo=UTC)
    # Spring forward (2026-03-29 02:00 -> 03:00): the hour cache must not carry 01:xx's offset.
    assert clock.bsd("Mar 29 01:30:00") == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert clock.bsd("Mar 29 03:30:00") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_reference_is_read_in_the_log_zone() -> None:
    # 2026-11-30 23:30 UTC is already December in Tokyo: a "Dec 1" line is this year's.
    tokyo = ZoneInfo("Asia/Tokyo")
    got = place(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "Dec  1 08:00:00", tz=tokyo)
    assert got == [datetime(2026, 11, 30, 23, tzinfo=UTC)]


def test_naive_reference_is_wall_time() -> None:
    assert place(datetime(2026, 11, 27), "Nov 27 17:34:14") == [
        datetime(2026, 11, 27, 17, 34, 14, tzinfo=UTC)
    ]


def test_system_zone_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        clock = YearInference(datetime(2026, 12, 1, tzinfo=UTC))
        assert clock.bsd("Nov 27 12:00:00") == datetime(2026, 11, 27, 17, tzinfo=UTC)
        assert clock.iso("2026-11-27T12:00:00") == datetime(2026, 11, 27, 17, tzinfo=UTC)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_iso_results_are_cached_and_utc() -> None:
    clock = YearInference(datetime(2026, 12, 1, tzinfo=UTC), UTC)
    ts = clock.iso("2026-11-27T17:34:14-05:00")
    assert ts == datetime(2026, 11, 27, 22, 34, 14, tzinfo=UTC)
    assert ts is not None and ts.utcoffset() == timedelta(0)
    assert clock.cache["2026-11-27T17:34:14-05:00"] is ts
    assert clock.iso("not a stamp") is None


def test_extreme_references_do_not_raise() -> None:
    assert place(datetime(9999, 12, 31, tzinfo=UTC), "Dec 31 23:00:00")[0] is not None
    assert place(datetime(1, 1, 1, tzinfo=UTC), "Dec 31 23:00:00") == [None]
