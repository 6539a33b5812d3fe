"""Live progress: warm-up counted apart, the measured count never above its total."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from infermeter.report.progress import LiveProgress


def _line(progress: LiveProgress) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200).print(progress)
    return buf.getvalue()


def _record(ok: bool = True) -> SimpleNamespace:
    return SimpleNamespace(ok=ok, n_out=8 if ok else 0)


def test_warmup_is_shown_apart_from_the_measured_count() -> None:
    progress = LiveProgress(total=16, duration_s=None, warmup=2)
    # The runner's counters cover warm-up and measured requests alike.
    state = SimpleNamespace(phase="warmup", finished=1, failed=0, in_flight=1)
    progress.attach(state)
    line = _line(progress)
    assert "warm-up 1/2" in line and "/16" not in line, line

    state.phase, state.finished, state.in_flight = "measure", 2, 0
    assert "0/16 done" in _line(progress)

    for i in range(16):
        progress.on_record(_record(ok=i != 3))  # type: ignore[arg-type]
        state.finished += 1
    state.failed = 1
    line = _line(progress)
    assert "16/16 done" in line and "18/16" not in line, line
    assert "1 failed" in line
    assert "warm-up 2/2" in line, line


def test_warmup_failures_are_not_measured_failures() -> None:
    progress = LiveProgress(total=4, duration_s=None, warmup=2)
    state = SimpleNamespace(phase="measure", finished=2, failed=2, in_flight=0)
    progress.attach(state)
    line = _line(progress)
    assert "0/4 done" in line and "0 failed" in line, line


def test_without_a_warmup_total() -> None:
    """A caller that does not say how many warm-up requests: counted, never a total."""
    progress = LiveProgress(16, None)
    state = SimpleNamespace(phase="warmup", finished=3, failed=0, in_flight=2)
    progress.attach(state)
    line = _line(progress)
    assert "warm-up 3 done" in line and "/16" not in line, line
    state.phase = "measure"
    progress.on_record(_record())  # type: ignore[arg-type]
    state.finished = 4
    assert "1/16 done" in _line(progress)
