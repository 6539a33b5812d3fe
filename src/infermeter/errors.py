"""One exception hierarchy. Every user-facing failure is an :class:`InfermeterError` whose
message is a single line the CLI prints as is, with the exit code the error class carries."""

from __future__ import annotations


class InfermeterError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # Keep messages to one line: the CLI contract is "a one-line message, no traceback".
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class UsageError(InfermeterError):
    """Bad flags, an impossible configuration, unreadable input. Exit code 2."""

    exit_code = 2


class DatasetError(UsageError):
    """A dataset file or one of its rows cannot be used (names file and line)."""


class OutputError(UsageError):
    """A file of a run cannot be written (a full disk, a read-only folder): the path and
    the system's reason, never a traceback."""

    @classmethod
    def writing(cls, path: object, exc: OSError) -> OutputError:
        return cls(f"cannot write {path}: {exc.strerror or exc}")


class ServerError(InfermeterError):
    """The target server is unreachable or answered the pre-flight check with an error."""

    exit_code = 3


class EngineError(InfermeterError):
    """Building, generating a model for, or starting a local engine failed."""

    exit_code = 4


class RunFailed(InfermeterError):
    """The run finished but failed requests exceeded the allowed error rate."""

    exit_code = 1
