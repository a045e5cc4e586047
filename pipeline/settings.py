"""Where the connection settings come from: flags, then the environment, then defaults.

The API key is read from KAYSE_API_KEY or from a file (--api-key-file), never from a flag's
value, so it does not end up in `ps`, shell history or a scheduler's logged command line. The
`Connection` value masks it in every repr.

The key travels in a header of every request, so a base URL with plain `http://` to anything
but this machine (loopback: 127.0.0.0/8, ::1, localhost) is refused: it would send the key in
clear. `--allow-insecure-http`, `allow_insecure_http=True` or KAYSE_ALLOW_INSECURE_HTTP=1 allow
it on purpose (a test server on the local network, a TLS-terminating proxy next door).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.model import UserError

__all__ = [
    "INSECURE_HTTP_ENV",
    "PRODUCTION_BASE_URL",
    "Connection",
    "check_transport",
    "key_fingerprint",
    "resolve_connection",
]

PRODUCTION_BASE_URL = "https://public-api.kayse.ai/v1"
INSECURE_HTTP_ENV = "KAYSE_ALLOW_INSECURE_HTTP"
"""Set to 1 to allow plain http:// to a host that is not this machine (for cron, with no flags)."""


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(base_url: str, *, allow_insecure_http: bool = False) -> None:
    """Refuse plain http:// to a host that is not loopback: the key would cross the network in
    clear. Allowed by `allow_insecure_http` or KAYSE_ALLOW_INSECURE_HTTP=1."""
    parts = urlsplit(base_url)
    if parts.scheme.lower() != "http" or _is_loopback(parts.hostname or ""):
        return
    if allow_insecure_http or os.environ.get(INSECURE_HTTP_ENV, "").strip() == "1":
        return
    raise UserError(
        f"the base URL {base_url} uses plain http:// to {parts.hostname}, which would send the API key "
        "across the network unencrypted",
        hint=f"use https://; or, if you mean it, pass --allow-insecure-http (or set {INSECURE_HTTP_ENV}=1)",
    )


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible label for a key: "sha256:" + 12 hex characters.

    The same text as `pipeline.kayse.key_fingerprint` (a test holds them together), computed
    here so that settings, and `validate` with them, need no HTTP stack.
    """
    return "sha256:" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Connection:
    """Where to send requests and with which key. Refuses plain http:// beyond loopback unless
    `allow_insecure_http` (see `check_transport`)."""

    base_url: str
    api_key: str = field(repr=False)
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        check_transport(self.base_url, allow_insecure_http=self.allow_insecure_http)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.api_key)

    def __repr__(self) -> str:
        return f"Connection(base_url={self.base_url!r}, key={self.fingerprint})"


def resolve_base_url(flag: str | None, *, allow_insecure_http: bool = False) -> str:
    url = (flag or os.environ.get("KAYSE_BASE_URL") or PRODUCTION_BASE_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"base URL {url!r} is not an http(s) URL", hint="e.g. https://public-api.kayse.ai/v1")
    check_transport(url, allow_insecure_http=allow_insecure_http)
    return url


def read_api_key(
    key_file: Path | None, *, env: str, service: str, hint: str, required: bool = True
) -> str | None:
    """The key from `key_file` (the --api-key-file flag), else the `env` variable: never a flag
    value. When it is missing and `required`, the error names every place it looked."""
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
    key = os.environ.get(env, "").strip()
    if key:
        return key
    if not required:
        return None
    raise UserError(
        f"no {service} API key: looked in --api-key-file (not given) and the {env} environment variable (not set)",
        hint=hint,
    )


def resolve_api_key(key_file: Path | None, *, required: bool = True) -> str | None:
    """The Kayse key from --api-key-file, else KAYSE_API_KEY."""
    return read_api_key(
        key_file,
        env="KAYSE_API_KEY",
        service="Kayse",
        hint="export KAYSE_API_KEY=… (Company Settings → API Keys in Kayse), or use --api-key-file PATH",
        required=required,
    )


def resolve_connection(
    base_url: str | None, key_file: Path | None, *, allow_insecure_http: bool = False
) -> Connection:
    """The base URL (flag, KAYSE_BASE_URL, production) and key; plain http:// beyond loopback
    only with `allow_insecure_http` (the `--allow-insecure-http` flag) or its variable."""
    url = resolve_base_url(base_url, allow_insecure_http=allow_insecure_http)
    return Connection(url, resolve_api_key(key_file) or "", allow_insecure_http=allow_insecure_http)
