"""Poloniex v3 signatures: ccxt's own `poloniex.sign` is the independent implementation.

Every property signs a random request with the real ccxt client, decodes it the way the
emulator receives it (yarl parses the URL as aiohttp does; the body stays raw bytes) and checks
that `verify_rest` accepts it, and that changing any byte of what was signed is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import ccxt
import pytest
import yarl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polytrade.exchange.sim.signing import (
    rest_payload,
    sign_rest,
    sign_ws,
    verify_rest,
    verify_ws,
    ws_payload,
)

KEY = "k-123"
SECRET = "s3cr3t/with+odd=chars"  # noqa: S105 - a throwaway test secret

# Text without surrogates (which cannot be UTF-8 encoded by any HTTP client).
UTF8 = st.characters(exclude_categories=["Cs"])
TEXT = st.text(UTF8, max_size=12)
KEYS = st.text(UTF8, min_size=1, max_size=8).filter(lambda key: key != "signTimestamp")
SCALARS = st.one_of(
    TEXT,
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)
JSON = st.recursive(
    st.one_of(st.none(), SCALARS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
PATHS = st.lists(st.from_regex(r"[A-Za-z0-9_]{1,10}", fullmatch=True), min_size=1, max_size=4).map(
    "/".join
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def client() -> ccxt.poloniex:
    exchange = ccxt.poloniex({"apiKey": KEY, "secret": SECRET})
    exchange.urls["api"] = {"spot": "http://127.0.0.1:1", "swap": "http://127.0.0.1:1"}
    return exchange


CLIENT = client()


def received(signed: dict[str, Any]) -> tuple[str, yarl.URL, bytes, str, str]:
    """What the emulator sees: method, URL (decoded by yarl), raw body, timestamp, signature."""
    url = yarl.URL(signed["url"], encoded=True)
    body = (signed["body"] or "").encode()
    headers = signed["headers"]
    assert headers["key"] == KEY
    return signed["method"], url, body, headers["signTimestamp"], headers["signature"]


# ---------------------------------------------------------------- fixed vectors


def test_get_payload_sorts_the_query_with_sign_timestamp_and_quotes_values() -> None:
    payload = rest_payload(
        "get",
        "/v3/trade/order/opens",
        {"symbol": "BTC_USDT_PERP", "limit": 100, "a b": "x/y", "reduceOnly": True},
        b"ignored",
        1_649_371_360_000,
    )
    assert payload == (
        b"GET\n/v3/trade/order/opens\n"
        b"a%20b=x%2Fy&limit=100&reduceOnly=true&signTimestamp=1649371360000&symbol=BTC_USDT_PERP"
    )


def test_body_payload_signs_the_raw_body_and_drops_it_when_empty() -> None:
    body = b'{"symbol":"BTC_USDT_PERP","ordId":"42"}'
    assert rest_payload("DELETE", "/v3/trade/order", {"x": 1}, body, "1700000000000") == (
        b'DELETE\n/v3/trade/order\nrequestBody={"symbol":"BTC_USDT_PERP","ordId":"42"}'
        b"&signTimestamp=1700000000000"
    )
    assert rest_payload("POST", "/v3/position/mode", {}, b"", 5) == (
        b"POST\n/v3/position/mode\nsignTimestamp=5"
    )


def test_signature_is_base64_hmac_sha256_of_the_payload() -> None:
    payload = b"GET\n/v3/account/balance\nsignTimestamp=1700000000000"
    expected = base64.b64encode(hmac.new(SECRET.encode(), payload, hashlib.sha256).digest())
    assert sign_rest(SECRET, "GET", "/v3/account/balance", {}, b"", 1_700_000_000_000) == (
        expected.decode()
    )


def test_ws_signature_matches_ccxt_pro_recipe() -> None:
    stamp = "1700000000000"
    assert ws_payload(stamp) == b"GET\n/ws\nsignTimestamp=1700000000000"
    # ccxt.pro's authenticate: hmac('GET\n/ws\nsignTimestamp=' + ts, secret, sha256, base64).
    theirs = CLIENT.hmac(
        CLIENT.encode("GET\n/ws\nsignTimestamp=" + stamp),
        CLIENT.encode(SECRET),
        hashlib.sha256,
        "base64",
    )
    assert sign_ws(SECRET, stamp) == theirs
    assert verify_ws(SECRET, stamp, theirs)
    assert not verify_ws(SECRET, "1700000000001", theirs)
    assert not verify_ws("other", stamp, theirs)


# ---------------------------------------------------------------- ccxt differential


@FAST
@given(path=PATHS, params=st.dictionaries(KEYS, SCALARS, max_size=5), symbol=st.none() | TEXT)
def test_ccxt_signed_get_requests_verify(
    path: str, params: dict[str, object], symbol: str | None
) -> None:
    if symbol is not None:
        params = {**params, "symbol": symbol}  # ccxt pre-encodes GET symbols once more
    method, url, body, stamp, signature = received(
        CLIENT.sign(path, ["swapPrivate"], "GET", dict(params))
    )
    assert method == "GET"
    assert url.path == "/" + path
    assert verify_rest(SECRET, method, url.path, url.query, body, stamp, signature)
    assert not verify_rest(SECRET + "x", method, url.path, url.query, body, stamp, signature)


@FAST
@given(
    path=PATHS,
    method=st.sampled_from(["POST", "DELETE", "PUT"]),
    params=st.dictionaries(KEYS, JSON, max_size=5),
)
def test_ccxt_signed_body_requests_verify(path: str, method: str, params: dict[str, Any]) -> None:
    signed = CLIENT.sign(path, ["swapPrivate"], method, dict(params))
    verb, url, body, stamp, signature = received(signed)
    assert (signed["body"] is None) == (not params)
    assert verify_rest(SECRET, verb, url.path, {}, body, stamp, signature)


@FAST
@given(
    params=st.dictionaries(KEYS, JSON, min_size=1, max_size=5),
    position=st.integers(min_value=0),
    replacement=st.integers(min_value=0, max_value=255),
)
def test_changing_any_body_byte_breaks_the_signature(
    params: dict[str, Any], position: int, replacement: int
) -> None:
    _, url, body, stamp, signature = received(
        CLIENT.sign("v3/trade/order", ["swapPrivate"], "POST", dict(params))
    )
    index = position % len(body)
    if body[index] == replacement:
        replacement = (replacement + 1) % 256
    tampered = body[:index] + bytes([replacement]) + body[index + 1 :]
    assert verify_rest(SECRET, "POST", url.path, {}, body, stamp, signature)
    assert not verify_rest(SECRET, "POST", url.path, {}, tampered, stamp, signature)


@FAST
@given(
    params=st.dictionaries(KEYS, TEXT, min_size=1, max_size=4),
    which=st.integers(min_value=0),
    extra=TEXT.filter(bool),
)
def test_changing_a_query_value_breaks_the_signature(
    params: dict[str, str], which: int, extra: str
) -> None:
    _, url, body, stamp, signature = received(
        CLIENT.sign("v3/trade/order/opens", ["swapPrivate"], "GET", dict(params))
    )
    query = dict(url.query)
    key = sorted(query)[which % len(query)]
    query[key] += extra
    assert not verify_rest(SECRET, "GET", url.path, query, body, stamp, signature)


@FAST
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_changing_the_timestamp_path_method_or_signature_breaks_it(
    position: int, replacement: str
) -> None:
    body = b'{"symbol":"BTC_USDT_PERP","ordId":"1"}'
    stamp = "1700000000000"
    signature = sign_rest(SECRET, "DELETE", "/v3/trade/order", {}, body, stamp)
    parts = {"stamp": stamp, "path": "/v3/trade/order", "signature": signature}
    for name, text in parts.items():
        index = position % len(text)
        if text[index] == replacement:
            continue
        changed = {**parts, name: text[:index] + replacement + text[index + 1 :]}
        assert not verify_rest(
            SECRET, "DELETE", changed["path"], {}, body, changed["stamp"], changed["signature"]
        )
    assert not verify_rest(SECRET, "POST", "/v3/trade/order", {}, body, stamp, signature)
    assert verify_rest(SECRET, "DELETE", "/v3/trade/order", {}, body, stamp, signature)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_empty_request_signs_like_ccxt(method: str) -> None:
    signed = CLIENT.sign("v3/account/balance", ["swapPrivate"], method, {})
    verb, url, body, stamp, signature = received(signed)
    assert body == b""
    assert sign_rest(SECRET, verb, url.path, url.query, body, stamp) == signature
