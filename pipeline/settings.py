"""Where the connection settings come from: flags, then the environment, then defaults.

The API key is read from KAYSE_API_KEY or from a file (--api-key-file), never from a flag's
value, so it does not end up in `ps`, shell history or a scheduler's logged command line. The
`Connection` value masks it in every repr.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.model import UserError

__all__ = ["PRODUCTION_BASE_URL", "Connection", "key_fingerprint", "resolve_connection"]

PRODUCTION_BASE_URL = "https://public-api.kayse.ai/v1"


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible label for a key: "sha256:" + 12 hex characters.

    The same text as `pipeline.kayse.key_fingerprint` (a test holds them together), computed
    here so that settings, and `validate` with them, need no HTTP stack.
    """
    return "sha256:" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Connection:
    base_url: str
    api_key: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.api_key)

    def __repr__(self) -> str:
        return f"Connection(base_url={self.base_url!r}, key={self.fingerprint})"


def resolve_base_url(flag: str | None) -> str:
    url = (flag or os.environ.get("KAYSE_BASE_URL") or PRODUCTION_BASE_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"base URL {url!r} is not an http(s) URL", hint="e.g. https://public-api.kayse.ai/v1")
    return url


def resolve_api_key(key_file: Path | None, *, required: bool = True) -> str | None:
    """The key from --api-key-file, else KAYSE_API_KEY. Says every place it looked when missing."""
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise UserError(
                f"cannot read the API key file {key_file}: {error.strerror}",
                hint="check the --api-key-file path and that this user may read it",
            ) from None
        if not key:
            raise UserError(
                f"the API key file {key_file} is empty", hint="put the key on the file's first line"
            )
        return key
    key = os.environ.get("KAYSE_API_KEY", "").strip()
    if key:
        return key
    if not required:
        return None
    raise UserError(
        "no Kayse API key: looked in --api-key-file (not given) and the KAYSE_API_KEY environment variable (not set)",
        hint="export KAYSE_API_KEY=… (Company Settings → API Keys in Kayse), or use --api-key-file PATH",
    )


def resolve_connection(base_url: str | None, key_file: Path | None) -> Connection:
    return Connection(resolve_base_url(base_url), resolve_api_key(key_file) or "")
