"""Masking secrets in log lines and error messages.

A `Redactor` holds the secret values this process knows (the plugged.in API key, HTTP API keys,
the env and header values of upstream servers whose names look secret) and replaces each with
`***` wherever it appears in a text. Patterns that are secret whatever their value are masked too:
`Bearer <token>`, plugged.in keys (`pg_in_…`), the userinfo of a URL (`https://user:pass@host`) and
query parameters such as `?api_key=` or `&token=`.

The CLI makes one `Redactor` per run, installs a `RedactingFilter` with it on its stderr handler,
and renders errors through it; whatever learns a secret registers it there. Everything is one
precompiled alternation, rebuilt only when a new secret is registered, so a log record costs one
`re.sub`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["MASK", "RedactingFilter", "Redactor", "looks_secret"]

MASK = "***"

# Shorter values (flags such as `1` or `true`, short user names) would blank out ordinary words and numbers.
MIN_SECRET_LENGTH = 6
# Rotated tokens keep arriving from the App; the oldest are forgotten past this many, so memory stays bounded.
MAX_SECRETS = 1024

# `AUTH` covers `X-Auth-Token` and `OAUTH_…`, but not `GIT_AUTHOR_NAME`.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTHORIZATION|AUTH(?!OR)|COOKIE", re.IGNORECASE)

# Secret whatever their value. Each alternative is a named group so `_mask` knows what to keep.
_PATTERNS = (
    r"(?P<bearer>\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]{8,}",
    r"(?P<pgin>\bpg_in_)[A-Za-z0-9]{8,}",
    r"(?<=://)(?P<userinfo>[^\s/@]+)@",
    r"(?P<param>[?&;](?i:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|token|secret|password|auth|key)=)"
    r"[^&#\s\"']+",
)
_STATIC = re.compile("|".join(_PATTERNS))


def looks_secret(name: str) -> bool:
    """Whether a variable or header named `name` probably holds a secret (`*KEY*`, `*TOKEN*`, `Authorization`, …)."""
    return _SECRET_NAME.search(name) is not None


class Redactor:
    """The secret values known to this process, and `redact()` to mask them (and secret patterns) in a text."""

    def __init__(self) -> None:
        self._secrets: dict[str, None] = {}
        self._lock = threading.Lock()
        self._pattern = _STATIC

    def add(self, *values: str | SecretStr | None) -> None:
        """Register secret values; `None`, and values too short to mask safely, are ignored."""
        fresh: list[str] = []
        for value in values:
            text = value if value is None or isinstance(value, str) else value.get_secret_value()
            if not text:
                continue
            text = text.strip()
            # `Bearer abc…`, `Basic abc…`: the credential alone may also appear on its own.
            candidates = (text, text.rsplit(None, 1)[-1]) if " " in text else (text,)
            fresh.extend(c for c in candidates if len(c) >= MIN_SECRET_LENGTH and c not in self._secrets)
        if fresh:
            with self._lock:
                for text in fresh:
                    self._secrets[text] = None
                while len(self._secrets) > MAX_SECRETS:
                    del self._secrets[next(iter(self._secrets))]
                self._pattern = self._compile()

    def add_named(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Register the values of `(name, value)` pairs whose names look secret (env variables, headers)."""
        self.add(*(value for name, value in pairs if looks_secret(name)))

    def redact(self, text: str) -> str:
        """`text` with every registered secret and every secret pattern replaced by `***`."""
        return self._pattern.sub(_mask, text)

    def _compile(self) -> re.Pattern[str]:
        # Longest first, so a secret that contains another is masked whole; before the patterns, so an exact
        # value wins where both match.
        values = sorted(self._secrets, key=len, reverse=True)
        return re.compile("|".join([f"(?:{'|'.join(map(re.escape, values))})", *_PATTERNS]))


def _mask(match: re.Match[str]) -> str:
    kept = match.group("bearer") or match.group("pgin") or match.group("param")
    if kept:
        return kept + MASK
    if match.group("userinfo"):
        return MASK + "@"
    return MASK


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in each record's message, traceback and stack, in place."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as logging always does
            return True
        # Kept formatted: the handler's formatter then uses the masked text instead of formatting again.
        record.msg, record.args = self.redactor.redact(message), None
        if record.exc_info and not record.exc_text:
            # Rendered here, as the handler's formatter would, so the traceback is masked before it is written.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True
