"""Every ``>>>`` example in the package runs and gives what it shows (examples that need a
server or files are written as plain example blocks instead)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import infermeter

PACKAGE = Path(infermeter.__file__).parent
WITH_DOCTESTS = sorted(
    ".".join(("infermeter", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
        ".__init__"
    )
    for p in PACKAGE.rglob("*.py")
    if ">>> " in p.read_text(encoding="utf-8")
)


def test_some_examples_are_checked() -> None:
    assert len(WITH_DOCTESTS) >= 3, WITH_DOCTESTS


@pytest.mark.parametrize("name", WITH_DOCTESTS)
def test_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
