"""Which strings count as secrets, and the masking, for the benchmark and the proxy."""

from __future__ import annotations

import base64

from infermeter.clients.secrets import redact, secret_forms
from infermeter.config import BenchConfig


def test_every_echoable_form_of_a_credential_is_a_secret() -> None:
    basic = "Basic " + base64.b64encode(b"alice:s3cret-pw").decode()
    forms = secret_forms(["Bearer sk-abc123", basic, "  plain-key  ", ""])
    assert {"Bearer sk-abc123", "sk-abc123", "alice:s3cret-pw", "s3cret-pw", "plain-key"} <= set(
        forms
    )
    assert "" not in forms and list(forms) == sorted(forms, key=len, reverse=True)
    assert secret_forms(["Basic not-base64!"]) == ("Basic not-base64!", "not-base64!")


def test_masking_leaves_no_part_of_a_longer_secret() -> None:
    text = "denied: Bearer sk-abc123 (user alice:s3cret-pw)"
    out = redact(text, ("sk-abc123", "Bearer sk-abc123", "s3cret-pw", "alice:s3cret-pw"))
    assert out == "denied: *** (user ***)"


def test_bench_masks_a_header_token_and_basic_passwords() -> None:
    basic = "Basic " + base64.b64encode(b"bob:hunter22").decode()
    cfg = BenchConfig(
        url="http://127.0.0.1:9",
        concurrency=1,
        num_requests=1,
        headers={"Authorization": "Bearer sk-hdr-1", "X-Proxy-Auth": basic},
    )
    assert {"sk-hdr-1", "hunter22", "bob:hunter22"} <= set(cfg.secrets)
