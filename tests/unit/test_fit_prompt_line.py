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


def _idle_truth() -> EngineModel:
    # transformers serve on a GPU: a prompt alone rides in the host's time for the step
    # (0.005 ms a token), one beside decodes costs 0.08-0.14
    return _truth([PrefillPoint(batch=0, ms_per_token=0.005, samples=1),
                   PrefillPoint(batch=1, ms_per_token=0.08, samples=1),
                   PrefillPoint(batch=4, ms_per_token=0.14, samples=1)])  # fmt: skip


def _lone_ttft(model: EngineModel, n_in: int) -> float:
    res = simulate(model, SimLoad(np.full(6, n_in), np.full(6, 20), concurrency=1))
    return float(np.median(res.t_first() - res.t_send))


def test_a_prompt_to_an_idle_engine_costs_what_those_requests_took() -> None:
    # one prompt length and no server times: batch 0 cannot split the prompt's cost from
    # the time around it, and the pooled cost of prompts beside decodes would put a lone
    # request's first token at 2.5 times what it took, so it takes those requests' own
    truth = _idle_truth()
    fitted = _fit(truth)
    assert _lone_ttft(fitted, 200) == pytest.approx(_lone_ttft(truth, 200), rel=0.02)
    # the prompt beside decodes keeps its own cost
    beside = [p for p in fitted.prefill if p.batch > 0]
    assert beside[0].ms_per_token == pytest.approx(0.08, rel=0.05)
    # and other lengths sent to an idle engine are said to extrapolate
    assert any("sent to an idle engine" in n for n in fitted.quality.notes)


def test_idle_prompts_of_two_lengths_split_cost_from_overhead() -> None:
    truth = _idle_truth()

    def load(c: int) -> SimLoad:
        n_out = np.random.default_rng(c).integers(10, 40, 12)
        return SimLoad(np.tile([100, 400], 6), n_out, concurrency=c)

    runs = [_observed(simulate(truth, load(c)), f"c{c}") for c in (1, 2, 3, 4)]
    fitted = fit_engine(runs, LIMITS, engine="test", model="m", hardware=None)
    # a length neither run sent: the line through 100 and 400 carries the overhead apart
    assert _lone_ttft(fitted, 800) == pytest.approx(_lone_ttft(truth, 800), rel=0.03)
    assert not any("sent to an idle engine" in n for n in fitted.quality.notes)


def test_a_few_tokens_of_jitter_draw_no_line_through_lone_prompts() -> None:
    # a chat template makes 509-514-token prompts of one 512: no slope is drawn through them
    # (it would be noise), the cost stays folded with the time around it, and fit says so
    truth = _truth([])
    load = SimLoad(np.tile([200, 203], 6), np.full(12, 20), concurrency=1)
    fitted = fit_engine(
        [_observed(simulate(truth, load), "c1")], LIMITS, engine="test", model="m", hardware=None
    )
    assert _lone_ttft(fitted, 200) == pytest.approx(_lone_ttft(truth, 200), rel=0.02)
    assert any("could not be separated" in n for n in fitted.quality.notes)
