"""Token counting for exact prompt lengths: a local ``tokenizer.json`` (or HF folder) through
the ``tokenizers`` package, or the server's own ``/tokenize`` endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import orjson

from infermeter.errors import UsageError


class TokenCounter(Protocol):
    """Counts the tokens of prompt text as the model sees it (no special tokens)."""

    name: str

    async def count(self, text: str) -> int: ...


class LocalTokenizer:
    """A Hugging Face ``tokenizer.json`` (or a folder holding one)."""

    def __init__(self, path: Path) -> None:
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.exists():
            raise UsageError(f"--tokenizer: no tokenizer.json at {path}")
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise UsageError(
                "--tokenizer needs the 'tokenizers' package: pip install 'infermeter[tokenizer]'"
            ) from None
        try:
            self._tok = Tokenizer.from_file(str(file))
        except Exception as exc:  # the Rust side raises a plain Exception
            raise UsageError(f"--tokenizer: cannot load {file}: {exc}") from None
        self.name = f"local:{file}"

    def count_sync(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    async def count(self, text: str) -> int:
        return self.count_sync(text)


class ServerTokenizer:
    """The server's ``/tokenize`` (llama.cpp: ``content``; vLLM/SGLang: ``prompt``)."""

    def __init__(self, post_json: Any, origin: str, model: str, style: str) -> None:
        self._post = post_json
        self._url = origin.rstrip("/") + "/tokenize"
        self._model = model
        self._style = style
        self.name = f"server:{self._url}"

    async def count(self, text: str) -> int:
        if self._style == "llama.cpp":
            body: dict[str, Any] = {"content": text, "add_special": False}
        else:
            body = {"model": self._model, "prompt": text, "add_special_tokens": False}
        status, obj = await self._post(self._url, orjson.dumps(body))
        if status != 200 or not isinstance(obj, dict):
            raise UsageError(f"server tokenizer {self._url} answered HTTP {status}")
        if isinstance(obj.get("count"), int):
            return int(obj["count"])
        tokens = obj.get("tokens")
        if not isinstance(tokens, list):
            raise UsageError(f"server tokenizer {self._url} returned no tokens")
        return len(tokens)
