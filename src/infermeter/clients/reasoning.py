"""Which stream chunks are a reasoning model's thinking, where the server puts it inside the
answer's text as ``<think>…</think>`` (servers that separate it send ``reasoning_content`` or
``reasoning`` deltas, which the API formats mark themselves)."""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


class ThinkTags:
    """Reads one stream's content chunk by chunk: a leading ``<think>`` block is thinking,
    and the answer starts at the first chunk with text after its ``</think>``; without such a
    block, at the first chunk with text. Tags split over chunks are found."""

    __slots__ = ("_opened_at", "_state", "_tail")

    def __init__(self) -> None:
        self._state = "start"
        self._tail = ""
        #: The chunk where text began while it could still be the start of ``<think>``.
        self._opened_at: int | None = None

    def answer_start(self, text: str, index: int) -> int | None:
        """Chunk ``index`` of the content is ``text``: the chunk where the answer starts, once
        that is known (it may be an earlier one: a ``<`` that began no thinking block)."""
        if self._state == "answer":
            return None
        tail = self._tail + text
        if self._state == "start":
            lead = tail.lstrip()
            if lead and self._opened_at is None:
                self._opened_at = index
            if not lead or OPEN.startswith(lead):
                self._tail = tail  # nothing yet, or a tag not whole yet
                return None
            if not lead.startswith(OPEN):
                self._state = "answer"  # no thinking block: the answer began with the text
                return self._opened_at
            self._state, tail = "think", lead[len(OPEN) :]
        if self._state == "think":
            end = tail.find(CLOSE)
            if end < 0:
                self._tail = tail[-(len(CLOSE) - 1) :]  # what may start a split tag
                return None
            self._state, tail = "after", tail[end + len(CLOSE) :]
        self._tail = ""
        if tail.strip():
            self._state = "answer"
            return index  # the answer starts in this chunk
        return None
