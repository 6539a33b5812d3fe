"""The scheduler limits a fit assumes where the runs do not tell them: each known engine's own
defaults, and an unknown engine's stated as a guess with the flag that replaces it."""

from __future__ import annotations

import pytest
from test_predict import KNOWN, _observed, closed, engine

from infermeter.predict.simulate import simulate
from infermeter.run.fit import _limits


@pytest.fixture(scope="module")
def runs():
    truth = engine(KNOWN, floor=8.0, per_token=0.16, overhead=5.0, max_seqs=4)
    return [_observed(simulate(truth, closed(40, 20, 12, 3)), "c3")]


def test_each_known_engine_gets_its_own_step_budget(runs) -> None:
    llama = _limits("llama.cpp", [{"slots": 4, "ctx_per_slot": 1024}], runs, None, None)
    assert (llama.scheduler, llama.max_seqs, llama.token_budget) == ("slots", 4, 2048)
    assert llama.ctx_per_seq == 1024
    served = _limits("transformers-serve", [{}], runs, None, None)
    assert (served.scheduler, served.token_budget) == ("continuous", 8192)
    assert served.token_budget_source == "assumed: the engine's default (8192)"
    # no server told its batch limit: the most requests in flight, said to be a lower bound
    assert served.max_seqs == 3 and "lower bound" in served.max_seqs_source


def test_an_unknown_engine_says_its_budget_is_a_guess(runs) -> None:
    limits = _limits("unknown", [{}], runs, None, None)
    assert limits.token_budget == 2048
    assert "vLLM's default" in limits.token_budget_source
    assert "--token-budget" in limits.token_budget_source
    given = _limits("unknown", [{}], runs, 6, 512)
    assert (given.max_seqs, given.token_budget) == (6, 512)
    assert given.token_budget_source == "given (--token-budget)"


def test_a_server_that_says_zero_slots_tells_no_limit(runs) -> None:
    # the ground-truth emulator answers /props with total_slots 0 (no fixed number): the fit
    # infers the limit from the runs instead of taking 0 (an engine model needs at least 1)
    limits = _limits("llama.cpp", [{"slots": 0, "ctx_per_slot": 1024}], runs, None, None)
    assert limits.max_seqs == 3 and "lower bound" in limits.max_seqs_source
