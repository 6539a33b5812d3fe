import pytest

from infermeter.errors import UsageError
from infermeter.metrics.slo import SLOTerm, parse_slo


def test_parse_plain_and_percentile_terms() -> None:
    slo = parse_slo("ttft_ms=200, tpot_ms=50,p95_e2e_ms=4000,p99.9_ttft_ms=900")
    assert slo.terms == (
        SLOTerm("ttft_ms", 200.0),
        SLOTerm("tpot_ms", 50.0),
        SLOTerm("e2e_ms", 4000.0, 95.0),
        SLOTerm("ttft_ms", 900.0, 99.9),
    )
    assert slo.terms[2].name == "p95_e2e_ms"


@pytest.mark.parametrize(
    "bad",
    ["ttft=200", "ttft_ms", "ttft_ms=abc", "ttft_ms=-1", "p100_ttft_ms=1", "latency_ms=3", ""],
)
def test_bad_terms_give_one_line(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_slo(bad)
    assert "\n" not in str(err.value)
