"""Prompts from files: JSONL (one request per line) and ShareGPT conversations.

JSONL rows are objects with ``prompt`` (or ``text``) or ``messages``, and optionally
``max_tokens`` / ``output_tokens``. A row that cannot be used stops the run before anything is
sent, with the file and line in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from infermeter.errors import DatasetError


@dataclass(frozen=True, slots=True)
class DatasetRow:
    text: str
    messages: tuple[dict[str, Any], ...] | None
    max_tokens: int | None
    #: Text of a reference answer (ShareGPT), for output lengths when none is given.
    reference: str | None = None


def _max_tokens(obj: dict[str, Any], where: str) -> int | None:
    value = obj.get("max_tokens", obj.get("output_tokens"))
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DatasetError(f"{where}: max_tokens must be a positive integer, got {value!r}")
    return value


def _messages(value: Any, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not value:
        raise DatasetError(f"{where}: 'messages' must be a non-empty list")
    for i, msg in enumerate(value):
        if (
            not isinstance(msg, dict)
            or not isinstance(msg.get("role"), str)
            or "content" not in msg
        ):
            raise DatasetError(f"{where}: messages[{i}] needs 'role' and 'content'")
    return tuple(value)


def check_dataset_path(path: Path) -> None:
    """A dataset is a file that is there: said before any server is asked anything."""
    if not path.exists():
        raise DatasetError(f"dataset {path} does not exist")
    if path.is_dir():
        raise DatasetError(f"--dataset {path} is a directory; give a JSONL or ShareGPT file")


def _open(path: Path) -> BinaryIO:
    check_dataset_path(path)
    try:
        return open(path, "rb")
    except OSError as exc:
        raise DatasetError(f"--dataset {path}: cannot read it ({exc.strerror})") from None


def load_jsonl(path: Path) -> list[DatasetRow]:
    rows: list[DatasetRow] = []
    with _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DatasetError(f"{where}: not valid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            if "messages" in obj:
                msgs = _messages(obj["messages"], where)
                text = "\n".join(str(m.get("content", "")) for m in msgs)
                rows.append(DatasetRow(text, msgs, _max_tokens(obj, where)))
                continue
            prompt = obj.get("prompt", obj.get("text"))
            if not isinstance(prompt, str) or not prompt:
                raise DatasetError(f"{where}: needs a non-empty string 'prompt' or 'messages'")
            rows.append(DatasetRow(prompt, None, _max_tokens(obj, where)))
    if not rows:
        raise DatasetError(f"dataset {path} has no rows")
    return rows


def _sharegpt_list(path: Path) -> list[Any]:
    """A ShareGPT file's JSON list of conversations."""
    try:
        with _open(path) as fh:
            data = orjson.loads(fh.read())
    except orjson.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: a ShareGPT file is a JSON list of conversations")
    return data


def load_sharegpt(path: Path) -> list[DatasetRow]:
    """ShareGPT format: a JSON list of ``{"conversations": [{"from", "value"}, ...]}``.

    The first human turn is the prompt; the reply after it is the reference answer whose
    length sets the output length when none is given. Conversations without a human turn
    followed by a reply are skipped (they carry no request).
    """
    data = _sharegpt_list(path)
    rows: list[DatasetRow] = []
    for i, conv in enumerate(data):
        where = f"{path}: conversation {i}"
        turns = conv.get("conversations") if isinstance(conv, dict) else None
        if not isinstance(turns, list):
            raise DatasetError(f"{where}: missing 'conversations' list")
        for j in range(len(turns) - 1):
            a, b = turns[j], turns[j + 1]
            if not (isinstance(a, dict) and isinstance(b, dict)):
                raise DatasetError(f"{where}: turn {j} is not an object")
            if a.get("from") in ("human", "user") and isinstance(a.get("value"), str):
                if a["value"] and isinstance(b.get("value"), str):
                    rows.append(DatasetRow(a["value"], None, None, reference=b["value"]))
                break
    if not rows:
        raise DatasetError(f"dataset {path} has no usable conversation")
    return rows


def load_dataset(path: Path, fmt: str = "auto") -> list[DatasetRow]:
    if fmt == "auto":
        fmt = "jsonl" if path.suffix in (".jsonl", ".ndjson") else "sharegpt"
    if fmt == "jsonl":
        return load_jsonl(path)
    if fmt == "sharegpt":
        return load_sharegpt(path)
    raise DatasetError(f"unknown dataset format {fmt!r}; use jsonl or sharegpt")


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation's user turns, each with the reply the dataset gives (its length sets
    the turn's output where none is given), and its system message if any."""

    user: tuple[str, ...]
    replies: tuple[str | None, ...]
    system: str | None = None


_USER = ("human", "user")
_REPLY = ("gpt", "assistant", "chatgpt", "bard", "bing", "model")


def load_conversations(path: Path, fmt: str = "auto") -> list[Conversation]:
    """Conversations for multi-turn sessions: ShareGPT's ``conversations`` (``from``:
    ``human``/``gpt``, ``value``) or JSONL rows of ``messages`` (``role``: ``system``,
    ``user``, ``assistant``). Each user message is a turn; the dataset's replies are only
    lengths, the server's own answers go into the conversation."""
    if fmt == "auto":
        fmt = "jsonl" if path.suffix in (".jsonl", ".ndjson") else "sharegpt"
    if fmt == "sharegpt":
        data = _sharegpt_list(path)
        convs = [
            _conversation(
                [(t.get("from"), t.get("value")) for t in c["conversations"] if isinstance(t, dict)]
            )
            for c in data
            if isinstance(c, dict) and isinstance(c.get("conversations"), list)
        ]
    elif fmt == "jsonl":
        convs = [
            _conversation([(m.get("role"), m.get("content")) for m in row.messages])
            for row in load_jsonl(path)
            if row.messages
        ]
    else:
        raise DatasetError(f"unknown dataset format {fmt!r}; use jsonl or sharegpt")
    usable = [c for c in convs if c is not None]
    if not usable:
        raise DatasetError(f"dataset {path} has no conversation with a user message")
    return usable


def _conversation(turns: list[tuple[object, object]]) -> Conversation | None:
    system: str | None = None
    user: list[str] = []
    replies: list[str | None] = []
    for who, text in turns:
        if not isinstance(text, str):
            continue
        if who == "system" and not user:
            system = text
        elif who in _USER and text:
            user.append(text)
            replies.append(None)
        elif who in _REPLY and user and replies[-1] is None:
            replies[-1] = text
    return Conversation(tuple(user), tuple(replies), system) if user else None
