"""``transformers serve`` is named from the routes of its FastAPI app: the answers below are
those a real ``transformers serve`` 5.23 gave (CPU, a generated model, 2026-12-05)."""

from __future__ import annotations

from typing import Any

from infermeter.clients.discovery import discover

#: GET /openapi.json's paths, as transformers serve 5.23 listed them
TSERVE_PATHS = [
    "/health", "/load_model", "/reset", "/v1/audio/transcriptions", "/v1/chat/completions",
    "/v1/completions", "/v1/models", "/v1/responses", "/v1/systemone",
]  # fmt: skip


class _Server:
    """A transport that answers each GET from a table (404 where it has none)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    async def get_json(self, url: str, timeout_s: float = 10.0) -> tuple[int, Any]:
        path = "/" + url.split("/", 3)[3]
        return (200, self.answers[path]) if path in self.answers else (404, None)


async def test_transformers_serve_is_named_by_its_routes() -> None:
    server = _Server(
        {
            "/v1/models": {"object": "list", "data": []},  # it loads models on demand
            "/openapi.json": {"paths": {p: {} for p in TSERVE_PATHS}},
        }
    )
    info = await discover(server, "http://127.0.0.1:1/v1", "/models/m")  # type: ignore[arg-type]
    assert info.kind == "transformers-serve" and info.model == "/models/m"


async def test_another_fastapi_server_stays_unknown() -> None:
    server = _Server(
        {
            "/v1/models": {"object": "list", "data": [{"id": "m"}]},
            "/openapi.json": {"paths": {"/v1/chat/completions": {}, "/v1/models": {}}},
        }
    )
    info = await discover(server, "http://127.0.0.1:1/v1", None)  # type: ignore[arg-type]
    assert info.kind == "unknown"
