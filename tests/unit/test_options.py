"""Each of bench's options is declared twice (its flag, the config field it fills): the two
must name the same thing with the same default, or a flag silently stops doing anything."""

from __future__ import annotations

import inspect
from typing import Any

from infermeter.cli.bench import CLI_ONLY, RENAMED, bench
from infermeter.config import BenchConfig

#: Flags whose text the CLI turns into the field's value: flag -> (field, the flag's default
#: as the field holds it).
CONVERTED: dict[str, tuple[str, Any]] = {
    "header": ("headers", {}),
    "no_telemetry": ("telemetry", True),
    "workers": ("workers", None),  # "auto"
    "percentiles": ("percentiles", ()),
    "extra_body": ("extra_body", {}),
    # left out unless given: a dataset's own answer lengths, a conversation's own turns
    "output_tokens": ("output_tokens", "128"),
    "turns": ("turns", "4"),
}


def _flag_defaults() -> dict[str, Any]:
    out = {}
    for name, param in inspect.signature(bench).parameters.items():
        default = param.default
        out[name] = getattr(default, "default", default)
    return out


def test_every_flag_fills_a_field_with_the_same_default() -> None:
    fields = BenchConfig.model_fields
    for flag, default in _flag_defaults().items():
        if flag in CLI_ONLY:
            continue
        if flag in CONVERTED:
            field, held = CONVERTED[flag]
            assert field in fields, flag
            assert fields[field].get_default(call_default_factory=True) == held, flag
            continue
        field = RENAMED.get(flag, flag)
        assert field in fields, f"--{flag.replace('_', '-')} fills no config field"
        if default is ...:  # required
            assert fields[field].is_required(), flag
            continue
        want = fields[field].get_default(call_default_factory=True)
        got = default if type(want) is not str or default is None else str(default)
        assert got == want, (flag, default, want)


def test_every_field_but_the_librarys_own_has_a_flag() -> None:
    flags = set(_flag_defaults())
    reached = {RENAMED.get(f, f) for f in flags} | {f for f, _ in CONVERTED.values()}
    # Fields only the Python API sets: the prompt pool bound.
    library_only = {"prompt_pool"}
    missing = set(BenchConfig.model_fields) - reached - library_only
    assert not missing, missing
