"""One entry per metric drives the computation and every renderer."""

from __future__ import annotations

from infermeter.metrics import compute_run_metrics
from infermeter.metrics.catalogue import DISTRIBUTION_NAMES, DISTRIBUTIONS, SUMMARY, metric
from infermeter.records.schema import RequestRecord
from infermeter.report.compare import METRICS
from infermeter.report.formats import to_markdown
from infermeter.report.labels import DEFINITIONS
from infermeter.results.build import build_results

MS = 1_000_000


def _run(reasoning: bool = True) -> dict:
    """Four requests of five one-token chunks; with ``reasoning`` the first two are thinking."""
    recs = [
        RequestRecord(
            id=i, ok=True, t_sched_ns=0, t_send_ns=i * MS, t_first_ns=(i + 20) * MS,
            t_last_ns=(i + 40) * MS, t_end_ns=(i + 41) * MS,
            chunk_ns=[(i + 20 + 5 * k) * MS for k in range(5)], chunk_tokens=[1] * 5,
            n_in=64, n_in_source="server", n_out=5, n_out_source="server",
            n_reason=2 if reasoning else 0, answer_chunk=2 if reasoning else 0,
        )
        for i in range(4)
    ]  # fmt: skip
    meta = {"config": {"concurrency": 2}, "workload": {"kind": "synthetic"}}
    return build_results(meta, compute_run_metrics(recs), {"client": []})


def test_every_distribution_is_computed_in_catalogue_order() -> None:
    res = _run()
    assert list(res["distributions"]) == list(DISTRIBUTION_NAMES)
    assert all(res["distributions"][name]["count"] for name in DISTRIBUTION_NAMES)
    assert set(SUMMARY_KEYS := [m.key for m in SUMMARY]) == set(res["summary"]), SUMMARY_KEYS
    d = res["distributions"]
    assert d["ttfa_ms"]["p50"] == 30.0 and d["reasoning_ms"]["p50"] == 10.0
    assert d["reasoning_tokens"]["mean"] == 2.0 and d["ttft_ms"]["p50"] == 20.0


def test_reasoning_is_reported_only_where_a_request_reasoned() -> None:
    d = _run(reasoning=False)["distributions"]
    assert d["ttfa_ms"]["count"] == d["reasoning_ms"]["count"] == 0
    assert d["reasoning_tokens"]["count"] == 0 and d["ttft_ms"]["count"] == 4


def test_the_renderers_use_the_catalogues_words() -> None:
    res = _run()
    md = to_markdown(res)
    shown = [m for m in SUMMARY if res["summary"][m.key] is not None]  # None rows are left out
    for m in (*DISTRIBUTIONS, *shown):
        assert f"| {m.label} |" in md, m.key
    for m in (*DISTRIBUTIONS, *SUMMARY):
        if m.key in DEFINITIONS:  # the glossary's metrics
            assert DEFINITIONS[m.key] == (m.name, m.formula, m.meaning)
    assert {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "goodput_rps"} <= set(DEFINITIONS)


def test_compare_colours_ratios_the_catalogues_way() -> None:
    for row in METRICS:
        key = row.key.rsplit("_p", 1)[0] if row.key.rsplit("_p", 1)[-1].isdigit() else row.key
        try:
            m = metric(key)
        except KeyError:
            continue  # not a catalogued metric (MBU, cost, the cached share)
        assert (row.better, row.unit) == (m.better, m.unit), row.key
