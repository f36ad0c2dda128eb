"""Refuse secrets written into YAML: specs live in git, secrets never do.

A key that names a secret (api key, secret, password, passphrase, token, private key) with a
value, and any URL with a password in it, is an error. Only the NAME of an environment
variable (`api_key_env: POLONIEX_API_KEY`) or the path of a 0600 file (`*_file`) may be given.
The offending value is never repeated in a message.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any, Final

from polytrade.spec.semantics import Finding, PathT

if TYPE_CHECKING:
    from collections.abc import Iterator

_WORDS: Final = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_SECRET_WORDS: Final = frozenset(
    {
        "secret",
        "secrets",
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "credential",
        "credentials",
        "apikey",
        "apisecret",
        "apitoken",
        "privatekey",
        "token",
        "tokens",
    }
)
_SECRET_PAIRS: Final = frozenset({("api", "key"), ("api", "keys"), ("private", "key")})
_NOT_A_SECRET: Final = frozenset(
    {
        "count",
        "counts",
        "max",
        "min",
        "limit",
        "limits",
        "budget",
        "len",
        "length",
        "size",
        "num",
        "number",
        "rate",
        "per",
        "ttl",
        "expiry",
        "expires",
    }
)
"""Words that make a key a setting about tokens (`max_tokens`), not a token itself."""
_REFERENCE_SUFFIX: Final = frozenset({"env", "file", "path"})
# user:password@ in a URL; the password may itself hold an unescaped "@".
_URL_WITH_PASSWORD: Final = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:([^/\s]+)@", re.IGNORECASE)


MIN_REDACTED: Final = 4
"""Secret values at least this long are masked wherever a message would repeat them."""


def find_secrets(data: Any, path: PathT = ()) -> Iterator[Finding]:
    """Every place in raw YAML data where a secret value is written out."""
    for finding, _ in _scan(data, path):
        yield finding


def secret_texts(data: Any) -> set[str]:
    """The secret values in raw YAML data (whole values, and the passwords inside URLs).

    Messages about other problems may quote a value (`unknown kind '...'`); the loader masks
    these texts in every message so that a secret is never printed.
    """
    return {text for _, texts in _scan(data, ()) for text in texts if len(text) >= MIN_REDACTED}


def _scan(data: Any, path: PathT) -> Iterator[tuple[Finding, tuple[str, ...]]]:
    if isinstance(data, dict):
        for key, value in data.items():
            child = (*path, key)
            if _is_secret_key(key) and _has_value(value):
                finding = Finding(
                    child,
                    "a secret is written into the spec",
                    f"never commit secrets: set an environment variable and give its name as "
                    f"{_env_key(key)}: YOUR_VARIABLE",
                    code="secret",
                )
                values = value if isinstance(value, list) else [value]
                texts = [v if isinstance(v, str) else repr(v) for v in values if _has_value(v)]
                yield finding, tuple(t for text in texts for t in (text, text.strip()))
            else:
                yield from _scan(value, child)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _scan(item, (*path, index))
    elif isinstance(data, str) and _URL_WITH_PASSWORD.search(data):
        finding = Finding(
            path,
            "a URL with a password is written into the spec",
            "keep the URL in an environment variable and name it with a *_env key (e.g. url_env)",
            code="secret",
        )
        yield finding, tuple(match.group(1) for match in _URL_WITH_PASSWORD.finditer(data))


def _is_secret_key(key: str) -> bool:
    """Whether a key names a secret: `api_key`, `apiSecret`, `secretKey`, `db-password`...

    Keys are split into words (snake, kebab and camel case); `*_env`, `*_file` and `*_path`
    name where a secret is, and `max_tokens`-like keys are settings, not secrets.
    """
    words = [word.lower() for word in _WORDS.findall(key)]
    if not words or words[-1] in _REFERENCE_SUFFIX or _NOT_A_SECRET.intersection(words):
        return False
    return bool(_SECRET_WORDS.intersection(words)) or any(
        pair in _SECRET_PAIRS for pair in itertools.pairwise(words)
    )


def _has_value(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_value(item) for item in value)
    # Only scalars are secrets; a mapping under `credentials:` is searched key by key.
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float) and not isinstance(value, bool)


def _env_key(key: str) -> str:
    return f"{key}_env"
