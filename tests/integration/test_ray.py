"""Workers as Ray actors on a local Ray cluster started here: same counts as one process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infermeter import BenchConfig, run_benchmark
from infermeter.engines.llama_server import free_port

pytestmark = pytest.mark.integration

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A one-node Ray cluster on loopback (token auth off: it is this test's own cluster)."""
    # The ray command sits beside this interpreter (a venv need not be on PATH).
    beside = Path(sys.executable).parent / "ray"
    cli = str(beside) if beside.exists() else shutil.which("ray")
    assert cli, "the ray command comes with the ray extra"
    port = free_port()
    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    subprocess.run(
        [
            cli,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([cli, "stop", "--force"], capture_output=True, timeout=120)
        if old is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old


def test_ray_workers_match_one_process(llama_server, ray_cluster: str, tmp_path: Path) -> None:
    common = dict(
        url=llama_server.url,
        concurrency=4,
        num_requests=12,
        input_tokens="40",
        output_tokens="20",
        seed=6,
    )
    one = run_benchmark(BenchConfig.build(**common, workers=1, out=tmp_path / "one"))
    on_ray = run_benchmark(
        BenchConfig.build(**common, workers=2, cluster=ray_cluster, out=tmp_path / "ray")
    )

    def counts(run):
        return (
            len(run.records),
            sum(r.ok for r in run.records),
            sum(r.n_out for r in run.records),
            sum(r.n_in or 0 for r in run.records),
        )

    assert counts(one) == counts(on_ray) == (12, 12, 240, 480)
    assert {r.worker for r in on_ray.records} == {0, 1}
    assert on_ray.results["client"]["workers"] == 2
    assert on_ray.results["schema_version"] == one.results["schema_version"]
    assert set(on_ray.results["summary"]) == set(one.results["summary"])
    assert not on_ray.status.get("worker_failures")
