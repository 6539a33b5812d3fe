"""Live progress while a run is going: requests done, errors, in flight, current rates.

Warm-up requests are counted apart from the measured ones: ``warm-up 2/2`` first, then
``5/16 done``, never ``18/16``."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from infermeter.records.schema import RequestRecord


class LiveProgress:
    """A listener for finished records plus a rich Live line that reads the runner's state.

    It listens to measured records only; the runner's ``finished`` counts warm-up requests
    too, so the warm-up count is what the runner finished beyond the measured ones.
    ``warmup``: how many warm-up requests the run sends (None: not known; counted only)."""

    def __init__(
        self,
        total: int | None,
        duration_s: float | None,
        console: Console | None = None,
        window_s: float = 10.0,
        warmup: int | None = None,
    ) -> None:
        self.total = total
        self.duration_s = duration_s
        self.warmup = warmup
        self.done = 0
        self.failed = 0
        self.console = console or Console(stderr=True, emoji=False)
        self.window_s = window_s
        self._recent: deque[tuple[float, int]] = deque()
        self._state: Any = None
        self._live: Live | None = None
        self._t0 = time.monotonic()

    def attach(self, state: Any) -> None:
        self._state = state

    def on_record(self, record: RequestRecord) -> None:
        self.done += 1
        self.failed += 0 if record.ok else 1
        now = time.monotonic()
        self._recent.append((now, record.n_out if record.ok else 0))
        while self._recent and now - self._recent[0][0] > self.window_s:
            self._recent.popleft()

    def __rich__(self) -> Text:
        st = self._state
        if st is None:
            return Text("starting…")
        now = time.monotonic()
        elapsed = now - self._t0
        span = min(self.window_s, elapsed) or 1.0
        recent = [x for x in self._recent if now - x[0] <= self.window_s]
        tok_s = sum(n for _, n in recent) / span
        req_s = len(recent) / span
        timing = f" of {self.duration_s:g} s" if self.duration_s else ""
        warm = max(st.finished - self.done, 0)
        if self.warmup is not None:
            # Measuring starts once warm-up is over (workers do not count theirs in finished).
            warm = min(warm, self.warmup) if st.phase == "warmup" else self.warmup
        warm_text = f"warm-up {warm}/{self.warmup}" if self.warmup else f"warm-up {warm} done"
        line = Text()
        if st.phase == "warmup":
            line.append("warm-up ", style="bold cyan")
            line.append(f"{warm}/{self.warmup}  " if self.warmup else f"{warm} done  ")
        else:
            goal = f"/{self.total}" if self.total else ""
            line.append(f"{st.phase:>7} ", style="bold cyan")
            line.append(f"{self.done}{goal} done  ")
            line.append(f"{self.failed} failed  ", style="red" if self.failed else "dim")
            if warm or self.warmup:
                line.append(f"({warm_text})  ", style="dim")
        line.append(f"{st.in_flight} in flight  ")
        line.append(f"{tok_s:,.0f} out tok/s  {req_s:,.2f} req/s  ")
        line.append(f"{elapsed:,.1f} s{timing}", style="dim")
        return line

    def __enter__(self) -> LiveProgress:
        self._t0 = time.monotonic()
        self._live = Live(self, console=self.console, refresh_per_second=4, transient=True)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None
