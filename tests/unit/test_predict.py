"""The simulator against hand-worked schedules, the fit against an engine whose every
constant is known (the simulator's own output), stability, the planner and the model file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infermeter.errors import UsageError
from infermeter.load.arrivals import schedule
from infermeter.predict.fit import JoinSamples, Limits, ObservedRun, fit_engine, join_samples
from infermeter.predict.hardware import carry
from infermeter.predict.model import (
    EngineModel,
    FitQuality,
    FitRange,
    SchedulerKind,
    StepPoint,
    read_engine_model,
    write_engine_model,
)
from infermeter.predict.simulate import Fleet, SimLoad, SimResult, simulate
from infermeter.predict.summary import Term, meets, summarize
from infermeter.run.fit import _join_cut, _tune_admit
from infermeter.run.plan import PlanResult
from infermeter.theory import get_hardware


def engine(
    table: dict[int, float],
    *,
    floor: float = 4.0,
    per_token: float = 0.1,
    overhead: float = 0.0,
    tail: float = 0.0,
    max_seqs: int = 8,
    budget: int = 2048,
    admit: float = 0.0,
    hardware: str | None = None,
    scheduler: SchedulerKind = "continuous",
    ubatch: float = 0.0,
) -> EngineModel:
    return EngineModel(
        engine="test",
        model="m",
        hardware=hardware,
        scheduler=scheduler,
        ubatch_ms=ubatch,
        max_seqs=max_seqs,
        max_seqs_source="given",
        token_budget=budget,
        token_budget_source="given",
        decode=[StepPoint(batch=b, step_ms=t, ctx_tokens=0, samples=100) for b, t in table.items()],
        ctx_ms_per_token=0.0,
        prefill_ms_per_token=per_token,
        step_floor_ms=floor,
        ttft_overhead_ms=overhead,
        admit_ms=admit,
        tail_ms=tail,
        client_gap_ms=0.0,
        fitted_on=FitRange(
            runs=["r"],
            input_tokens_min=1,
            input_tokens_max=10_000,
            output_tokens_min=1,
            output_tokens_max=10_000,
            batch_max=max(table),
        ),
        quality=FitQuality(decode_gaps=1, mixed_gaps=0, solo_requests=0, decode_gap_mad=0.0),
    )


def closed(n_in: int, n_out: int, n: int, c: int) -> SimLoad:
    return SimLoad(np.full(n, n_in), np.full(n, n_out), concurrency=c)


def test_one_stream_steps_exactly() -> None:
    # Prompt alone: floor 4 + 100 × 0.1 = 14 ms; then one token per 10 ms decode step.
    res = simulate(engine({1: 10.0}), closed(100, 5, 2, 1))
    assert res.t_first().tolist() == pytest.approx([14.0, 68.0])
    assert res.token_ms(0).tolist() == pytest.approx([14.0, 24.0, 34.0, 44.0, 54.0])
    assert res.t_send.tolist() == pytest.approx([0.0, 54.0])  # the next sent as one ends
    assert res.t_end.tolist() == pytest.approx([54.0, 108.0])


def test_a_full_engine_queues_the_next_request() -> None:
    res = simulate(engine({1: 10.0}, max_seqs=1), closed(100, 5, 2, 2))
    # both sent at 0; the second is admitted only when the first's sequence frees
    assert res.t_send.tolist() == [0.0, 0.0]
    assert res.t_admit.tolist() == pytest.approx([0.0, 54.0])
    assert res.t_first().tolist() == pytest.approx([14.0, 68.0])


def test_a_long_prompt_is_chunked_by_the_step_budget() -> None:
    res = simulate(engine({1: 10.0}, budget=64), closed(100, 2, 1, 1))
    # 64 tokens (4 + 6.4 ms), then 36 (4 + 3.6 ms): the first token after both
    assert res.t_first()[0] == pytest.approx(18.0)


def test_a_prompt_joins_the_running_batch_between_steps() -> None:
    load = SimLoad(np.array([10, 100]), np.array([10, 3]), due_ms=np.array([0.0, 27.0]))
    res = simulate(engine({1: 10.0, 2: 12.0}), load)
    # A: prompt 5 ms, tokens at 5, 15, 25, 35 ... B arrives at 27, mid-step: it waits for the
    # step ending at 35, then rides the next one with A's decode: 10 + 100 × 0.1 = 20 ms.
    assert res.t_admit[1] == pytest.approx(35.0)
    assert res.t_first()[1] == pytest.approx(55.0)
    assert 55.0 in res.token_ms(0).tolist()
    # then both decode together: steps of 12 ms
    assert res.token_ms(1).tolist() == pytest.approx([55.0, 67.0, 79.0])


def test_host_work_between_steps_lets_a_late_arrival_join() -> None:
    load = SimLoad(np.array([10, 100]), np.array([10, 3]), due_ms=np.array([0.0, 26.0]))
    res = simulate(engine({1: 10.0, 2: 12.0}, admit=2.0), load)
    # tokens at 5, 15, 25; the step after 25 starts only at 27 (the last 2 ms of it ran as
    # host work), so B, arriving at 26, joins it
    assert res.t_admit[1] == pytest.approx(27.0)
    assert res.t_first()[1] == pytest.approx(25.0 + 20.0)


def test_an_idle_engine_takes_its_share_of_requests_sent_together() -> None:
    # Three prompts of 100 sent at 0 to an idle engine. Taking the first alone, its step
    # is 4 + 10 = 14 ms and the other two ride the next: 10 + 200 × 0.1 = 30 ms with its
    # decode. Taking the whole wave: one step of 4 + 300 × 0.1 = 34 ms, begun at 0 all the
    # same (the moment it waits for the others is spent, not added).
    load = closed(100, 3, 3, 3)
    alone = simulate(engine({1: 10.0, 2: 12.0, 3: 14.0}), load)
    assert alone.t_first().tolist() == pytest.approx([14.0, 44.0, 44.0])
    whole = simulate(
        engine({1: 10.0, 2: 12.0, 3: 14.0}).model_copy(update={"wake_share": 1.0}), load
    )
    assert whole.t_first().tolist() == pytest.approx([34.0, 34.0, 34.0])
    # half of the two beyond the first: one more joins the first step (4 + 200 × 0.1)
    half = simulate(
        engine({1: 10.0, 2: 12.0, 3: 14.0}).model_copy(update={"wake_share": 0.5}), load
    )
    assert half.t_first().tolist() == pytest.approx([24.0, 24.0, 46.0])


def test_the_overhead_is_outside_the_steps() -> None:
    res = simulate(engine({1: 10.0}, overhead=3.0, tail=0.5), closed(100, 2, 2, 1))
    assert res.t_first()[0] == pytest.approx(17.0)
    assert res.t_end[0] == pytest.approx(27.5)
    assert res.t_send[1] == pytest.approx(27.5)


def _observed(res: SimResult, label: str) -> ObservedRun:
    first = res.t_first()
    return ObservedRun(
        label=label,
        t_sched=res.t_sched,
        t_send=res.t_send,
        t_first=first,
        t_last=res.t_last,
        t_end=res.t_end,
        n_in=res.n_in,
        n_out=res.n_out,
        token_ms=[res.token_ms(i) for i in range(res.n_in.size)],
    )


KNOWN = {1: 10.0, 2: 12.0, 3: 14.5, 4: 16.0}


def test_the_fit_recovers_a_known_engine() -> None:
    truth = engine(KNOWN, floor=8.0, per_token=0.05, overhead=3.0, tail=0.2, max_seqs=4)
    runs = [_observed(simulate(truth, closed(200, 50, 60, c)), f"c{c}") for c in (1, 2, 3, 4)]
    limits = Limits("continuous", 4, "given", 2048, "given", None)
    fitted = fit_engine(runs, limits, engine="test", model="m", hardware=None)
    got = {p.batch: p.step_ms for p in fitted.decode}
    for b, step in KNOWN.items():
        assert got[b] == pytest.approx(step, rel=0.01)
    assert fitted.step_floor_ms == pytest.approx(8.0, rel=0.01)
    assert fitted.prefill_ms_per_token == pytest.approx(0.05, rel=0.05)
    assert fitted.ttft_overhead_ms == pytest.approx(3.0, abs=0.2)
    assert fitted.tail_ms == pytest.approx(0.2, abs=1e-6)
    assert fitted.fitted_on.batch_max == 4
    # and the fitted engine predicts a point it was not fitted on
    held = closed(200, 50, 60, 3)
    a, b = summarize(simulate(truth, held)), summarize(simulate(fitted, held))
    assert b.value("tpot_ms", 50) == pytest.approx(a.value("tpot_ms", 50), rel=0.02)
    assert b.value("ttft_ms", 50) == pytest.approx(a.value("ttft_ms", 50), rel=0.05)


def test_prompts_served_from_the_cache_are_no_evidence_of_a_prompts_cost() -> None:
    # In the run of one stream two of three requests sent their prompt again: the server
    # computed one token of it and answered at once. Fitted on whole, the time around a
    # prompt would fall to nothing.
    truth = engine(KNOWN, floor=8.0, per_token=0.05, overhead=3.0, max_seqs=4)
    runs = [_observed(simulate(truth, closed(200, 50, 60, c)), f"c{c}") for c in (1, 2, 3, 4)]
    one = runs[0]
    hit = np.arange(one.n_in.size) % 3 != 0
    runs[0] = replace(one, n_cached=np.where(hit, one.n_in - 1.0, 3.0),
                      t_first=np.where(hit, one.t_send + 1.0, one.t_first))  # fmt: skip
    limits = Limits("continuous", 4, "given", 2048, "given", None)
    fitted = fit_engine(runs, limits, engine="test", model="m", hardware=None)
    assert fitted.ttft_overhead_ms == pytest.approx(3.0, abs=0.3)
    assert fitted.prefill_ms_per_token == pytest.approx(0.05, rel=0.1)
    assert any(n.startswith("40 of 240 requests") and "prompt cache" in n
               for n in fitted.quality.notes)  # fmt: skip


def test_a_first_token_late_in_its_steps_burst_is_its_own_steps() -> None:
    # A step's tokens go out one stream after another, 4 ms apart: at batch 4 a new
    # request's first token can land 12 ms after another stream's token of the same step,
    # past a quarter of its ~16 ms gap. It is still that step's prompt, not the next one's
    # (which carries none): no batch size's prompt cost falls to 0.
    truth = engine(KNOWN, floor=8.0, per_token=0.05, max_seqs=4)
    truth = truth.model_copy(update={"emit_ms_per_seq": 4.0})
    runs = [_observed(simulate(truth, closed(100, 40, 200, c)), f"c{c}") for c in (1, 2, 4)]
    limits = Limits("continuous", 4, "given", 2048, "given", None)
    fitted = fit_engine(runs, limits, engine="test", model="m", hardware=None)
    costs = {p.batch: p.ms_per_token for p in fitted.prefill}
    assert len(costs) >= 3 and all(c == pytest.approx(0.05, rel=0.15) for c in costs.values())


def test_the_step_a_request_joined_shows_when_the_engine_stops_taking_arrivals() -> None:
    # In the simulation a request joins the next step if it is sent more than the time
    # outside the steps (3) less the window (1) before that step's tokens: 2 ms. One long
    # answer keeps the engine busy while short ones arrive at random; their records show
    # that cut.
    truth = engine(KNOWN, floor=8.0, per_token=0.05, overhead=3.0, max_seqs=8, admit=1.0)
    due = np.concatenate(([0.0], schedule(20.0, 400, None, seed=1) * 1000.0 + 1.0))
    outs = np.concatenate(([3000], np.full(400, 12)))
    run = _observed(simulate(truth, SimLoad(np.full(401, 50), outs, due_ms=due)), "poisson")
    joins = join_samples([run], apart_ms=3.0, max_seqs=8)
    assert joins.lead_ms.size > 200
    assert 20 < np.count_nonzero(joins.joined) < joins.lead_ms.size - 20
    cut = _join_cut(joins)
    assert cut is not None and cut == pytest.approx(2.0, abs=0.15)
    assert joins.misread(cut) == 0
    # the fit keeps only windows that read those requests as they were: the one of 1 ms
    blind = truth.model_copy(update={"admit_ms": 0.0})
    fitted = _tune_admit(blind, [], joins)
    assert fitted.admit_ms == pytest.approx(1.0, abs=0.15)
    assert fitted.admit_source is not None and "joined the next step" in fitted.admit_source
    # a client whose clock lags the tokens shows no one cut: none is taken
    rng = np.random.default_rng(0)
    lagged = JoinSamples(joins.lead_ms, rng.random(joins.lead_ms.size) < 0.5)
    assert _join_cut(lagged) is None


def test_the_fit_keeps_the_templates_shared_tokens_and_the_pre_flight_request() -> None:
    # The server's cached-token counts say what every prompt shares with a slot's (the
    # template's start): 3 here; the pre-flight request (a 24-token prompt, 3 of them
    # cached: 12.5 %, a slot by similarity) is kept for the simulation to replay first.
    truth = engine(KNOWN, floor=8.0, per_token=0.05, max_seqs=4)
    run = _observed(simulate(truth, closed(100, 20, 40, 2)), "c2")
    n = run.n_in.size
    probe = np.zeros(n, dtype=np.bool_)
    probe[0] = True
    n_in = run.n_in.copy()
    n_in[0] = 24
    cached = np.full(n, 3.0)
    cached[5] = np.nan  # not told
    run = replace(run, n_in=n_in, n_cached=cached, probe=probe)
    assert run.similar().tolist() == [True] + [False] * (n - 1)
    limits = Limits("slots", 4, "given", 2048, "given", None)
    fitted = fit_engine([run], limits, engine="llama.cpp", model="m", hardware=None)
    assert fitted.cached_prefix_tokens == 3
    assert fitted.probe_tokens == 24
    # runs from before the pre-flight request was kept: neither
    plain = fit_engine([_observed(simulate(truth, closed(100, 20, 40, 2)), "c2")], limits,
                       engine="llama.cpp", model="m", hardware=None)  # fmt: skip
    assert plain.cached_prefix_tokens == 0 and plain.probe_tokens is None


def _slot_runs(truth: EngineModel, cs: tuple[int, ...]) -> list[ObservedRun]:
    """Closed loops at each of ``cs``, each on a fresh server."""
    return [
        replace(_observed(simulate(truth, closed(100, 30, 60, c)), f"c{c}"), server=f"s{c}")
        for c in cs
    ]


def test_the_fit_learns_the_share_of_a_wave_an_idle_server_takes() -> None:
    # Closed loops whose streams end together send every wave to an idle server: the fit
    # reads off the first tokens how much of each wave ran in the first step.
    limits = Limits("slots", 4, "given", 2048, "given", None)
    table = {1: 10.0, 2: 12.0, 3: 14.0, 4: 16.0}
    for share in (0.0, 1.0):
        truth = engine(table, max_seqs=4, scheduler="slots").model_copy(
            update={"wake_share": share}
        )
        fitted = fit_engine(_slot_runs(truth, (1, 2, 4)), limits, engine="llama.cpp",
                            model="m", hardware=None)  # fmt: skip
        assert fitted.wake_share == pytest.approx(share, abs=0.05)
    # an engine of no slots: not fitted (the simulation takes the first alone)
    plain = fit_engine(_slot_runs(engine(table, max_seqs=4), (1, 2)),
                       Limits("continuous", 4, "given", 2048, "given", None),
                       engine="test", model="m", hardware=None)  # fmt: skip
    assert plain.wake_share is None


def test_a_pass_the_runs_never_showed_is_priced_as_a_step_of_its_own() -> None:
    # Streams that stay in step take neighbouring slots: c = 1, 2 and 4 on four slots never
    # decode in two passes, so nothing in them prices a pass. c = 3 does (slots 0, 1, 3).
    limits = Limits("slots", 4, "given", 2048, "given", None)
    truth = engine({1: 10.0, 2: 12.0, 3: 14.0, 4: 16.0}, max_seqs=4, scheduler="slots",
                   ubatch=6.0).model_copy(update={"wake_share": 1.0})  # fmt: skip
    unseen = fit_engine(_slot_runs(truth, (1, 2, 4)), limits, engine="llama.cpp",
                        model="m", hardware=None)  # fmt: skip
    assert unseen.ubatch_source is not None and unseen.ubatch_source.startswith("assumed")
    assert unseen.ubatch_ms == pytest.approx(10.0, rel=0.02)  # the fitted step of one
    assert unseen.pass_cost == "sum"  # each pass a one-pass step of its own sequences
    assert any("several forward passes" in n for n in unseen.quality.notes)
    seen = fit_engine(_slot_runs(truth, (1, 2, 3, 4)), limits, engine="llama.cpp",
                      model="m", hardware=None)  # fmt: skip
    assert seen.ubatch_source == "fitted" and seen.pass_cost == "added"
    assert seen.ubatch_ms == pytest.approx(6.0, rel=0.1)


def test_fit_needs_token_gaps() -> None:
    truth = engine(KNOWN)
    run = _observed(simulate(truth, closed(20, 1, 5, 1)), "one-token answers")
    with pytest.raises(UsageError, match="too few token gaps"):
        fit_engine(
            [run], Limits("continuous", 4, "", 1, "", None), engine="e", model=None, hardware=None
        )


def _open(rate: float, n: int, n_out: int = 100) -> SimLoad:
    due = schedule(rate, n, None, seed=1) * 1000.0
    return SimLoad(np.full(n, 50), np.full(n, n_out), due_ms=due)


def test_overload_is_reported_and_the_simulation_ends() -> None:
    from infermeter.run.predict import SimPlan, stability

    # 4 sequences of 100 tokens at 10 ms a step: about 4 requests a second at most
    model = engine({1: 10.0, 4: 10.0}, per_token=0.0, max_seqs=4)
    fine = _open(2.0, 400)
    assert stability(simulate(model, fine), SimPlan(fine, {})) is None
    over = _open(8.0, 400)
    res = simulate(model, over)
    assert res.finished.all()  # served late, but served: the horizon was not reached
    assert "queue" in (stability(res, SimPlan(over, {})) or "")
    short = simulate(model, over, horizon_ms=5_000)
    assert not short.finished.all()
    assert "not served" in (stability(short, SimPlan(over, {})) or "")


def test_meets_judges_each_percentile_term() -> None:
    res = simulate(engine({1: 10.0}), closed(100, 5, 20, 1))
    s = summarize(res, (99.9,))
    verdicts = meets(s, [Term("ttft_ms", 50, 14.5), Term("e2e_ms", 99.9, 50.0)])
    assert [ok for _, _, ok in verdicts] == [True, False]
    assert verdicts[1][1] == pytest.approx(54.0)


def test_engine_model_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    m = engine(KNOWN)
    path = tmp_path / "e.json"
    write_engine_model(m, path)
    assert read_engine_model(path) == m
    bad = tmp_path / "bad.json"
    for text in ("{", "[]", '{"kind": "infermeter-engine-model"}'):
        bad.write_text(text)
        with pytest.raises(UsageError, match="not an engine model") as err:
            read_engine_model(bad)
        assert "\n" not in err.value.message
    with pytest.raises(UsageError, match="No such file"):
        read_engine_model(tmp_path / "missing.json")


def test_carried_to_another_gpu_by_the_roofline() -> None:
    m = engine({1: 10.0, 512: 100.0}, per_token=0.1, floor=4.0, hardware="h100-sxm")
    src, dst = get_hardware("h100-sxm"), get_hardware("h200-sxm")
    moved = carry(m, src, dst)
    bw = src.memory_bandwidth_gb_s / dst.memory_bandwidth_gb_s
    fl = src.bf16_tflops / dst.bf16_tflops
    steps = {p.batch: p.step_ms for p in moved.decode}
    assert steps[1] == pytest.approx(10.0 * bw)  # below the ridge: bandwidth
    assert steps[512] == pytest.approx(100.0 * fl)  # past it: compute
    assert moved.prefill_ms_per_token == pytest.approx(0.1 * fl)
    assert moved.step_floor_ms == pytest.approx(4.0 * bw)
    assert moved.hardware == dst.name and moved.extrapolated and "estimate" in moved.extrapolated


def test_a_told_shape_splits_each_step_at_its_speed_of_light() -> None:
    """Only the bytes a step must read scale with bandwidth; the rest of it (launches, host
    work) stays below the ridge. A step measured faster than its speed of light scales whole."""
    from infermeter.predict.model import PrefillPoint
    from infermeter.theory import Deployment, get_model

    m = engine({1: 6.0, 2: 2.0}, per_token=0.1, floor=5.0, ubatch=7.0, hardware="h100-sxm")
    m = m.model_copy(
        update={
            "model_shape": "llama-2-7b",
            "weight_dtype": "fp16",
            "prefill": [PrefillPoint(batch=1, ms_per_token=0.2, samples=40)],
        }
    )
    src, dst = get_hardware("h100-sxm"), get_hardware("a100-80gb-sxm")
    bw = src.memory_bandwidth_gb_s / dst.memory_bandwidth_gb_s
    fl = src.bf16_tflops / dst.bf16_tflops
    d = Deployment(get_model("llama-2-7b"), src, weight_dtype="fp16")
    least = d.weights_read_per_step(1) / src.bandwidth * 1e3  # ms: about 4.0
    assert 3.5 < least < 4.5
    moved = carry(m, src, dst)
    steps = {p.batch: p.step_ms for p in moved.decode}
    assert steps[1] == pytest.approx(least * bw + (6.0 - least))
    assert steps[2] == pytest.approx(2.0 * bw)  # under its speed of light: memory time whole
    weights = d.prefill_weights_read(1) / src.bandwidth * 1e3
    assert moved.step_floor_ms == pytest.approx(weights * bw + (5.0 - weights))
    assert moved.ubatch_ms == pytest.approx(weights * bw + (7.0 - weights))
    assert moved.prefill[0].ms_per_token == pytest.approx(0.2 * fl)
    assert moved.extrapolated is not None and "least memory time" in moved.extrapolated
    # without the shape the whole step scales, and the brackets never split
    whole = carry(m.model_copy(update={"model_shape": None}), src, dst)
    assert whole.decode[0].step_ms == pytest.approx(6.0 * bw)
    assert carry(m, src, dst, "bandwidth").decode[0].step_ms == pytest.approx(6.0 * bw)


def test_a_what_if_says_how_much_of_each_step_it_keeps_and_when_that_is_the_host() -> None:
    """The part of a step beyond reading memory is carried unchanged: the note says how
    much, and where even the smallest batch's step is mostly that, that it is the host's."""
    from infermeter.predict.hardware import carry
    from infermeter.theory.bounds import Deployment
    from infermeter.theory.catalogue import get_model
    from infermeter.theory.hardware import get_hardware

    src, dst = get_hardware("h100-sxm"), get_hardware("h200-sxm")
    d = Deployment(get_model("llama-2-7b"), src, weight_dtype="bf16")
    least = d.weights_read_per_step(1) / src.bandwidth * 1e3  # ms at batch 1, no context

    def moved(steps: dict[int, float]) -> str:
        m = engine(steps, per_token=0.1, floor=5.0, hardware="h100-sxm")
        m = m.model_copy(update={"model_shape": "llama-2-7b", "weight_dtype": "bf16"})
        note = carry(m, src, dst).extrapolated
        assert note is not None
        return note

    # a step at batch 1 three times its least memory time: two thirds kept, not the host's
    gpu_bound = moved({1: 3 * least})
    assert "(67 % of each fitted step lies beyond" in gpu_bound
    assert "host's CPU" not in gpu_bound
    # every step ten times its least memory time or more: the host's
    host_bound = moved({1: 10 * least, 2: 12 * least})
    assert "90-92 % of each fitted step" in host_bound
    assert "rests on this host's CPU" in host_bound
    # a step at its least memory time keeps nothing: 0 %, and one past it no more than that
    assert "(0 % of each fitted step" in moved({1: least})


def test_the_fit_keeps_the_shape_the_runs_were_told() -> None:
    from infermeter.run.fit import _told_shape

    told = {"model_shape": "llama-2-7b", "weight_dtype": "fp16"}
    assert _told_shape([told, told]) == told
    assert _told_shape([{"model_shape": "llama-2-7b"}]) == {
        "model_shape": "llama-2-7b",
        "weight_dtype": "bf16",
    }
    assert _told_shape([told, {"model_shape": "llama-3.1-8b", "weight_dtype": "fp16"}]) == {}
    assert _told_shape([{}]) == {}
    assert _told_shape([{"model_shape": "no-such-model"}]) == {}


def _planned(
    rate: float,
    n: int,
    *,
    per_gpu: int = 1,
    gpus_per_replica: int = 1,
    e2e_limit_ms: float = 2000.0,
) -> PlanResult:
    """A plan for 50 → 100-token traffic at ``rate`` on a 4-sequence engine, at 2.0 a
    GPU-hour, under p95 E2E ≤ ``e2e_limit_ms`` (2 s)."""
    from infermeter.config import BenchConfig
    from infermeter.run.plan import plan_capacity

    model = engine({1: 10.0, 4: 12.0}, per_token=0.01, max_seqs=4)
    config = BenchConfig.build(
        url="http://x", rate=rate, num_requests=n, input_tokens="50", output_tokens="100"
    )
    terms = [Term("e2e_ms", 95, e2e_limit_ms)]
    return plan_capacity(
        model,
        config,
        terms,
        fleet=Fleet(per_gpu=per_gpu),
        gpus_per_replica=gpus_per_replica,
        gpu_hourly_price=2.0,
    )


def test_plan_finds_the_fewest_replicas_that_meet_the_limits() -> None:
    plan = _planned(10.0, 600)
    assert plan.at.passed
    assert plan.one_fewer is not None and not plan.one_fewer.passed
    # one replica holds 4 sequences of ~1.2 s: about 3.3 requests a second at most
    assert 1.5 < plan.max_rate_per_replica_rps < 3.4
    assert plan.at.replicas >= 10.0 / plan.max_rate_per_replica_rps - 1
    assert plan.cost is not None
    assert plan.cost["per_hour"] == pytest.approx(2.0 * plan.at.replicas)
    assert plan.cost["per_million_output_tokens"] == pytest.approx(
        plan.cost["per_hour"] / (10.0 * 100 * 3600) * 1e6
    )


def _plan_text(plan: PlanResult, width: int = 200) -> str:
    from rich.console import Console

    from infermeter.report.predict import print_plan
    from infermeter.run.plan import plan_doc

    console = Console(record=True, width=width, color_system=None)
    print_plan(console, plan_doc(plan, engine({1: 10.0}), Path("engine.json"), []))
    return console.export_text()


def test_plan_shows_each_count_s_utilisation_and_names_pooling() -> None:
    # a lone request takes about 1.0 s of a 1.1 s limit: one replica meets it only while
    # its requests seldom overlap, many behind a router carry far more each
    tight = _planned(4.0, 400, e2e_limit_ms=1100.0)
    assert tight.at.passed
    at = _plan_text(tight)
    busy = round(100 * tight.at.summary.busy_share)
    assert 0 < busy < 100
    row = next(
        line.split()
        for line in at.splitlines()
        if line.split()[:2] == [str(tight.at.replicas), "yes"]
    )
    # the row ends "<mean batch> <busy> % <load> %"
    assert row[-4:-2] == [str(busy), "%"] and row[-1] == "%"
    from infermeter.run.plan import plan_doc

    load = plan_doc(tight, engine({1: 10.0}), Path("e.json"), [])["at_replicas"]["load_share"]
    assert int(row[-2]) == round(100 * load) and load > 1.25
    assert "busy: the share of the time each replica has a step running" in at
    assert f"pooled: {tight.at.replicas} replicas carry" in at
    # where one replica's own rate explains the count, nothing is said of pooling
    assert "pooled:" not in _plan_text(_planned(6.0, 400))


def test_plan_packs_replicas_onto_gpus_that_they_share() -> None:
    apart = _planned(6.0, 400)
    packed = _planned(6.0, 400, per_gpu=2)
    assert apart.at.replicas >= 2 and apart.gpus == apart.at.replicas
    # two to a GPU, a pair serves about what one replica alone does: no GPU is saved
    # planned in whole GPUs: two replicas on each, and one fewer is a GPU fewer
    assert packed.at.replicas == 2 * packed.gpus
    assert packed.one_fewer is not None and packed.one_fewer.replicas == packed.at.replicas - 2
    assert not packed.one_fewer.passed
    # on 80 columns every header word and figure stays whole, beside the GPUs column too
    for plan in (apart, packed):
        text = _plan_text(plan, width=80)
        assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    head = _plan_text(packed, width=80)
    assert "replicas GPUs limits" in head
    gpus = "1 GPU)" if packed.gpus == 1 else f"{packed.gpus} GPUs)"
    assert f" per GPU: {gpus}" in head
    assert packed.gpus >= apart.gpus
    assert packed.at.replicas > apart.at.replicas
    assert packed.cost is not None and packed.cost["per_hour"] == pytest.approx(2.0 * packed.gpus)
    with pytest.raises(UsageError, match="cannot share"):
        _planned(6.0, 400, gpus_per_replica=2, per_gpu=2)
    # three to a GPU, 100 tokens at three steps a token miss 2 s however many GPUs
    with pytest.raises(UsageError, match=r"no count of replicas .*3 to a GPU"):
        _planned(6.0, 400, per_gpu=3)


def test_replicas_packed_on_one_gpu_take_turns_on_it() -> None:
    load = SimLoad(np.full(2, 100), np.full(2, 5), concurrency=2)
    apart = simulate(engine({1: 10.0}), load, fleet=Fleet(2, "round-robin"))
    # each its own GPU: the one-stream schedule on both (prompt 14 ms, then 10 ms steps)
    for i in (0, 1):
        assert apart.token_ms(i).tolist() == pytest.approx([14.0, 24.0, 34.0, 44.0, 54.0])
    pair = Fleet(2, "round-robin", per_gpu=2)
    shared = simulate(engine({1: 10.0}), load, fleet=pair)
    # one GPU: the second prompt waits for the first, then each step for the other's
    assert shared.token_ms(0).tolist() == pytest.approx([14.0, 38.0, 58.0, 78.0, 98.0])
    assert shared.token_ms(1).tolist() == pytest.approx([28.0, 48.0, 68.0, 88.0, 108.0])
    # 2 ms of host work between steps (part of each 10 ms step) holds the GPU too: the same
    # schedule, where letting it overlap the other's step would give 14, 36, 52, …
    hosted = simulate(engine({1: 10.0}, admit=2.0), load, fleet=pair)
    assert hosted.token_ms(0).tolist() == pytest.approx([14.0, 38.0, 58.0, 78.0, 98.0])
    assert hosted.token_ms(1).tolist() == pytest.approx([28.0, 48.0, 68.0, 88.0, 108.0])
    # a static batcher's steps take the same turns
    static = simulate(engine({1: 10.0}, scheduler="static"), load, fleet=pair)
    assert static.token_ms(0).tolist() == pytest.approx([14.0, 38.0, 58.0, 78.0, 98.0])
    assert static.token_ms(1).tolist() == pytest.approx([28.0, 48.0, 68.0, 88.0, 108.0])
    # two GPUs of two: the replicas are apart again
    four = SimLoad(np.full(4, 100), np.full(4, 5), concurrency=4)
    packed = simulate(engine({1: 10.0}), four, fleet=pair.of(4))
    firsts = sorted(packed.t_first().tolist())
    assert firsts == pytest.approx([14.0, 14.0, 28.0, 28.0])
    assert pair.of(4).gpus == 2 and pair.of(3).gpus == 2
    with pytest.raises(ValueError, match="replicas per GPU"):
        Fleet(2, per_gpu=0)
    with pytest.raises(ValueError, match="at least one replica"):
        Fleet(0)


def test_a_simulated_run_reads_back_as_the_simulation_said(tmp_path: Path) -> None:
    """The run directory simulate writes, read back by the metrics pipeline, gives the same
    percentiles plan judges by (two roads to one number)."""
    from infermeter.config import BenchConfig
    from infermeter.run.predict import sim_plan, simulate_run

    model = engine({1: 10.0, 2: 12.0, 4: 15.0}, per_token=0.02, overhead=1.5, tail=0.3)
    path = tmp_path / "engine.json"
    write_engine_model(model, path)
    config = BenchConfig.build(
        url="http://x", rate=30.0, num_requests=300, input_tokens="uniform:20:200",
        output_tokens="uniform:2:60", seed=5, ignore_eos=True,
    )  # fmt: skip
    run = simulate_run(model, path, config, out=tmp_path / "run")
    direct = summarize(simulate(model, sim_plan(config, model).load))
    r = run.results
    assert r["predicted"] is True and r["prediction"]["replicas"] == 1
    assert r["warnings"][0].startswith("predicted by simulation")
    assert r["token_sources"]["n_out"] == {"predicted": 300}
    assert r["summary"]["requests_completed"] == 300
    for metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
        for p in (50.0, 99.0):
            got = r["distributions"][metric][f"p{p:g}"]
            assert got == pytest.approx(direct.value(metric, p), rel=1e-6), (metric, p)
    # the lengths and arrivals are bench's for the same seed
    records = run.records
    assert sorted(rec.n_out for rec in records) == sorted(sim_plan(config, model).load.n_out)
    assert all(rec.n_out_source == "predicted" and rec.ok for rec in records)
    from infermeter.report.formats import to_markdown

    md = to_markdown(r)
    assert "predicted by simulation" in md
    assert "simulated window" in md and "measured window" not in md


def test_a_simulated_run_numbers_its_requests_after_the_warm_up(tmp_path: Path) -> None:
    # bench's one worker numbers the warm-up requests first and the measured ones after them
    # (one counter), so that a measured run and its simulation pair request by request
    from infermeter.config import BenchConfig
    from infermeter.run.predict import simulate_run

    model = engine({1: 10.0, 2: 12.0}, per_token=0.02)
    path = tmp_path / "engine.json"
    write_engine_model(model, path)
    config = BenchConfig.build(
        url="http://x", rate=5.0, num_requests=20, input_tokens="32", output_tokens="8",
        seed=1, ignore_eos=True, warmup=4,
    )  # fmt: skip
    run = simulate_run(model, path, config, out=tmp_path / "run")
    by_id = sorted(run.records, key=lambda r: r.id)
    assert [r.id for r in by_id] == list(range(4, 24))
    # in the order of their schedule, as bench's are
    assert [r.t_sched_ns for r in by_id] == sorted(r.t_sched_ns for r in by_id)


def test_a_trace_recorded_on_another_engine_is_named(tmp_path: Path) -> None:
    from infermeter.config import BenchConfig
    from infermeter.run.predict import extrapolations, sim_plan, simulate_run

    recorded = engine({1: 10.0})
    path = tmp_path / "e.json"
    write_engine_model(recorded, path)
    config = BenchConfig.build(url="http://x", rate=5.0, num_requests=20, seed=1)
    simulate_run(recorded, path, config, out=tmp_path / "run")
    replay = BenchConfig.build(url="http://x", trace=tmp_path / "run")
    same = extrapolations(recorded, sim_plan(replay, recorded))
    assert not any("recorded on" in x for x in same)
    other = recorded.model_copy(update={"engine": "vllm"})
    notes = extrapolations(other, sim_plan(replay, other))
    assert any("recorded on test serving m; the engine model is vllm" in x for x in notes)


def test_the_kv_cache_bounds_admission() -> None:
    # 120 tokens a request, 250 in the cache: two sequences at a time, though 8 are allowed
    model = engine({1: 10.0, 2: 10.0}, per_token=0.0, max_seqs=8).model_copy(
        update={"kv_tokens": 250}
    )
    res = simulate(model, closed(100, 20, 4, 4))
    first_done = float(np.min(res.t_last))
    admitted = sorted(res.t_admit.tolist())
    # two run at once; the third waits for the first sequence to end, not for a slot
    assert admitted[1] < first_done
    assert admitted[2] == pytest.approx(first_done)
    free = simulate(engine({1: 10.0, 2: 10.0}, per_token=0.0, max_seqs=8), closed(100, 20, 4, 4))
    assert max(free.t_admit.tolist()) < float(np.min(free.t_last))


def test_a_full_kv_cache_preempts_the_last_admitted_which_computes_again() -> None:
    """vLLM's way: both prompts fit, their answers do not; the one admitted last is preempted
    when the cache is full, waits for the first to end, computes its prompt and its tokens
    again, and finishes its answer in a second run of steps."""
    model = engine({1: 10.0, 2: 10.0}, floor=10.0, per_token=0.0, max_seqs=8).model_copy(
        update={"kv_tokens": 230}
    )
    res = simulate(model, closed(100, 20, 2, 2))
    assert res.preemptions == [1]
    first, second = (0, 1) if res.t_last[0] < res.t_last[1] else (1, 0)
    assert first not in res.segments and [n for _, n in res.segments[second]] == [15, 5]
    (_, n), (b, _) = res.segments[second]
    # the second resumes with the step after the first's last token, its prompt and 15
    # tokens computed in that step
    assert res.steps[0][b - 1] == pytest.approx(res.t_last[first])
    stamps = res.token_ms(second)
    assert stamps.size == 20 and bool(np.all(np.diff(stamps) > 0))
    # the stall: the first's four last steps alone, then the step that computes it again
    assert stamps[n] - stamps[n - 1] == pytest.approx(5 * 10.0)
    # without a KV cache told, nothing is preempted and both run side by side throughout
    free = simulate(engine({1: 10.0, 2: 10.0}, floor=10.0, per_token=0.0), closed(100, 20, 2, 2))
    assert free.preemptions == [0] and not free.segments


@given(
    seed=st.integers(0, 10_000),
    kv=st.integers(150, 2_000),
    block=st.sampled_from([1, 16, 128]),
    c=st.integers(1, 8),
    rate=st.one_of(st.none(), st.floats(5.0, 200.0)),
)
@settings(max_examples=120, deadline=None)
def test_preemption_keeps_the_cache_and_the_tokens_whole(
    seed: int, kv: int, block: int, c: int, rate: float | None
) -> None:
    """Whatever the load and block size: the cache never holds more than its size while two
    or more sequences run, it is empty at the end, and every request gets all its tokens, in
    order."""
    from infermeter.predict.simulate import _Sim

    kv = -(-kv // block) * block

    rng = np.random.default_rng(seed)
    n = 40
    n_in = rng.integers(10, 120, n)
    n_out = rng.integers(1, 60, n)
    if rate is None:
        load = SimLoad(n_in, n_out, concurrency=c, seed=seed)
    else:
        load = SimLoad(n_in, n_out, due_ms=np.cumsum(rng.exponential(1000 / rate, n)), seed=seed)
    model = engine({1: 5.0, 4: 8.0, 8: 12.0}, per_token=0.01, max_seqs=8).model_copy(
        update={"kv_tokens": kv, "kv_block_tokens": block}
    )
    sim = _Sim(model, load, Fleet(router="round-robin"))
    rep = sim.reps[0]
    highest = 0
    start = sim.start

    def watched(r: int, t: float, spent: float = 0.0) -> None:
        nonlocal highest
        start(r, t, spent)
        if rep.running > 1:
            highest = max(highest, rep.kv_used)

    sim.start = watched  # type: ignore[method-assign]
    sim.run(1e12)
    assert highest <= kv and rep.kv_used == 0 and rep.running == 0 and not rep.admitted
    assert not any(rep.crossing.values())
    assert np.isfinite(sim.t_last).all()
    res = simulate(model, load, fleet=Fleet(router="round-robin"))
    for i in range(n):
        stamps = res.token_ms(i)
        assert stamps.size == n_out[i] and bool(np.all(np.diff(stamps) >= 0))


def test_a_static_batch_runs_to_its_longest_answer() -> None:
    model = engine({1: 6.0, 2: 10.0}, floor=4.0, per_token=0.1).model_copy(
        update={"scheduler": "static", "gather_ms": 5.0, "max_seqs": 4}
    )
    load = SimLoad(np.full(4, 100), np.array([2, 4, 2, 2]), concurrency=2)
    res = simulate(model, load)
    # both sent at 0, gathered for 5 ms, prompts together (4 + 0.1 × 2 × 100 = 24 ms)
    assert res.t_first()[:2].tolist() == pytest.approx([29.0, 29.0])
    # the batch keeps both rows (10 ms steps, not 6) until the longer answer is done
    assert res.token_ms(1).tolist() == pytest.approx([29.0, 39.0, 49.0, 59.0])
    # the next request, sent at 39, waits for the batch to end, then for the next to gather
    assert res.t_send[2] == pytest.approx(39.0)
    assert res.t_admit[2] == pytest.approx(64.0)
    assert res.t_first()[2] == pytest.approx(88.0)


@pytest.mark.parametrize(
    "loop", [{"concurrency": 3, "num_requests": 50}, {"rate": 4.0, "duration_s": 10.0}]
)
def test_simulated_answers_are_the_lengths_bench_draws(loop: dict[str, object]) -> None:
    """The same seed gives the simulation the answer lengths bench would ask for, in order."""
    import asyncio

    from infermeter.config import BenchConfig
    from infermeter.run.predict import sim_plan
    from infermeter.workload.plan import synthetic_plan

    config = BenchConfig.build(
        url="http://x", input_tokens="uniform:20:200", output_tokens="lognormal:60:0.5:2:300",
        warmup=3, seed=11, **loop,
    )  # fmt: skip
    built = synthetic_plan(
        input_spec=config.input_spec(),
        output_spec=config.output_spec(),
        n_warmup=3,
        n_measure=config.pool_size(),
        counter=None,
        overhead=0,
        shared_prefix_tokens=0,
        seed=11,
    )
    plan = asyncio.run(built)
    load = sim_plan(config, engine({1: 10.0})).load
    bench_out = [p.max_tokens for p in plan.measure]
    n = min(len(bench_out), load.n_out.size)
    assert n >= 30
    assert load.n_out[:n].tolist() == bench_out[:n]


def test_the_what_if_is_bracketed_by_one_ratio_for_every_step() -> None:
    m = engine({1: 10.0, 512: 100.0}, per_token=0.1, floor=4.0, hardware="h100-sxm")
    src, dst = get_hardware("h100-sxm"), get_hardware("a100-80gb-sxm")
    bw = src.memory_bandwidth_gb_s / dst.memory_bandwidth_gb_s
    fl = src.bf16_tflops / dst.bf16_tflops
    for scaling, ratio in (("bandwidth", bw), ("compute", fl)):
        moved = carry(m, src, dst, scaling)  # type: ignore[arg-type]
        assert [p.step_ms for p in moved.decode] == pytest.approx([10.0 * ratio, 100.0 * ratio])
        assert moved.prefill_ms_per_token == pytest.approx(0.1 * ratio)
        assert moved.step_floor_ms == pytest.approx(4.0 * ratio)
        assert moved.extrapolated is not None and f"every step × {ratio:.2f}" in moved.extrapolated


def test_past_the_largest_batch_the_steps_follow_a_wide_line_and_never_fall() -> None:
    """Beyond the table the step follows the line from the measured batch nearest half the
    largest (the H100's 31 and 32 differed by noise, and their slope pointed down), and is
    never cheaper than the largest measured batch."""
    from infermeter.predict.model import StepTable

    up = StepTable.of(engine({8: 10.0, 15: 18.0, 16: 14.0}, max_seqs=64))
    assert up.step_ms(16, 0.0, 0) == pytest.approx(14.0)
    assert up.step_ms(32, 0.0, 0) == pytest.approx(14.0 + 16 * (14.0 - 10.0) / 8)
    down = StepTable.of(engine({16: 20.0, 32: 12.0}, max_seqs=64))
    assert down.step_ms(48, 0.0, 0) == pytest.approx(12.0)


def _checked(*checks: tuple[str, float, float]) -> EngineModel:
    """The test engine with a self-check of (label, mean batch, TPOT and E2E p50 error)."""
    from infermeter.predict.model import SelfCheck

    model = engine({1: 10.0, 2: 12.0, 4: 15.0, 8: 20.0})
    quality = model.quality.model_copy(
        update={
            "self_check": [
                SelfCheck(label=lab, mean_batch=b, tpot_p50_error=e, e2e_p50_error=e / 2)
                for lab, b, e in checks
            ]
        }
    )
    return model.model_copy(update={"quality": quality})


def test_a_load_beside_a_fitted_run_the_model_misses_is_named() -> None:
    """A fitted run's miss, read off along the mean batch between the nearest fitted runs
    on either side, names the neighbours that missed where it passes the target."""
    from infermeter.predict.model import SELF_MISS, self_check_notes

    model = _checked(("c1", 1.0, 0.01), ("c4", 3.6, -0.12), ("c8", 7.0, 0.02), ("c16", 14.0, 0.3))
    assert SELF_MISS == 0.05
    (note,) = self_check_notes(model, 2.6)  # 1 % at c1, 12 % at c4: 1 + 11 × 1.6 / 2.6
    assert "c4 (mean batch 3.6): TPOT p50 -12.0 %, E2E p50 -6.0 %" in note
    assert "c1" not in note and "at a mean batch of 2.6" in note
    assert "off its own runs by about 8 %" in note
    assert self_check_notes(model, 1.2) == []  # next to c1, which held: 1.8 %
    assert "c4" in self_check_notes(model, 4.0)[0]  # between c4 and c8, near c4
    assert self_check_notes(model, 6.9) == []  # near c8, which held
    assert self_check_notes(model, 0.5) == []  # below c1 alone, which held
    (past,) = self_check_notes(model, 30.0)  # past the last, which missed
    assert "c16" in past and "about 30 %" in past
    held = _checked(("c1", 1.0, 0.04), ("c4", 3.6, -0.049))
    assert self_check_notes(held, 2.0) == []  # within the target: nothing to say
    assert self_check_notes(engine({1: 10.0}), 2.0) == []  # no self-check (an older model)


def test_a_simulated_run_says_where_its_model_misses_its_own_runs(tmp_path: Path) -> None:
    from infermeter.config import BenchConfig
    from infermeter.run.predict import simulate_run

    model = _checked(("c1", 0.9, 0.01), ("c4", 3.7, 0.2))
    path = tmp_path / "engine.json"
    write_engine_model(model, path)
    assert read_engine_model(path).quality.self_check == model.quality.self_check
    config = BenchConfig.build(
        url="http://x", concurrency=4, num_requests=40, input_tokens="64", output_tokens="32",
        seed=1, ignore_eos=True,
    )  # fmt: skip
    r = simulate_run(model, path, config, out=tmp_path / "run").results
    (note,) = r["prediction"]["self_check"]
    assert "c4 (mean batch 3.7): TPOT p50 +20.0 %" in note
    assert any(w.startswith("not held by its own runs: ") for w in r["warnings"])
    alone = simulate_run(
        model, path, config.model_copy(update={"concurrency": 1}), out=tmp_path / "one"
    ).results
    # one stream: a mean batch of 0.97 (a prompt's step has none), next to c1, which held
    assert alone["prediction"]["self_check"] == []
