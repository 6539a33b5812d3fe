"""Credentials kept out of everything written: records, logs, reports, /metrics.

One owner for the benchmark and the proxy alike: which strings count as a secret, and how a
text is masked of them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence


def secret_forms(values: Iterable[str]) -> tuple[str, ...]:
    """Every form in which a credential may come back in a server's error body, longest
    first: the value itself, the credentials of a ``Scheme credentials`` value (``Bearer
    sk-...``), and for HTTP Basic the decoded ``user:password`` and the password."""
    found: set[str] = set()
    for value in values:
        value = value.strip()
        scheme, _, cred = value.partition(" ")
        cred = cred.strip()
        found.update((value, cred))
        if scheme.lower() == "basic" and cred:
            try:
                decoded = base64.b64decode(cred, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue
            found.update((decoded, decoded.partition(":")[2]))
    found.discard("")
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret masked; longer ones first, so none is left half shown
    (a key that contains another)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text
