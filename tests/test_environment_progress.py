"""Progress display: a bar on a terminal, a periodic log line otherwise."""

from __future__ import annotations

import logging

import pytest

from pytraj.run import progress
from pytraj.run.progress import Progress, resolve_mode


def test_auto_is_a_log_line_when_stderr_is_not_a_terminal() -> None:
    assert resolve_mode("auto") == "log"  # pytest captures stderr: not a terminal
    assert resolve_mode("bar") == "bar"
    assert resolve_mode("off") == "off"


def test_log_mode_reports_done_failed_rate_and_eta(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)
    shown = Progress("log", 4, "study")
    with caplog.at_level(logging.INFO, logger="pytraj.run"):
        shown.update(2, 1)
        shown.add_total(2)
        shown.update(4, 0)
        shown.close()
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0].startswith("study: 2/4 runs (1 failed), ")
    assert "runs/s, ETA " in lines[0]
    assert lines[-1].startswith("study: 6/6 runs (1 failed), ")
    assert "ETA" not in lines[-1]


def test_bar_mode_draws_a_tqdm_bar(capsys: pytest.CaptureFixture[str]) -> None:
    shown = Progress("bar", 3, "study")
    shown.update(2, 1)
    shown.update(1, 0)
    shown.close()
    err = capsys.readouterr().err
    assert "study" in err
    assert "3/3" in err
    assert "failed=1" in err


def test_off_mode_shows_nothing(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    shown = Progress("off", 3, "study")
    with caplog.at_level(logging.INFO):
        shown.update(3, 0)
        shown.close()
    assert capsys.readouterr().err == ""
    assert caplog.records == []
