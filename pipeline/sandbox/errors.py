"""The one error the sandbox raises to a person: it cannot start as asked.

A type of its own (not the pipeline's `UserError`) so the sandbox imports nothing else of the
pipeline; the CLI maps it to an exit code beside its own usage errors.
"""

from __future__ import annotations


class SandboxError(Exception):
    """A bad setting, a port in use, an unusable --db: `message` is one line, `hint` what to try."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"
