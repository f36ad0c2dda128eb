r"""Poloniex v3 request signatures: REST (HMAC-SHA256 over method, path and parameters) and WS auth.

The recipe is the one `ccxt.poloniex.sign` uses and the v3 futures docs describe
(reference/poloniex.md §3):

- GET: ``"GET\n" + path + "\n" + urlencode(sorted(query + {signTimestamp}))``, with values
  encoded by `urllib.parse.quote` (a space is ``%20``, never ``+``) and booleans written
  ``true``/``false``. The URL itself carries the query without ``signTimestamp``.
- POST, PUT, DELETE: ``METHOD + "\n" + path + "\n" + "requestBody=" + body +
  "&signTimestamp=" + ts``; an empty body drops the ``requestBody=…&`` part.
- The signature is ``base64(HMAC_SHA256(secret, payload))``.
- WS auth signs ``"GET\n/ws\nsignTimestamp=" + ts``.

The body is signed as the exact bytes that travel, so a verifier must be handed the raw
received body, never a re-serialised one. The timestamp is signed as the exact header text
(milliseconds since the epoch), so it is taken as a string or an int and printed as is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    from collections.abc import Mapping

BODY_METHODS: Final = frozenset({"POST", "PUT", "DELETE"})
"""Methods whose parameters travel in a JSON body and are signed as ``requestBody=``."""

WS_AUTH_PATH: Final = "/ws"
"""The path the WS `auth` signature covers, whatever the socket's URL."""


def _query_text(value: object) -> str:
    # ccxt writes Python booleans the way JSON does before it encodes the query.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def rest_payload(
    method: str,
    path: str,
    query: Mapping[str, object],
    body: bytes,
    timestamp_ms: int | str,
) -> bytes:
    """The exact bytes a Poloniex v3 REST signature covers.

    Args:
        method: HTTP method; upper-cased here.
        path: request path as signed, starting with ``/`` and without any URL prefix the
            emulator is mounted under (``/v3/trade/order``).
        query: URL query parameters (GET only; ignored for body methods). Values are the
            decoded texts as received, or the Python values a client is about to send.
        body: the raw request body bytes (body methods only; ignored for GET).
        timestamp_ms: the ``signTimestamp`` header, milliseconds since the epoch.

    Returns:
        The UTF-8 payload that is fed to HMAC-SHA256.
    """
    verb = method.upper()
    stamp = str(timestamp_ms)
    head = f"{verb}\n{path}\n".encode()
    if verb in BODY_METHODS:
        signed_body = b"requestBody=" + body + b"&" if body else b""
        return head + signed_body + b"signTimestamp=" + stamp.encode()
    # The client's own keys win over signTimestamp (ccxt extends {signTimestamp} with the
    # query), then the pairs are sorted by key.
    pairs: dict[str, str] = {"signTimestamp": stamp}
    pairs.update({key: _query_text(value) for key, value in query.items()})
    ordered = sorted(pairs.items(), key=lambda pair: pair[0])
    return head + urlencode(ordered, quote_via=quote).encode()


def sign_rest(
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, object],
    body: bytes,
    timestamp_ms: int | str,
) -> str:
    """The base64 HMAC-SHA256 signature of a v3 REST request (the ``signature`` header).

    Arguments are those of `rest_payload`; `secret` is the API secret as text.
    """
    return _digest(secret, rest_payload(method, path, query, body, timestamp_ms))


def verify_rest(
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, object],
    body: bytes,
    timestamp_ms: int | str,
    signature: str,
) -> bool:
    """Whether `signature` is the one `sign_rest` gives for this request (constant time).

    `body` must be the raw received bytes and `path` the signed path (prefix stripped).
    """
    expected = sign_rest(secret, method, path, query, body, timestamp_ms)
    return hmac.compare_digest(expected.encode(), signature.encode())


def ws_payload(timestamp_ms: int | str) -> bytes:
    r"""The bytes the WS `auth` signature covers: ``GET\n/ws\nsignTimestamp=<ts>``."""
    return f"GET\n{WS_AUTH_PATH}\nsignTimestamp={timestamp_ms}".encode()


def sign_ws(secret: str, timestamp_ms: int | str) -> str:
    """The base64 HMAC-SHA256 signature a private WS `auth` subscription carries."""
    return _digest(secret, ws_payload(timestamp_ms))


def verify_ws(secret: str, timestamp_ms: int | str, signature: str) -> bool:
    """Whether `signature` is the one `sign_ws` gives for `timestamp_ms` (constant time)."""
    return hmac.compare_digest(sign_ws(secret, timestamp_ms).encode(), signature.encode())


def _digest(secret: str, payload: bytes) -> str:
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")
