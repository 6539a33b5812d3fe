"""Where no batch size had enough prompts beside its decodes for a prompt cost of its own,
the fit draws one line through the batches it saw (transformers serve on a CPU: a prompt's
step grew ~28 ms for each decode beside it), a rising one carried to the sequence limit, a
falling one held where last seen, and a flat truth stays flat."""

from __future__ import annotations

import numpy as np
import pytest
from test_predict import KNOWN, _observed, engine

from infermeter.predict.fit import MIN_MIXED, Limits, fit_engine
from infermeter.predict.model import EngineModel, PrefillPoint
from infermeter.predict.simulate import SimLoad, simulate

LIMITS = Limits("continuous", 4, "given", 2048, "given", None)


def _fit(truth: EngineModel) -> EngineModel:
    def load(c: int) -> SimLoad:
        # answers of mixed lengths, so that prompts land beside running decodes
        n_out = np.random.default_rng(c).integers(10, 40, 12)
        return SimLoad(np.full(12, 200), n_out, concurrency=c)

    runs = [_observed(simulate(truth, load(c)), f"c{c}") for c in (1, 2, 3, 4)]
    return fit_engine(runs, LIMITS, engine="test", model="m", hardware=None)


def _truth(points: list[PrefillPoint]) -> EngineModel:
    base = engine(KNOWN, floor=8.0, per_token=0.05, overhead=3.0, max_seqs=4)
    return base.model_copy(update={"prefill": points})


def test_a_prompt_cost_growing_with_the_batch_is_followed() -> None:
    # 0.03 ms a token more for each decode beside the prompt, up to the limit of 4 sequences
    truth = _truth([PrefillPoint(batch=1, ms_per_token=0.05, samples=1),
                    PrefillPoint(batch=4, ms_per_token=0.14, samples=1)])  # fmt: skip
    fitted = _fit(truth)
    beside = [p for p in fitted.prefill if p.batch > 0]
    # too few prompts at any one batch size for a cost of its own, enough for a line
    assert all(p.samples < MIN_MIXED for p in beside)
    assert fitted.quality.mixed_gaps >= MIN_MIXED
    # prompts were seen beside 1 to 3 decodes; the rising line goes on to the limit, 4
    assert [p.batch for p in beside] == [1, 3, 4]
    assert [p.ms_per_token for p in beside] == pytest.approx([0.05, 0.11, 0.14], rel=0.02)


def test_a_falling_prompt_cost_is_held_where_it_was_last_seen() -> None:
    # a GPU's prompt rides on the decodes' weight reads: cheaper beside more of them, down
    # to a floor the line cannot show, so it is not carried past the sizes seen
    truth = _truth([PrefillPoint(batch=1, ms_per_token=0.11, samples=1),
                    PrefillPoint(batch=4, ms_per_token=0.02, samples=1)])  # fmt: skip
    fitted = _fit(truth)
    beside = [p for p in fitted.prefill if p.batch > 0]
    assert [p.batch for p in beside] == [1, 3]
    assert [p.ms_per_token for p in beside] == pytest.approx([0.11, 0.05], rel=0.05)


def test_a_flat_prompt_cost_stays_flat() -> None:
    fitted = _fit(_truth([]))
    beside = [p for p in fitted.prefill if p.batch > 0]
    assert [p.ms_per_token for p in beside] == pytest.approx([0.05, 0.05], rel=0.02)


def test_fit_prints_the_prompt_cost_by_batch() -> None:
    from infermeter.report.predict import _prompt_cost

    flat = _truth([])
    assert _prompt_cost(flat) == "50.000 µs"
    few = _truth([PrefillPoint(batch=0, ms_per_token=9.08, samples=27),
                  PrefillPoint(batch=3, ms_per_token=9.46, samples=6)])  # fmt: skip
    assert _prompt_cost(few) == "50.000 µs pooled; by decodes beside it: 0 → 9,080, 3 → 9,460 µs"
    many = _truth(
        [PrefillPoint(batch=b, ms_per_token=0.04 + b / 1000, samples=30) for b in range(6)]
    )
    assert (
        _prompt_cost(many)
        == "50.000 µs pooled; 40.0-45.0 µs by the decodes beside it (6 sizes, 0-5)"
    )


def test_a_prompt_to_an_idle_engine_costs_what_those_requests_took() -> None:
    # transformers serve on a GPU: a prompt alone rides in the host's time for the step
    # (0.005 ms a token), one beside decodes costs 0.08-0.14; one prompt length, no server
    # times, so batch 0 cannot split cost from overhead and kept the pooled cost, which
    # put a lone request's first token at 2.5 times what it took
    truth = _truth([PrefillPoint(batch=0, ms_per_token=0.005, samples=1),
                    PrefillPoint(batch=1, ms_per_token=0.08, samples=1),
                    PrefillPoint(batch=4, ms_per_token=0.14, samples=1)])  # fmt: skip
    fitted = _fit(truth)
    alone = SimLoad(np.full(6, 200), np.full(6, 20), concurrency=1)
    want = simulate(truth, alone)
    got = simulate(fitted, alone)
    ttft = lambda r: np.median(r.t_first() - r.t_send)  # noqa: E731
    assert ttft(got) == pytest.approx(ttft(want), rel=0.02)
    # the prompt beside decodes keeps its own cost
    beside = [p for p in fitted.prefill if p.batch > 0]
    assert beside[0].ms_per_token == pytest.approx(0.08, rel=0.05)
