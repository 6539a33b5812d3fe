"""Timestamped request traces: when each request came, how long its prompt and answer were,
and which prompt blocks it shared with earlier ones.

Four file formats are read (docs/workloads.md shows one example of each):

- ``mooncake``: Mooncake's JSONL, ``timestamp`` (ms), ``input_length``, ``output_length`` and
  ``hash_ids``, the ids of the prompt's 512-token blocks (equal ids: equal blocks, and each id
  stands for its whole prefix, as in a prefix cache);
- ``burstgpt``: BurstGPT's CSV, ``Timestamp`` (s), ``Model``, ``Request tokens``,
  ``Response tokens``, ``Total tokens``, ``Log Type``;
- ``azure``: the Azure LLM inference trace's CSV, ``TIMESTAMP`` (a date and time),
  ``ContextTokens``, ``GeneratedTokens``;
- ``jsonl``: infermeter's own plain rows, ``offset_s``, ``input_tokens``, ``output_tokens``
  and, for requests that share a prompt prefix, ``prefix_group`` with ``prefix_tokens``.

Everything here is pure but for reading the file: the result is a :class:`Trace` whose
requests carry offsets in seconds from the trace's first request.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import orjson

from infermeter.errors import UsageError

TraceFormat = Literal["mooncake", "burstgpt", "azure", "jsonl", "run"]
#: ``--trace-format`` choices: a file format, a run directory, or sniffed.
TRACE_FORMATS: tuple[str, ...] = ("auto", "mooncake", "burstgpt", "azure", "jsonl", "run")
#: Tokens per ``hash_ids`` block in Mooncake's traces.
MOONCAKE_BLOCK_TOKENS = 512


class TraceError(UsageError):
    """A trace that cannot be replayed: the message names the file, line and field."""


@dataclass(frozen=True, slots=True)
class PrefixBlock:
    """A block of prompt tokens that other requests may share. Its ``key`` names the block
    together with every block before it (two requests share a block only if they share all
    the blocks before it too, as in a prefix cache)."""

    key: str
    tokens: int


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """One request of a trace: its offset (s) from the first, its lengths, and the prompt
    blocks it shares with other requests (its own tokens follow them)."""

    offset_s: float
    input_tokens: int
    output_tokens: int
    prefix: tuple[PrefixBlock, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Trace:
    """A trace ready to replay: requests in time order, offsets from the first one."""

    path: Path
    format: TraceFormat
    requests: list[TraceRequest]
    #: Rows left out, by reason (``--skip-bad-rows``, or rows no server could answer).
    skipped: dict[str, int] = field(default_factory=dict)
    #: The first skipped row's problem, for the message that says rows were skipped.
    first_skipped: str | None = None

    @property
    def span_s(self) -> float:
        return self.requests[-1].offset_s if self.requests else 0.0

    @property
    def mean_rate_rps(self) -> float | None:
        n = len(self.requests)
        return (n - 1) / self.span_s if n > 1 and self.span_s > 0 else None


def sniff_format(path: Path) -> TraceFormat:
    """The format of a trace file, from its first row (a directory is a run's records)."""
    if path.is_dir():
        return "run"
    try:
        with path.open("rb") as f:
            first = b""
            for raw in f:
                if raw.strip():
                    first = raw.strip()
                    break
    except OSError as exc:
        raise TraceError(f"--trace {path}: cannot read it ({exc.strerror})") from None
    if first.startswith(b"{"):
        try:
            row = orjson.loads(first)
        except orjson.JSONDecodeError:
            raise TraceError(f"{path}:1: not a JSON object") from None
        if isinstance(row, dict) and "input_length" in row:
            return "mooncake"
        if isinstance(row, dict) and "offset_s" in row:
            return "jsonl"
        raise TraceError(
            f"{path}:1: a JSON row with neither input_length (Mooncake) nor offset_s "
            "(infermeter's plain rows); name the format with --trace-format"
        )
    header = {h.strip() for h in first.decode("utf-8", "replace").split(",")}
    if {"Timestamp", "Request tokens", "Response tokens"} <= header:
        return "burstgpt"
    if {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} <= header:
        return "azure"
    raise TraceError(
        f"{path}: not a trace format infermeter knows (Mooncake JSONL, BurstGPT CSV, Azure "
        "CSV, plain JSONL, a run directory); name it with --trace-format"
    )


def read_trace_file(path: Path, fmt: TraceFormat, *, skip_bad_rows: bool = False) -> Trace:
    """Read a trace file of format ``fmt`` (not ``run``). A row that cannot be replayed is
    an error naming ``file:line`` and its field, or with ``skip_bad_rows`` a counted skip."""
    rows: Iterator[TraceRequest | _Bad]
    if fmt == "mooncake":
        rows = _mooncake(path)
    elif fmt == "jsonl":
        rows = _plain(path)
    elif fmt == "burstgpt":
        rows = _burstgpt(path)
    elif fmt == "azure":
        rows = _azure(path)
    else:
        raise TraceError(f"--trace-format {fmt}: a run directory is read from its records")
    return collect(path, fmt, rows, skip_bad_rows=skip_bad_rows)


@dataclass(frozen=True, slots=True)
class _Bad:
    """A row that cannot be replayed: where, and why."""

    line: int
    why: str
    reason: str = "malformed"


#: Rows no server could answer as asked, left out whatever ``--skip-bad-rows`` says (a
#: production log holds failed requests).
_UNANSWERABLE = ("no prompt", "no output")


def collect(
    path: Path,
    fmt: TraceFormat,
    rows: Iterable[TraceRequest | _Bad],
    *,
    skip_bad_rows: bool = False,
) -> Trace:
    """Rows (absolute offsets, any origin) into a :class:`Trace`: checked in time order,
    offsets from the first request. A row with no prompt or no output to ask for (a failed
    request in a production log) is left out and counted whatever ``skip_bad_rows`` says."""
    kept: list[TraceRequest] = []
    skipped: dict[str, int] = {}
    first_skipped: str | None = None
    last: TraceRequest | None = None
    for row in rows:
        if isinstance(row, TraceRequest) and row.input_tokens == 0:
            row = _Bad(row.line, "no prompt tokens", _UNANSWERABLE[0])
        elif isinstance(row, TraceRequest) and row.output_tokens == 0:
            row = _Bad(
                row.line,
                "no output tokens (a request that failed or was cut off)",
                _UNANSWERABLE[1],
            )
        if isinstance(row, TraceRequest) and last is not None and row.offset_s < last.offset_s:
            row = _Bad(
                row.line,
                f"its time ({row.offset_s:g} s) is before the previous row's "
                f"({last.offset_s:g} s); sort the trace by time",
                "out of order",
            )
        if isinstance(row, _Bad):
            message = f"{path}:{row.line}: {row.why}"
            if not skip_bad_rows and row.reason not in _UNANSWERABLE:
                raise TraceError(message + " (or pass --skip-bad-rows)")
            skipped[row.reason] = skipped.get(row.reason, 0) + 1
            first_skipped = first_skipped or message
            continue
        kept.append(row)
        last = row
    if not kept:
        raise TraceError(f"--trace {path}: no request to replay")
    return Trace(path, fmt, rebased(kept), skipped, first_skipped)


def cut(
    trace: Trace,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    time_scale: float = 1.0,
    limit: int | None = None,
) -> Trace:
    """The window ``[start_s, start_s + duration_s)`` of the trace (its own seconds), the
    first ``limit`` requests of it, offsets from the window's first request multiplied by
    ``time_scale`` (0.5 replays twice as fast)."""
    end = start_s + duration_s if duration_s is not None else math.inf
    picked = [r for r in trace.requests if start_s <= r.offset_s < end]
    if limit is not None:
        picked = picked[:limit]
    if not picked:
        raise TraceError(
            f"--trace {trace.path}: no request between {start_s:g} s and "
            f"{end:g} s of the trace (it spans {trace.span_s:g} s)"
        )
    return replace(trace, requests=rebased(picked, time_scale))


def rebased(requests: list[TraceRequest], time_scale: float = 1.0) -> list[TraceRequest]:
    """The requests with offsets from the first of them, multiplied by ``time_scale``."""
    t0 = requests[0].offset_s
    return [replace(r, offset_s=(r.offset_s - t0) * time_scale) for r in requests]


@dataclass(frozen=True, slots=True)
class PrefixReuse:
    """What an unbounded prefix cache could serve from earlier requests of the trace."""

    prompt_tokens: int
    reusable_tokens: int
    requests_reusing: int

    @property
    def share(self) -> float:
        return self.reusable_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


def prefix_reuse(requests: Iterable[TraceRequest]) -> PrefixReuse:
    """The reuse the trace asks for: each request's leading blocks already sent by an
    earlier one (keys name whole prefixes, so a seen key means a seen prefix)."""
    seen: set[str] = set()
    total = reusable = reusing = 0
    for r in requests:
        total += r.input_tokens
        got = 0
        for block in r.prefix:
            if block.key not in seen:
                break
            got += block.tokens
        if got:
            reusing += 1
            reusable += got
        seen.update(b.key for b in r.prefix)
    return PrefixReuse(total, reusable, reusing)


# -- readers: each yields rows with absolute offsets (s), or _Bad --------------------------


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with path.open("rb") as f:
            for i, raw in enumerate(f, 1):
                if raw.strip():
                    yield i, raw
    except OSError as exc:
        raise TraceError(f"--trace {path}: cannot read it ({exc.strerror})") from None


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, object] | _Bad]]:
    for i, raw in _lines(path):
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError:
            yield i, _Bad(i, "not a JSON object")
            continue
        yield i, row if isinstance(row, dict) else _Bad(i, "not a JSON object")


def _number(row: dict[str, object] | dict[str, str], name: str, line: int) -> float | _Bad:
    """A field's finite number (JSON numbers, or CSV text)."""
    value = row.get(name)
    if value is None or value == "":
        return _Bad(line, f"field {name!r} is missing")
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        return _Bad(line, f"field {name!r} is not a number: {value!r}")
    if isinstance(number, bool) or not isinstance(number, int | float):
        return _Bad(line, f"field {name!r} is not a number: {value!r}")
    if not math.isfinite(number):
        return _Bad(line, f"field {name!r} is not finite: {value!r}")
    return float(number)


def _count(row: dict[str, object] | dict[str, str], name: str, line: int) -> int | _Bad:
    """A token count field: a whole number ≥ 0 (a float with no fraction is taken)."""
    number = _number(row, name, line)
    if isinstance(number, _Bad):
        return number
    if number != int(number):
        return _Bad(line, f"field {name!r} is not a whole number: {row.get(name)!r}")
    if number < 0:
        return _Bad(line, f"field {name!r} is negative: {row.get(name)!r}", "negative length")
    return int(number)


def _time(row: dict[str, object] | dict[str, str], name: str, line: int) -> float | _Bad:
    number = _number(row, name, line)
    if not isinstance(number, _Bad) and number < 0:
        return _Bad(line, f"field {name!r} must be a time ≥ 0: {row.get(name)!r}")
    return number


def _request(
    line: int,
    t: float | _Bad,
    n_in: int | _Bad,
    n_out: int | _Bad,
    prefix: tuple[PrefixBlock, ...] | _Bad = (),
) -> TraceRequest | _Bad:
    for part in (t, n_in, n_out, prefix):
        if isinstance(part, _Bad):
            return part
    assert not isinstance(t, _Bad) and not isinstance(n_in, _Bad)
    assert not isinstance(n_out, _Bad) and not isinstance(prefix, _Bad)
    return TraceRequest(t, n_in, n_out, prefix, line)


def _mooncake(path: Path) -> Iterator[TraceRequest | _Bad]:
    for line, row in _json_rows(path):
        if isinstance(row, _Bad):
            yield row
            continue
        t = _time(row, "timestamp", line)
        n_in = _count(row, "input_length", line)
        prefix: tuple[PrefixBlock, ...] | _Bad = ()
        ids = row.get("hash_ids", [])
        if not isinstance(ids, list) or not all(
            isinstance(h, int | str) and not isinstance(h, bool) for h in ids
        ):
            prefix = _Bad(line, "field 'hash_ids' is not a list of block ids")
        elif isinstance(n_in, int):
            # Only whole blocks are shared; the part of a last, partial block is the request's own.
            whole = min(len(ids), n_in // MOONCAKE_BLOCK_TOKENS)
            prefix = tuple(PrefixBlock(f"m{h}", MOONCAKE_BLOCK_TOKENS) for h in ids[:whole])
        yield _request(
            line,
            t if isinstance(t, _Bad) else t / 1000.0,
            n_in,
            _count(row, "output_length", line),
            prefix,
        )


def _plain(path: Path) -> Iterator[TraceRequest | _Bad]:
    for line, row in _json_rows(path):
        if isinstance(row, _Bad):
            yield row
            continue
        n_in = _count(row, "input_tokens", line)
        prefix: tuple[PrefixBlock, ...] | _Bad = ()
        group = row.get("prefix_group")
        if group is not None:
            size = _count(row, "prefix_tokens", line)
            if isinstance(size, _Bad):
                prefix = _Bad(line, f"{size.why}: a row with 'prefix_group' gives its length")
            elif isinstance(n_in, int) and not 0 < size < n_in:
                prefix = _Bad(
                    line,
                    f"field 'prefix_tokens' ({size}) must be more than 0 and less than "
                    f"'input_tokens' ({n_in})",
                )
            else:
                # One block per group and length: the group's rows share exactly it.
                prefix = (PrefixBlock(f"g{group!s}:{size}", size),)
        yield _request(
            line, _time(row, "offset_s", line), n_in, _count(row, "output_tokens", line), prefix
        )


def _csv_rows(path: Path, needed: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            names = [n.strip() for n in reader.fieldnames or []]
            missing = [n for n in needed if n not in names]
            if missing:
                raise TraceError(f"{path}:1: the header has no column {missing[0]!r}")
            reader.fieldnames = names
            for row in reader:
                yield reader.line_num, row
    except OSError as exc:
        raise TraceError(f"--trace {path}: cannot read it ({exc.strerror})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: not a readable CSV file ({exc})") from None


def _burstgpt(path: Path) -> Iterator[TraceRequest | _Bad]:
    for line, row in _csv_rows(path, ("Timestamp", "Request tokens", "Response tokens")):
        yield _request(
            line,
            _time(row, "Timestamp", line),
            _count(row, "Request tokens", line),
            _count(row, "Response tokens", line),
        )


def _azure(path: Path) -> Iterator[TraceRequest | _Bad]:
    for line, row in _csv_rows(path, ("TIMESTAMP", "ContextTokens", "GeneratedTokens")):
        yield _request(
            line,
            _azure_time(row.get("TIMESTAMP") or "", line),
            _count(row, "ContextTokens", line),
            _count(row, "GeneratedTokens", line),
        )


def _azure_time(text: str, line: int) -> float | _Bad:
    """``2023-11-16 18:15:46.6805900`` (seven fractional digits, which Python's parser does
    not take) as seconds; only differences between rows are used."""
    whole, _, frac = text.strip().partition(".")
    try:
        when = _dt.datetime.strptime(whole, "%Y-%m-%d %H:%M:%S")
        fraction = int(frac) / 10 ** len(frac) if frac else 0.0
    except ValueError:
        return _Bad(line, f"field 'TIMESTAMP' is not a date and time: {text!r}")
    return when.replace(tzinfo=_dt.timezone.utc).timestamp() + fraction
