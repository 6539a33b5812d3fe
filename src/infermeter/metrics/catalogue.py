"""Every metric infermeter reports, once: its key in results.json, its names and unit, its
formula and meaning in the contract's symbols (docs/metrics.md), and which way is better.

The computation (:mod:`infermeter.metrics.aggregate`), the terminal and Markdown tables, the
HTML report's glossary and charts and ``compare``'s ratio colours all read these entries, so a
new metric is one entry here, one formula, one line of docs and one golden assertion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["higher", "lower"] | None


@dataclass(frozen=True, slots=True)
class Chart:
    """How the HTML report draws a distribution: title, axis label, what one count is."""

    title: str
    axis: str
    counts: Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class Metric:
    #: The key in results.json (``distributions.<key>`` or ``summary.<key>``).
    key: str
    #: Its name in the glossary ("TTFT") and, shorter, where space is tight.
    name: str
    short: str
    #: Its row label in the terminal and Markdown tables, with the unit.
    label: str
    unit: str
    formula: str
    meaning: str
    better: Better
    #: Distributions the HTML report draws.
    chart: Chart | None = None
    #: Its name as a heading (cards, compare's rows): the name capitalised unless given.
    heading: str = ""

    @property
    def title(self) -> str:
        return self.heading or self.name[:1].upper() + self.name[1:]


def _ms(key: str, name: str, short: str, label: str, formula: str, meaning: str) -> Metric:
    return Metric(key, name, short, label, "ms", formula, meaning, "lower")


#: Per-request distributions (metrics spec section 3), in the order every report lists them.
DISTRIBUTIONS: tuple[Metric, ...] = (
    Metric(
        "ttft_ms", "TTFT", "TTFT", "TTFT (ms)", "ms", "t_first − t_send",
        "time to first token: queueing, prefill and network", "lower",
        Chart("TTFT: time to first token", "TTFT (ms)", "requests"),
    ),
    _ms(
        "ttft_incl_queue_ms", "TTFT incl. client queue", "TTFT incl. queue",
        "TTFT incl. client queue (ms)", "t_first − t_sched",
        "TTFT plus any wait in the client before the request was sent",
    ),
    Metric(
        "ttfa_ms", "TTFA", "TTFA", "TTFA (ms)", "ms", "t_answer − t_send",
        "time to first answer token: a reasoning model's first token that is not thinking "
        "(content or a tool call); reported where some request reasoned",
        "lower",
        Chart("TTFA: time to first answer token (reasoning models)", "TTFA (ms)", "requests"),
    ),
    Metric(
        "tpot_ms", "TPOT", "TPOT", "TPOT (ms)", "ms", "(t_last − t_first) / (n_out − 1)",
        "time per output token of the decode phase, only for n_out ≥ 2", "lower",
        Chart("TPOT: time per output token", "TPOT (ms)", "requests"),
    ),
    Metric(
        "itl_ms", "ITL, per token", "ITL", "ITL per token (ms)", "ms",
        "(t_chunk[i] − t_chunk[i−1]) / k[i]",
        "inter-token latency, counted k[i] times per chunk: a 3-token chunk after 30 ms gives "
        "three 10 ms samples",
        "lower",
        Chart("ITL: inter-token latency, per token", "ITL (ms)", "tokens"),
        heading="ITL",
    ),
    Metric(
        "e2e_ms", "E2E latency", "E2E", "E2E latency (ms)", "ms", "t_last − t_send",
        "end-to-end latency of a request: E2E = TTFT + TPOT × (n_out − 1)", "lower",
        Chart("E2E: end-to-end latency", "E2E latency (ms)", "requests"),
    ),
    _ms(
        "inter_chunk_ms", "inter-chunk latency", "inter-chunk", "inter-chunk (ms)",
        "t_chunk[i] − t_chunk[i−1]",
        "gap between stream chunks; equals ITL when every chunk carries one token",
    ),
    _ms(
        "queue_delay_ms", "client queue delay", "client queue", "client queue delay (ms)",
        "t_send − t_sched",
        "~0 unless the client is saturated or --max-concurrency holds requests back; in open "
        "loop, the schedule lag",
    ),
    _ms(
        "connect_ms", "connection set-up", "connect", "connection set-up (ms)", "",
        "time spent opening a new connection before t_send (0 on a reused one)",
    ),
    Metric(
        "input_tokens", "n_in", "input tokens", "input tokens", "tokens", "",
        "prompt tokens as the server counted them", None,
    ),
    Metric(
        "output_tokens", "n_out", "output tokens", "output tokens", "tokens", "",
        "output tokens (reasoning included)", None,
    ),
    Metric(
        "reasoning_tokens", "n_reason", "reasoning tokens", "reasoning tokens", "tokens", "",
        "output tokens spent thinking (the server's count, else the thinking chunks' tokens); "
        "reported where some request reasoned",
        None,
    ),
    _ms(
        "reasoning_ms", "reasoning time", "reasoning", "reasoning time (ms)",
        "t_answer − t_first",
        "time spent thinking, for requests that reasoned (t_last − t_first where no answer "
        "came)",
    ),
    Metric(
        "prefill_tps", "prefill TPS", "prefill TPS", "prefill TPS (tok/s)", "tok/s",
        "n_in / TTFT", "prompt tokens per second", "higher",
    ),
    Metric(
        "decode_tps", "decode TPS", "decode TPS", "decode TPS (tok/s)", "tok/s", "1 / TPOT",
        "output tokens per second of the decode", "higher",
    ),
    Metric(
        "request_tps", "per-request TPS", "per-request TPS", "per-request TPS (tok/s)",
        "tok/s", "n_out / E2E", "output tokens per second over the whole request", "higher",
    ),
)  # fmt: skip

#: Run aggregates (metrics spec section 4), in results.json's ``summary`` order.
SUMMARY: tuple[Metric, ...] = (
    Metric("requests_sent", "requests sent", "sent", "requests sent", "requests", "", "", None),
    Metric(
        "requests_completed", "requests completed", "completed", "requests completed",
        "requests", "", "", None,
    ),
    Metric(
        "requests_failed", "requests failed", "failed", "requests failed", "requests", "", "",
        "lower",
    ),
    Metric(
        "duration_s", "measured window D", "D", "measured window D (s)", "s", "",
        "from the first t_send to the last t_end of the measured requests (warm-up requests "
        "are kept apart), in seconds",
        None,
    ),
    Metric(
        "request_throughput_rps", "request throughput", "req/s", "request throughput (req/s)",
        "req/s", "completed / D", "requests per second (RPM = 60 × RPS)", "higher",
    ),
    Metric(
        "request_throughput_rpm", "request throughput", "req/min",
        "request throughput (req/min)", "req/min", "60 × completed / D", "requests per minute",
        "higher",
    ),
    Metric(
        "output_token_throughput_tok_s", "output token throughput", "out tok/s",
        "output token throughput (tok/s)", "tok/s", "Σ n_out / D",
        "over the completed requests", "higher", heading="Output throughput",
    ),
    Metric(
        "input_token_throughput_tok_s", "input token throughput", "in tok/s",
        "input token throughput (tok/s)", "tok/s", "Σ n_in / D", "over the completed requests",
        "higher",
    ),
    Metric(
        "total_token_throughput_tok_s", "total token throughput", "total tok/s",
        "total token throughput (tok/s)", "tok/s", "Σ (n_in + n_out) / D",
        "input and output tokens of every request", "higher",
    ),
    Metric(
        "achieved_concurrency", "achieved concurrency", "concurrency",
        "achieved concurrency (Little's law)", "requests", "Σ E2E / D",
        "Little's law: requests in flight on average, beside the target", None,
    ),
    Metric(
        "target_concurrency", "target concurrency", "target", "target concurrency", "requests",
        "", "", None,
    ),
    Metric(
        "target_rate_rps", "target rate", "target rate", "target rate (req/s)", "req/s", "", "",
        None,
    ),
    Metric(
        "achieved_send_rate_rps", "achieved send rate", "send rate",
        "achieved send rate (req/s)", "req/s", "", "", None,
    ),
    Metric(
        "goodput_rps", "goodput", "goodput", "goodput (req/s meeting every SLO)", "req/s",
        "requests meeting every SLO / D", "failed requests count as misses", "higher",
    ),
    Metric(
        "slo_attainment", "SLO attainment", "attainment", "SLO attainment", "fraction",
        "requests meeting every SLO / measured requests", "failures in the denominator",
        "higher",
    ),
    Metric(
        "error_rate", "error rate", "errors", "error rate", "fraction", "failed / sent",
        "broken down by kind: http_<status>, timeout, connection, protocol, "
        "incomplete_stream, server_error",
        "lower",
    ),
)  # fmt: skip

DISTRIBUTION_NAMES: tuple[str, ...] = tuple(m.key for m in DISTRIBUTIONS)
#: Distributions of samples taken per token or chunk: many to a request and not independent,
#: so no percentile interval is given for them.
NOT_PER_REQUEST: frozenset[str] = frozenset({"itl_ms", "inter_chunk_ms"})
BY_KEY: dict[str, Metric] = {m.key: m for m in (*DISTRIBUTIONS, *SUMMARY)}


def metric(key: str) -> Metric:
    """The catalogue entry of ``key`` (a KeyError names a metric nobody defined)."""
    return BY_KEY[key]
