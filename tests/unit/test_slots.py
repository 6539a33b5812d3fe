"""llama.cpp's slots as the simulation and the fit follow them: handed out least recently
used first (never-used slots first, the highest id among equals), the runs of consecutive busy
ids each a forward pass of its own, against a reference written out the server's way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_predict import _observed, closed, engine

from infermeter.predict.fit import Limits, ObservedRun, _ubatch, fit_engine
from infermeter.predict.model import EngineModel, StepPoint
from infermeter.predict.simulate import Fleet, SimLoad, simulate
from infermeter.predict.slots import SlotTable, replay_runs


class ServerSlots:
    """The reference: llama-server's get_available_slot, loop and all."""

    def __init__(self, n: int) -> None:
        self.last = [-1.0] * n
        self.busy = [False] * n

    def take(self) -> int:
        ret, t_last = -1, -1.0
        for s in range(len(self.busy)):
            if self.busy[s]:
                continue
            if ret < 0 or self.last[s] <= t_last:
                ret, t_last = s, self.last[s]
        if ret >= 0:
            self.busy[ret] = True
        return ret

    def free(self, s: int, t: float) -> None:
        self.busy[s] = False
        self.last[s] = t

    def runs(self) -> int:
        ids = [s for s, b in enumerate(self.busy) if b]
        return sum(1 for k, s in enumerate(ids) if k == 0 or s != ids[k - 1] + 1)


def test_a_fresh_server_hands_out_its_highest_slots_first() -> None:
    table = SlotTable(8)
    assert [table.take() for _ in range(3)] == [7, 6, 5]
    assert table.runs == 1
    table.free(6, 1.0)
    assert table.runs == 2  # 7 and 5
    assert table.take() == 4  # never used comes before the one freed at 1.0
    assert table.runs == 2  # 7 | 5, 4
    table.free(7, 2.0)
    assert [table.take() for _ in range(4)] == [3, 2, 1, 0]
    assert table.take() == 6 and table.take() == 7  # then least recently used
    assert table.take() == -1 and table.runs == 1
    # where a next load on the same server starts: the order the slots were last used in
    table.free(0, 5.0)
    table.free(3, 6.0)
    order = table.order()
    assert order[:2] == [0, 3] and sorted(order) == list(range(8))
    carried = SlotTable(8, order)
    assert carried.take() == 0 and carried.take() == 3


@given(
    st.integers(1, 12),
    st.lists(st.tuples(st.booleans(), st.integers(0, 11)), max_size=80),
)
@settings(max_examples=300, deadline=None)
def test_the_slot_table_is_the_servers_choice(n: int, ops: list[tuple[bool, int]]) -> None:
    table, ref = SlotTable(n), ServerSlots(n)
    held: list[int] = []
    for t, (take, pick) in enumerate(ops):
        if take or not held:
            got = table.take()
            assert got == ref.take()
            if got >= 0:
                held.append(got)
        else:
            s = held.pop(pick % len(held))
            table.free(s, float(t))
            ref.free(s, float(t))
        assert table.runs == ref.runs()
        assert table.busy == sum(ref.busy)
        sizes = table.sizes()
        assert len(sizes) == table.runs and sum(sizes) == table.busy and min(sizes or [1]) >= 1
    # a table carried from the order continues as the server would
    order = table.order()
    carried = SlotTable(n, order)
    for s in held:
        ref.free(s, float(len(ops)) + order.index(s) * 1e-3)
    assert [carried.take() for _ in range(n)] == [ref.take() for _ in range(n)]


def test_replayed_from_sends_and_ends() -> None:
    # A and B overlap; B ends before C is sent, and C takes a never-used slot, apart from A
    send = np.array([0.0, 1.0, 5.0, 6.0])
    end = np.array([10.0, 4.0, 9.0, 7.0])
    times, runs, slot = replay_runs(send, end, 4)
    assert slot.tolist() == [3, 2, 1, 0]
    assert times.tolist() == [0.0, 1.0, 4.0, 5.0, 6.0, 7.0, 9.0, 10.0]
    assert runs.tolist() == [1, 1, 1, 2, 2, 2, 1, 0]
    # every slot busy: the next request takes the first one to come free
    _, _, slot = replay_runs(np.array([0.0, 0.0, 1.0]), np.array([5.0, 2.0, 3.0]), 2)
    assert slot.tolist() == [1, 0, 0]


def slots_engine(ubatch: float, max_seqs: int = 4, emit: float = 0.0) -> EngineModel:
    table = {1: 10.0, 2: 11.0, 3: 12.0, 4: 13.0}
    model = engine(table, max_seqs=max_seqs, scheduler="slots", ubatch=ubatch, floor=8.0)
    return model.model_copy(update={"emit_ms_per_seq": emit})


def test_each_run_of_busy_slots_beyond_the_first_costs_a_pass() -> None:
    # A decodes long on slot 3, B beside it on slot 2 (one run); B ends, and C, sent later,
    # takes never-used slot 1: busy 3 and 1, two runs, so each step of A beside C costs
    # the batch-2 step and one pass more
    load = SimLoad(
        np.array([10, 10, 10]), np.array([40, 5, 10]), due_ms=np.array([0.0, 0.0, 150.0])
    )
    plain = simulate(slots_engine(0.0), load)
    split = simulate(slots_engine(5.0), load)
    assert np.diff(split.token_ms(1)).tolist() == pytest.approx([11.0] * 4)  # B beside A
    assert np.diff(split.token_ms(2)).tolist() == pytest.approx([16.0] * 9)  # C beside A
    assert np.diff(plain.token_ms(2)).tolist() == pytest.approx([11.0] * 9)
    a = np.diff(split.token_ms(0))
    assert sorted(set(a.round(9).tolist())) == [10.0, 11.0, 16.0]
    # the slots as the load left them, least recently used first: never-used 0, then B's,
    # C's and A's as they came free
    assert split.slot_order == [[0, 2, 1, 3]]
    assert plain.slot_order == []  # not followed where a pass costs nothing
    # every decoding step is one of A's gaps; those beside C took two passes
    two = np.isclose(a, 16.0)
    assert split.mean_passes == pytest.approx([(a.sum() + a[two].sum()) / a.sum()])
    assert 1.0 < split.mean_passes[0] < 2.0 and plain.mean_passes == [1.0]


def test_passes_summed_cost_a_one_pass_step_each() -> None:
    # The load above, its passes priced each as a one-pass step of its own sequences: A
    # and C on slots 3 and 1 decode in two passes of one, 10 ms each, not the batch-2 step
    # and a pass more
    load = SimLoad(
        np.array([10, 10, 10]), np.array([40, 5, 10]), due_ms=np.array([0.0, 0.0, 150.0])
    )
    summed = simulate(slots_engine(5.0).model_copy(update={"pass_cost": "sum"}), load)
    assert np.diff(summed.token_ms(1)).tolist() == pytest.approx([11.0] * 4)  # one run
    assert np.diff(summed.token_ms(2)).tolist() == pytest.approx([20.0] * 9)
    a = np.diff(summed.token_ms(0))
    assert sorted(set(a.round(9).tolist())) == [10.0, 11.0, 20.0]


def test_a_steps_tokens_go_out_and_its_slots_come_free_in_the_order_of_their_ids() -> None:
    # the server walks its slots by id after each step, sending each one's token and
    # releasing the finished. The first of six requests sent together starts a step alone
    # on slot 7; the other five join the next one on slots 6, 5, 4, 3 and 2 (least recently
    # used: never-used, highest id first), and their tokens go out from slot 2 up
    model = slots_engine(5.0, max_seqs=8, emit=0.5)
    res = simulate(model, SimLoad(np.full(6, 10), np.full(6, 6), due_ms=np.zeros(6)))
    first = np.array([res.token_ms(i)[0] for i in range(1, 6)])
    assert (first - first[-1]).tolist() == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.0])
    # finishing in one step, they come free from slot 2 up: 2 is the least recently used
    assert res.slot_order == [[1, 0, 7, 2, 3, 4, 5, 6]]


def test_a_load_continues_from_where_an_earlier_one_left_the_slots() -> None:
    model = slots_engine(5.0, max_seqs=8)
    first = simulate(model, SimLoad(np.full(30, 20), np.arange(30) % 7 + 3, concurrency=3))
    fresh = simulate(model, closed(20, 12, 24, 3))
    after = simulate(model, closed(20, 12, 24, 3), slot_order=first.slot_order)
    assert sorted(first.slot_order[0]) == list(range(8))
    assert np.nanmean(after.t_end - after.t_send) != np.nanmean(fresh.t_end - fresh.t_send)
    with pytest.raises(ValueError, match="one order per replica"):
        simulate(model, closed(20, 12, 4, 1), fleet=Fleet(2), slot_order=first.slot_order)


def test_the_cost_of_a_pass_is_learned_within_each_batch_size() -> None:
    rng = np.random.default_rng(3)
    batch = rng.integers(1, 5, 4000)
    extra = rng.integers(0, 3, 4000).astype(float)
    gap = 10.0 + batch + 4.0 * extra + rng.normal(0, 0.3, 4000)
    points = [StepPoint(batch=b, step_ms=10.0 + b, ctx_tokens=0, samples=1) for b in range(1, 5)]
    assert _ubatch(gap, batch, extra, points) == pytest.approx(4.0, abs=0.1)
    assert _ubatch(gap, batch, np.zeros(4000), points) is None  # one run always: unknown


def test_the_fit_learns_the_pass_from_a_simulated_server() -> None:
    # the tokens of a step go out one after another: the stamps show the order slots free in
    truth = slots_engine(4.0, max_seqs=6, emit=0.05)
    runs, order, origin = [], None, 0.0
    for k, c in enumerate((1, 2, 3, 4, 5)):
        n_out = np.random.default_rng(k).integers(10, 60, 80)
        load = SimLoad(np.full(80, 30), n_out, concurrency=c, seed=k)
        res = simulate(truth, load, slot_order=order)
        order = res.slot_order
        run = _observed(res, f"c{c}")
        runs.append(type(run)(**{**run.__dict__, "server": "one", "origin_ms": origin}))
        origin += float(np.nanmax(res.t_end)) + 1.0
    limits = Limits("slots", 6, "given", 2048, "given", None)
    fitted = fit_engine(runs, limits, engine="test", model="m", hardware=None)
    assert fitted.ubatch_ms == pytest.approx(4.0, rel=0.25)
    got = {p.batch: p.step_ms for p in fitted.decode}
    for b in (1, 2, 3, 4):
        assert got[b] == pytest.approx(truth.decode[b - 1].step_ms, rel=0.08)


def test_a_pass_is_held_to_reading_the_weights() -> None:
    """A fitted pass cheaper than reading the weights once is held to that time (a slot
    history the replay gets wrong can fit less); one above it is kept."""
    from infermeter.run.fit import _pass_floor_ms

    truth = slots_engine(4.0, max_seqs=6, emit=0.05)
    runs, order, origin = [], None, 0.0
    for k, c in enumerate((1, 2, 3, 4, 5)):
        n_out = np.random.default_rng(k).integers(10, 60, 80)
        res = simulate(
            truth, SimLoad(np.full(80, 30), n_out, concurrency=c, seed=k), slot_order=order
        )
        order = res.slot_order
        run = _observed(res, f"c{c}")
        runs.append(type(run)(**{**run.__dict__, "server": "one", "origin_ms": origin}))
        origin += float(np.nanmax(res.t_end)) + 1.0
    limits = Limits("slots", 6, "given", 2048, "given", None)
    held = fit_engine(runs, limits, engine="test", model="m", hardware=None, pass_floor_ms=6.0)
    assert held.ubatch_ms == 6.0
    assert any("held to 6.00 ms" in n for n in held.quality.notes)
    kept = fit_engine(runs, limits, engine="test", model="m", hardware=None, pass_floor_ms=2.0)
    assert kept.ubatch_ms == pytest.approx(4.0, rel=0.25)
    # (runs without bench's pre-flight record, as these: the replay says it is the coarse one)
    assert [n for n in kept.quality.notes if "pre-flight record" not in n] == []
    assert any("pre-flight record" in n for n in kept.quality.notes)
    # Llama-2-7B in 16 bits on an H200: 13.2 GB of weights at 4,800 GB/s
    told = {"model_shape": "llama-2-7b", "weight_dtype": "fp16"}
    assert _pass_floor_ms(told, "h200") == pytest.approx(2.75, abs=0.05)
    assert _pass_floor_ms(told, None) == 0.0 and _pass_floor_ms({}, "h200") == 0.0


def test_a_pass_cost_the_steps_cannot_hold_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    import infermeter.predict.fit as fit

    truth = slots_engine(4.0, max_seqs=6, emit=0.05)
    n_out = np.random.default_rng(5).integers(10, 60, 80)
    res = simulate(truth, SimLoad(np.full(80, 30), n_out, concurrency=4, seed=5))
    run = _observed(res, "c4")
    monkeypatch.setattr(fit, "_ubatch", lambda *a: 1000.0)
    limits = Limits("slots", 6, "given", 2048, "given", None)
    fitted = fit_engine([run], limits, engine="test", model="m", hardware=None)
    assert fitted.ubatch_ms == 0.0
    assert any("not followed" in n for n in fitted.quality.notes)
    assert min(p.step_ms for p in fitted.decode) > 0


def test_a_sequences_place_in_the_order_its_tokens_go_out_moves_as_newer_ones_join() -> None:
    # A starts alone on slot 7 and sends first; B joins on slot 6, below it: from then on
    # A's token goes out after B's, so A's last token is a token's writing later than its
    # first place said (llama.cpp walks its slots by id; the newest sit lowest)
    model = slots_engine(5.0, max_seqs=8, emit=0.5)
    load = SimLoad(np.array([10, 10]), np.array([6, 20]), due_ms=np.array([0.0, 12.0]))
    res = simulate(model, load)
    assert res.offset_ms is not None and res.last_offset_ms is not None
    assert res.offset_ms.tolist() == [0.0, 0.0]
    assert res.last_offset_ms.tolist() == [0.5, 0.0]
    a = res.token_ms(0)
    assert res.t_last[0] == pytest.approx(a[-1])
    # A's last token goes out half a millisecond after B's token of the same step
    b = res.token_ms(1)
    assert np.min(np.abs(b - (a[-1] - 0.5))) == pytest.approx(0.0, abs=1e-9)


def test_a_short_prompt_takes_the_lowest_idle_slot_that_held_a_prompt() -> None:
    # llama-server gives a prompt sharing more than a tenth with an idle slot's cached one
    # that slot: with random prompts only the template's first tokens are shared, so only a
    # short prompt (bench's pre-flight request) passes, and every slot that held a prompt
    # ties; the first by id wins. Never-used slots hold nothing to share.
    t = SlotTable(6)
    assert t.take_similar() == 5  # nothing cached anywhere: least recently used
    assert [t.take(), t.take()] == [4, 3]
    t.free(4, 1.0)
    t.free(5, 2.0)
    assert t.unused() == [0, 1, 2]
    assert t.take_similar() == 4  # not 5, and not the never-used 0-2
    assert t.take() == 2  # least recently used: never-used first, highest id


def test_the_replay_hands_short_prompts_and_one_steps_ends_out_as_the_server_does() -> None:
    # A fresh 4-slot server: A and B take 3 and 2 and end in one step, the client seeing A's
    # end first; C, a short prompt, then takes the lowest slot that held one (2), D the
    # least recently used: 1, never used
    send = np.array([0.0, 0.0, 10.0, 10.0])
    end = np.array([4.9, 5.0, 20.0, 20.0])
    similar = np.array([False, False, True, False])
    _, _, slot = replay_runs(send, end, 4, similar)
    assert slot.tolist() == [3, 2, 2, 1]
    # a third request E after both: with the ends of one step freed by id, slot 2 came
    # free before 3 whatever the client saw, so E takes 2 (the least recently used of them)
    send = np.array([0.0, 0.0, 10.0, 10.0, 30.0])
    end = np.array([4.9, 5.0, 25.0, 25.0, 40.0])
    mixed = np.array([False, False, False, False, False])
    _, _, seen = replay_runs(send, end, 4, mixed)
    _, _, by_id = replay_runs(send, end, 4, mixed, same_step_ms=0.5)
    assert seen.tolist()[:4] == by_id.tolist()[:4] == [3, 2, 1, 0]
    assert by_id[4] == 2 and seen[4] == 3


def test_a_simulated_short_prompt_takes_a_slot_by_similarity() -> None:
    # A and B (100-token prompts) take slots 7 and 6 and end; C's 20-token prompt shares the
    # template's 3 tokens with every cached prompt (15 %, past llama-server's 10 %), so it
    # takes 6, the lowest slot that held a prompt, where least recent use would give 5
    load = SimLoad(
        np.array([100, 100, 20]), np.array([3, 3, 2]), due_ms=np.array([0.0, 0.0, 200.0])
    )
    model = slots_engine(5.0, max_seqs=8)
    similar = model.model_copy(update={"cached_prefix_tokens": 3})
    assert simulate(similar, load).slot_order == [[5, 4, 3, 2, 1, 0, 7, 6]]
    assert simulate(model, load).slot_order == [[4, 3, 2, 1, 0, 7, 6, 5]]
    assert simulate(similar, load).slot_unused == [[0, 1, 2, 3, 4, 5]]


def test_a_simulated_run_sends_the_pre_flight_request_first(tmp_path: Path) -> None:
    # bench's pre-flight request (24 tokens: a slot by similarity once any slot holds a
    # prompt) then its warm-up take slots before the measured load: where the fitted runs
    # kept it, the simulation replays it, and the slots the load finds differ
    from infermeter.config import BenchConfig
    from infermeter.predict.model import write_engine_model
    from infermeter.run.predict import ServerHistory, simulate_run

    model = slots_engine(5.0, max_seqs=8).model_copy(update={"cached_prefix_tokens": 3})
    config = BenchConfig.build(
        url="http://x", concurrency=2, num_requests=12, input_tokens="100",
        output_tokens="5", seed=3, warmup=2,
    )  # fmt: skip
    orders = []
    for probe in (None, 24):
        m = model.model_copy(update={"probe_tokens": probe})
        path = tmp_path / f"engine-{probe}.json"
        write_engine_model(m, path)
        history = ServerHistory()
        for k in range(2):  # two loads on one server, a pre-flight request before each
            run = simulate_run(m, path, config, out=tmp_path / f"run-{probe}-{k}", servers=history)
            # the passes a decoding step took, where the model follows the slots
            assert run.results["prediction"]["mean_passes"][0] >= 1.0
        orders.append(history.slot_order)
    without, with_probe = orders
    assert without != with_probe


def test_requests_taken_together_hold_their_slots_in_the_order_their_prompts_ran() -> None:
    # four taken at one instant by a fresh 8-slot server take 7-4, then their prompts run
    # walking the slots by id: the first token that came first is the lowest slot's
    take = np.zeros(4)
    end = np.array([100.0, 90.0, 110.0, 95.0])
    first = np.array([30.0, 10.0, 40.0, 20.0])
    _, _, slot = replay_runs(take, end, 8, first_ms=first)
    assert slot.tolist() == [6, 4, 7, 5]
    _, _, by_send = replay_runs(take, end, 8)
    assert by_send.tolist() == [7, 6, 5, 4]


def _wave(first: list[float], n_in: int = 512) -> ObservedRun:
    """Four requests sent 0.1 ms apart to an idle server, each answered in 10 ms steps."""
    t_first = np.array(first)
    t_last = t_first + 100.0
    return ObservedRun(
        label="wave",
        t_sched=np.arange(4) * 0.1,
        t_send=np.arange(4) * 0.1,
        t_first=t_first,
        t_last=t_last,
        t_end=t_last,
        n_in=np.full(4, n_in),
        n_out=np.full(4, 11),
        token_ms=[np.arange(f + 10.0, f + 100.5, 10.0) for f in first],
    )


def test_a_wave_to_an_idle_server_is_taken_as_its_first_step_shows() -> None:
    from infermeter.predict.fit import admitted

    # the first step ran two of the prompts and had no room for a third (1,024 tokens a
    # step): the server had taken all four when it woke, at the first send
    full = _wave([30.0, 60.0, 30.2, 60.2])
    assert admitted(full, budget=1024).tolist() == [0.0, 0.0, 0.0, 0.0]
    # it ran one prompt with room for more: it woke on that one (at the wave's first send,
    # whatever the client's send order) and took the rest after that step (its token, 20 ms)
    one = _wave([50.0, 20.0, 50.2, 50.4])
    assert admitted(one, budget=2048).tolist() == [20.0, 0.0, 20.0, 20.0]
    # without the budget (runs whose every request is not known): the end of the step
    # before each one's own prompt (the last token any stream had sent, 40 ms)
    assert admitted(one).tolist() == [40.0, 0.1, 40.0, 40.0]
