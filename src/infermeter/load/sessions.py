"""Multi-turn sessions: the load runner's schedule over conversations, not single requests.

Closed loop: ``concurrency`` sessions at a time, a new one as soon as one ends. Open loop:
sessions start on the run's absolute arrival schedule (``rate`` sessions per second). Within
a session each turn waits for the previous answer, then the user's think time, and sends the
whole conversation so far (the server's real answers included); a turn that fails ends its
session (there is no answer to go on from). A turn is due when its think time ends: that
instant is its ``t_sched``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from typing import Any

from infermeter.load.runner import Listener, LoadPlan, Runner, Turn, TurnSendFn
from infermeter.workload.sessions import SessionScript
from infermeter.workload.types import Prompt


class SessionRunner(Runner):
    def __init__(
        self,
        send_turn: TurnSendFn,
        plan: LoadPlan,
        scripts: Sequence[SessionScript],
        listeners: Sequence[Listener] = (),
        warmup_listeners: Sequence[Listener] = (),
    ) -> None:
        async def single(rid: int, prompt: Prompt, t_sched: int, phase: str) -> Any:
            return await send_turn(rid, prompt, t_sched, phase, [])

        super().__init__(single, plan, listeners, warmup_listeners)
        self._send_turn = send_turn
        self._scripts = scripts

    async def _measured_phase(
        self, prompts: Iterator[Prompt], offsets_s: Sequence[float] | None, start_at_ns: int | None
    ) -> None:
        plan = self.plan
        clock = time.perf_counter_ns
        start = start_at_ns if start_at_ns is not None else clock()
        deadline = start + int(plan.duration_s * 1e9) if plan.duration_s is not None else None
        scripts = iter(enumerate(self._scripts))
        if plan.open_loop:
            tasks = []
            for (sid, script), offset in zip(scripts, plan.arrivals(), strict=False):
                due = start + int(offset * 1e9)
                if deadline is not None and due >= deadline:
                    break
                if await self._pause((due - clock()) / 1e9):
                    break
                tasks.append(asyncio.ensure_future(self._session(sid, script, due, deadline)))
            if tasks:
                await asyncio.gather(*tasks)
            return

        async def slot() -> None:
            for sid, script in scripts:
                if self._stop.is_set() or (deadline is not None and clock() >= deadline):
                    return
                await self._session(sid, script, clock(), deadline)

        assert plan.concurrency is not None
        await asyncio.gather(*(slot() for _ in range(plan.concurrency)))

    async def _session(
        self, sid: int, script: SessionScript, due: int, deadline: int | None
    ) -> None:
        history: list[dict[str, Any]] = (
            [{"role": "system", "content": script.system}] if script.system else []
        )
        for k, turn in enumerate(script.turns):
            if k:
                if await self._pause(turn.think_s):
                    return
                due = time.perf_counter_ns()
                if deadline is not None and due >= deadline:
                    return
            elif self._stop.is_set():
                return
            user = {"role": "user", "content": turn.user_text}
            prompt = Prompt(turn.user_text, turn.max_tokens, None, (*history, user))
            answer: list[str] = []
            rec = await self._one(prompt, due, "measure", Turn(self._send_turn, sid, k, answer))
            if not rec.ok:
                return
            history += [user, {"role": "assistant", "content": "".join(answer)}]
