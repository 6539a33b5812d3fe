"""vLLM tells its per-request queue and prefill times only as histograms: over a run in which
every request had the server to itself, their means stand for each request's own, and split
TTFT into the engine's part and the time around it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from test_predict import KNOWN, _observed, closed, engine

from infermeter.predict.fit import Limits, fit_engine
from infermeter.predict.simulate import simulate
from infermeter.run.fit import _results as read_results
from infermeter.run.fit import _told_by_histograms


def _results(path: Path, server: dict[str, float]) -> dict[str, Any] | None:
    """results.json with this server telemetry, written and read back as the fit reads it."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_bytes(orjson.dumps({"telemetry": {"server": server}}))
    return read_results(path)


def test_a_run_alone_on_the_server_is_told_by_its_histograms(tmp_path: Path) -> None:
    # overhead 5 ms around a 40 ms prompt step: the fit can tell them apart only if told
    truth = engine(KNOWN, floor=8.0, per_token=0.16, overhead=5.0, max_seqs=4)
    alone = _observed(simulate(truth, closed(200, 20, 12, 1)), "c1")
    ttft = alone.t_first - alone.t_send
    engine_ms = float(np.mean(ttft)) - 5.0  # what vLLM's queue + prefill means would say
    run = _told_by_histograms(
        alone,
        _results(tmp_path / "c1", {"prefill_mean_ms": engine_ms - 0.5, "queue_mean_ms": 0.5}),
    )
    assert run.server_prompt_ms is not None and run.server_prompt_n is not None
    assert run.server_prompt_ms.tolist() == pytest.approx([engine_ms] * alone.t_send.size)
    assert run.server_prompt_n.tolist() == alone.n_in.tolist()
    limits = Limits("continuous", 4, "given", 2048, "given", None)
    told = fit_engine([run], limits, engine="vllm", model="m", hardware=None)
    untold = fit_engine([alone], limits, engine="vllm", model="m", hardware=None)
    assert told.ttft_overhead_ms == pytest.approx(5.0, abs=0.3)
    assert untold.ttft_overhead_ms != pytest.approx(5.0, abs=0.3)
    # and the model says where its split came from
    assert told.quality.told_requests == alone.t_send.size
    assert untold.quality.told_requests == 0


def test_histograms_are_not_taken_for_requests_they_do_not_describe(tmp_path: Path) -> None:
    truth = engine(KNOWN, floor=8.0, per_token=0.16, overhead=5.0, max_seqs=4)
    alone = _observed(simulate(truth, closed(200, 20, 12, 1)), "c1")
    shared = _observed(simulate(truth, closed(200, 20, 12, 3)), "c3")
    means = {"prefill_mean_ms": 40.0, "queue_mean_ms": 0.0}
    # requests that overlapped: a mean over them is no request's own
    assert _told_by_histograms(shared, _results(tmp_path / "c3", means)) is shared
    # the prefix cache served part of the prompts: their prefill time is not the prompt's
    cached = {**means, "prompt_tokens_cached": 512.0}
    assert _told_by_histograms(alone, _results(tmp_path / "cached", cached)) is alone
    # no means in the results (a server that keeps no such histograms), or no results
    assert _told_by_histograms(alone, _results(tmp_path / "none", {})) is alone
    assert _told_by_histograms(alone, read_results(tmp_path / "missing")) is alone
