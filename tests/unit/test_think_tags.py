"""Which chunks are thinking: ``<think>`` blocks inside the content, tags split anywhere."""

from __future__ import annotations

import pytest

from infermeter.clients.reasoning import ThinkTags


def _answer_at(chunks: list[str]) -> int | None:
    tags = ThinkTags()
    for i, text in enumerate(chunks):
        at = tags.answer_start(text, i)
        if at is not None:
            return at
    return None


@pytest.mark.parametrize(
    ("chunks", "answer"),
    [
        (["<think>", " a", " b", " </think>", " The", " answer"], 4),
        (["<think>a b</think>The answer"], 0),  # all in one chunk: the answer starts in it
        (["  <thi", "nk> a", " b</th", "ink>", "\n\n", "Yes"], 5),  # tags split, blank lines
        (["<think> a", " b</think> Yes"], 1),
        (["Plain", " answer"], 0),  # no thinking block
        (["<", "b>bold</b>"], 0),  # a tag, but not <think>: the answer from its first chunk on
        (["\n", "<th", "is>"], 1),  # the answer began where its text did
        (["<think> a", " b"], None),  # cut off while thinking
        (["\n", "<think>x</think>", "ok"], 2),
    ],
)
def test_think_tags(chunks: list[str], answer: int | None) -> None:
    assert _answer_at(chunks) == answer
