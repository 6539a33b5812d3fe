"""The llama-server build says how far it is (ninja's [n/N]) and where its log is; no build runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from infermeter.cli import engine as engine_cli
from infermeter.engines.llama_cpp import CPU_FLAGS, build_log_path, parse_build_step


def test_ninja_and_make_steps_are_read() -> None:
    line = "[12/206] Building CXX object common/CMakeFiles/common.dir/arg.cpp.o\n"
    assert parse_build_step(line) == (
        12,
        206,
        "Building CXX object common/CMakeFiles/common.dir/arg.cpp.o",
    )
    assert parse_build_step("[206/206] Linking CXX executable bin/llama-server") == (
        206,
        206,
        "Linking CXX executable bin/llama-server",
    )
    assert parse_build_step("[ 42%] Built target ggml-base\n") == (
        42,
        100,
        "Built target ggml-base",
    )
    assert parse_build_step("-- Configuring done (1.2s)") is None
    assert parse_build_step("warning: unused variable [-Wunused-variable]") is None
    assert parse_build_step("") is None


def test_build_log_sits_beside_the_cached_binary(tmp_path: Path) -> None:
    log = build_log_path(tmp_path, CPU_FLAGS)
    assert log.name == "build.log"
    assert log.parent == engine_cli.cached_binary(tmp_path, CPU_FLAGS).parent.parent


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_step_lines_off_a_terminal_are_few_and_say_n_of_total() -> None:
    lines: list[str] = []
    clock = Clock()
    step = engine_cli.StepLines(lines.append, every_s=5.0, clock=clock)
    step(0, 0, "fetching source")
    step(0, 0, "configuring")
    for n in range(1, 207):
        clock.t = n * 0.5  # a step every half second: 103 s in all
        step(n, 206, f"Building CXX object obj{n}.o")
    assert any("[1/206]" in x for x in lines), lines
    assert lines[-1].startswith("llama-server build: [206/206]"), lines
    assert "configuring" in " ".join(lines)
    # at most one line per 5 s of build (plus the phase changes and the last step)
    steps = [x for x in lines if "/206]" in x]
    assert 103 / 5 <= len(steps) <= 103 / 5 + 3, steps
    assert all("Building CXX object" in x or "206/206" in x for x in steps)
    assert "1m 43s" in lines[-1] or "103 s" in lines[-1], lines[-1]


def test_the_build_message_names_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, object] = {}

    def fake_build(cache_dir: Path, **kw: object) -> Path:
        seen.update(kw)
        progress = kw["progress"]
        progress(0, 0, "configuring")  # type: ignore[operator]
        progress(3, 206, "Building CXX object x.o")  # type: ignore[operator]
        return tmp_path / "llama-server"

    monkeypatch.setattr(engine_cli, "build_llama_server", fake_build)
    assert engine_cli.ensure_server_binary(tmp_path) == tmp_path / "llama-server"
    err = capsys.readouterr().err
    assert str(build_log_path(tmp_path, CPU_FLAGS)) in err.replace("\n", ""), err
    assert "[3/206]" in err, err  # stderr is not a terminal here: plain lines
