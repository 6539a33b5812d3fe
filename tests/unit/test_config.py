import pytest

from infermeter.config import BenchConfig
from infermeter.errors import UsageError

BASE = {"url": "http://127.0.0.1:8000", "num_requests": 4}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "exactly one of --concurrency"),
        ({"concurrency": 2, "rate": 1.0}, "exactly one of --concurrency"),
        ({"concurrency": 0}, "--concurrency"),
        ({"rate": -1.0}, "--rate"),
        ({"concurrency": 2, "max_concurrency": 3}, "--max-concurrency"),
        ({"concurrency": 2, "input_tokens": "zero"}, "--input-tokens"),
        ({"concurrency": 2, "output_tokens": "uniform:9:1"}, "--output-tokens"),
        ({"concurrency": 2, "slo": "ttft=3"}, "--slo"),
        ({"concurrency": 2, "duration_s": -5.0}, "--duration"),
        ({"concurrency": 2, "shared_prefix_tokens": 600, "input_tokens": "512"}, "--shared-prefix"),
        ({"concurrency": 2, "url": "localhost:8000"}, "--url"),
        ({"rate": 2.0, "ramp_up_s": 5.0}, "--ramp-up"),
        ({"concurrency": 2, "ramp_up_s": -1.0}, "--ramp-up"),
    ],
)
def test_impossible_configs_name_the_flag(extra: dict, message: str) -> None:
    with pytest.raises(UsageError) as err:
        BenchConfig.build(**{**BASE, **extra})
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == 2


def test_secrets_are_not_in_the_public_dict() -> None:
    cfg = BenchConfig.build(
        **BASE, concurrency=1, api_key="sk-secret-123", headers={"X-Token": "hdr-secret"}
    )
    text = str(cfg.public_dict())
    assert "sk-secret-123" not in text and "hdr-secret" not in text
    assert cfg.public_dict()["api_key_set"] is True
    assert set(cfg.secrets) == {"sk-secret-123", "hdr-secret"}


def test_prompt_pool_size_follows_what_ends_the_run() -> None:
    def pool(**kw: object) -> int:
        return BenchConfig.build(url="http://127.0.0.1:8000", **kw).pool_size()

    assert pool(concurrency=2, num_requests=5000) == 5000  # one distinct prompt per request
    assert pool(concurrency=2, num_requests=100_000, duration_s=30.0) == 1000  # not 100,000
    assert pool(concurrency=2, num_requests=10, duration_s=30.0) == 10
    assert pool(concurrency=2, duration_s=30.0) == 1000
