"""RequestRecord: what one request did, on the run's monotonic clock.

All ``*_ns`` instants are nanoseconds since the run's origin (``perf_counter_ns()`` at run
start); ``run.json`` holds the wall-clock anchor of that origin. The field names follow
``docs/metrics.md`` section 1 (``t_sched``, ``t_send``, ``t_chunk[i]``, ``t_first``, ``t_last``,
``t_end``).
"""

from __future__ import annotations

import types
from dataclasses import MISSING as MISSING_DEFAULT
from dataclasses import asdict, dataclass, field, fields
from typing import Annotated, Any, Literal, TypedDict, Union, get_args, get_origin, get_type_hints

import msgspec

#: Bumped whenever a field changes meaning or is removed. Adding optional fields keeps it.
RECORD_SCHEMA_VERSION = 1

#: Where a token count came from, best first (metrics spec section 2).
#: "predicted": a simulated run's (``infermeter simulate``), counted by no server.
TokenSource = Literal["server", "server-stream", "tokenizer", "chunks", "predicted"]
TOKEN_SOURCES: tuple[str, ...] = ("server", "server-stream", "tokenizer", "chunks", "predicted")

#: How a record's per-chunk token counts ``k[i]`` were found: the server's per-chunk usage,
#: the engine itself (in-process: one token a step), one per chunk (the counts agree),
#: spread over the chunks by their text, or not at all.
ChunkTokenSource = Literal["server-stream", "server", "one-per-chunk", "spread", "chunks"]

#: Failure classes (metrics spec section 4, error rate).
ErrorKind = Literal[
    "http", "timeout", "connection", "protocol", "incomplete_stream", "server_error", "cancelled"
]


@dataclass(slots=True)
class RequestRecord:
    """One request. Failed requests keep whatever timing they reached."""

    id: int
    #: "measure" (counted), "warmup" (sent first, excluded) or "probe" (the pre-flight
    #: request, kept with the warm-up: it takes a server slot too).
    phase: str = "measure"
    api: str = "chat"
    worker: int = 0
    #: A multi-turn session's number and this request's turn in it (from 0); None outside one.
    session: int | None = None
    turn: int | None = None
    # -- instants (ns since the run origin) --
    t_sched_ns: int = 0
    t_send_ns: int = 0
    #: Time spent opening a new connection before ``t_send`` (0: a pooled one was reused).
    connect_ns: int = 0
    t_first_ns: int | None = None
    t_last_ns: int | None = None
    t_end_ns: int = 0
    #: Arrival of each chunk that carried at least one output token.
    chunk_ns: list[int] = field(default_factory=list)
    #: ``k[i]``: tokens carried by chunk i; ``sum(chunk_tokens) == n_out`` for completed requests.
    chunk_tokens: list[int] = field(default_factory=list)
    chunk_tokens_source: ChunkTokenSource = "chunks"
    #: False when the server ignored ``stream`` and sent the whole answer at once: its TTFT
    #: is its E2E, and it has no TPOT or ITL (metrics spec section 7).
    streamed: bool = True
    #: Output tokens read together with the first token, under its stamp: the client could
    #: not read while they arrived, so TTFT may be late and TPOT low (metrics spec section 7).
    first_stamp_shared: int = 0
    #: Chunks that carried no output token (role-only, empty, usage-only).
    n_other_chunks: int = 0
    #: Times the request was re-sent because a pooled connection was already closed by the
    #: server before anything was read (``t_send_ns`` is the last attempt's).
    send_retries: int = 0
    # -- what was asked --
    n_in_target: int | None = None
    n_out_target: int | None = None
    # -- token counts and their source --
    n_in: int | None = None
    n_in_source: TokenSource | None = None
    n_out: int = 0
    n_out_source: TokenSource = "chunks"
    n_reason: int = 0
    #: The first chunk of answer (content or a tool call, not reasoning): an index into
    #: ``chunk_ns``; None where no chunk carried answer text.
    answer_chunk: int | None = None
    n_cached: int | None = None
    finish_reason: str | None = None
    # -- outcome --
    ok: bool = False
    http_status: int | None = None
    error_kind: ErrorKind | None = None
    error_message: str | None = None
    # -- server-side extras, kept raw --
    usage: dict[str, Any] | None = None
    server_timings: dict[str, Any] | None = None
    # -- the prompt's prefix structure, without its text (the proxy records it) --
    #: Chained, salted hashes of the prompt's whole blocks (``workload/prefix_hash.py``).
    prompt_blocks: list[str] | None = None
    #: Characters per block, and the prompt's length in characters.
    prompt_block_chars: int | None = None
    prompt_chars: int | None = None
    v: int = RECORD_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class RecordJson(TypedDict, total=False):
    """A record as one line of ``records.jsonl`` holds it (see :class:`RequestRecord` for each
    field); a field left out takes the dataclass default."""

    id: int
    phase: str
    api: str
    worker: int
    session: int | None
    turn: int | None
    t_sched_ns: int
    t_send_ns: int
    connect_ns: int
    t_first_ns: int | None
    t_last_ns: int | None
    t_end_ns: int
    chunk_ns: list[int]
    chunk_tokens: list[int]
    chunk_tokens_source: ChunkTokenSource
    streamed: bool
    first_stamp_shared: int
    n_other_chunks: int
    send_retries: int
    n_in_target: int | None
    n_out_target: int | None
    n_in: int | None
    n_in_source: TokenSource | None
    n_out: int
    n_out_source: TokenSource
    n_reason: int
    answer_chunk: int | None
    n_cached: int | None
    finish_reason: str | None
    ok: bool
    http_status: int | None
    error_kind: ErrorKind | None
    error_message: str | None
    usage: dict[str, Any] | None
    server_timings: dict[str, Any] | None
    prompt_blocks: list[str] | None
    prompt_block_chars: int | None
    prompt_chars: int | None
    v: int


def json_kind(value: object) -> str:
    """What a parsed JSON value is, in words: ``a list``, ``an integer``, ``null``..."""
    for kind, word in _KIND_WORDS.items():
        if type(value) is kind:
            return word
    return type(value).__name__


_KIND_WORDS: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _json_types(hint: Any) -> frozenset[type]:
    """The types orjson gives for a value of a field annotated ``hint``."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return frozenset().union(*(_json_types(arg) for arg in get_args(hint)))
    if origin in (list, dict):
        return frozenset({origin})
    if origin is Literal:  # a closed set of strings (token sources, error kinds)
        return frozenset(type(arg) for arg in get_args(hint))
    # A float field may be written as a whole number; a bool is never an int here.
    return frozenset({int, float}) if hint is float else frozenset({hint})


_HINTS = get_type_hints(RequestRecord)
#: Each field's accepted JSON types, checked on every line read back.
_FIELD_TYPES = {name: _json_types(hint) for name, hint in _HINTS.items()}
#: Fields that are lists of integers (instants, token counts), checked item by item.
_INT_LISTS = frozenset(
    name for name, hint in _HINTS.items() if get_origin(hint) is list and get_args(hint) == (int,)
)


def record_problem(data: object) -> str | None:
    """Why a parsed line cannot be a record, in words (None: it can). Fields this version
    does not know are left to :meth:`RequestRecord.from_dict`, which drops them."""
    if not isinstance(data, dict):
        return f"{json_kind(data)}, not a record object"
    if "id" not in data:
        return "a record without an 'id'"
    for name, value in data.items():
        allowed = _FIELD_TYPES.get(name)
        if allowed is None:
            continue
        if type(value) not in allowed:
            expected = " or ".join(sorted({_KIND_WORDS[t] for t in allowed}))
            return f"field {name!r} is {json_kind(value)}, expected {expected}"
        if name in _INT_LISTS and not set(map(type, value)) <= {int}:
            return f"field {name!r} holds something other than integers"
    return None


#: Each optional field's value where a line leaves it out: the dataclass default (one
#: object, shared by every row, never changed).
_DEFAULTS: dict[str, object] = {
    f.name: f.default_factory() if callable(f.default_factory) else f.default
    for f in fields(RequestRecord)
    if f.default is not MISSING_DEFAULT or callable(f.default_factory)
}


def field_default(name: str) -> object:
    """An optional field's value where a line leaves it out."""
    return _DEFAULTS[name]


#: The types a column may hold: the field's JSON types, and its default's.
_COLUMN_TYPES = {
    name: allowed | ({type(_DEFAULTS[name])} if name in _DEFAULTS else set())
    for name, allowed in _FIELD_TYPES.items()
}


#: The fields of a record, in the order infermeter writes them.
COLUMN_FIELDS: tuple[str, ...] = tuple(_COLUMN_TYPES)


def columns_have_types(columns: dict[str, list[Any]]) -> bool:
    """Every value of every column has a type its field accepts."""
    return all(set(map(type, values)) <= _COLUMN_TYPES[name] for name, values in columns.items())


_INT64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]


def _decoded_type(allowed: frozenset[type] | set[type]) -> Any:
    """The msgspec type that accepts exactly the JSON types ``allowed`` (an integer within
    64 bits, as the columns will hold it), and gives each value as orjson would."""
    kinds = [_INT64 if t is int else None if t is type(None) else t for t in allowed]
    return Union[tuple(kinds)] if len(kinds) > 1 else kinds[0]  # built at run time


def _decoded_field(name: str) -> tuple[str, Any] | tuple[str, Any, Any]:
    kind = _decoded_type(_COLUMN_TYPES[name])
    if name not in _DEFAULTS:
        return (name, kind)
    default = _DEFAULTS[name]
    if isinstance(default, list | dict):
        return (name, kind, msgspec.field(default_factory=type(default)))
    return (name, kind, default)


def scalar_decoder(names: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    """A decoder of a record line's fields ``names`` (the others are skipped), checking each
    value's JSON type as :func:`columns_have_types` does and giving a field that a line
    leaves out its default; it raises :class:`msgspec.DecodeError` where a line does not
    pass."""
    decoded = [_decoded_field(name) for name in names]
    ordered = [f for f in decoded if len(f) == 2] + [f for f in decoded if len(f) == 3]
    struct = msgspec.defstruct("RecordFields", ordered, gc=False)
    return msgspec.json.Decoder(struct)


def record_columns(rows: list[object]) -> dict[str, list[Any]] | None:
    """Every field of ``rows`` as a column (the default where a row leaves it out), when every
    row is a record object with an id and fields of the right JSON types; None when some row
    is not (:func:`record_problem` then says which and why). The items of the integer lists
    are left to the reader, which checks them as it makes arrays of them."""
    if set(map(type, rows)) - {dict}:
        return None
    records: list[dict[str, object]] = rows  # type: ignore[assignment]  # all dicts, checked
    if not all("id" in r for r in records):
        return None
    columns = {name: [r.get(name, _DEFAULTS.get(name)) for r in records] for name in COLUMN_FIELDS}
    return columns if columns_have_types(columns) else None
