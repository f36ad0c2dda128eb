"""Refuse secrets written into YAML: specs live in git, secrets never do.

A key that names a secret (api key, secret, password, passphrase, token, private key) with a
value, and any URL with a password in it, is an error. Only the NAME of an environment
variable (`api_key_env: POLONIEX_API_KEY`) or the path of a 0600 file (`*_file`) may be given.
The offending value is never repeated in a message.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from polytrade.spec.semantics import Finding, PathT

if TYPE_CHECKING:
    from collections.abc import Iterator

_SECRET_KEY: Final = re.compile(
    r"(?i)(^|[_-])(api[_-]?key|apikey|secret|password|passwd|passphrase|token|private[_-]?key|"
    r"credentials?)s?($|[_-])"
)
_REFERENCE_SUFFIX: Final = re.compile(r"(?i)[_-](env|file|path)$")
_URL_WITH_PASSWORD: Final = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)


def find_secrets(data: Any, path: PathT = ()) -> Iterator[Finding]:
    """Every place in raw YAML data where a secret value is written out."""
    if isinstance(data, dict):
        for key, value in data.items():
            child = (*path, key)
            if _is_secret_key(key) and _has_value(value):
                yield Finding(
                    child,
                    "a secret is written into the spec",
                    f"never commit secrets: set an environment variable and give its name as "
                    f"{_env_key(key)}: YOUR_VARIABLE",
                    code="secret",
                )
            else:
                yield from find_secrets(value, child)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from find_secrets(item, (*path, index))
    elif isinstance(data, str) and _URL_WITH_PASSWORD.search(data):
        yield Finding(
            path,
            "a URL with a password is written into the spec",
            "keep the URL in an environment variable and name it with a *_env key (e.g. url_env)",
            code="secret",
        )


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _REFERENCE_SUFFIX.search(key)


def _has_value(value: Any) -> bool:
    # Only scalars are secrets; a mapping under `credentials:` is searched key by key.
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float) and not isinstance(value, bool)


def _env_key(key: str) -> str:
    return f"{key}_env"
