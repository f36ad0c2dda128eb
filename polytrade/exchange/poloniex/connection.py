"""How Polytrade opens a ccxt client on Poloniex v3 futures, or on the loopback emulator.

One place builds every `ccxt.async_support.poloniex` Polytrade uses, so the pitfalls of
reference/poloniex.md §7 that are settings are settled once: ``defaultType: swap`` (calls
without a symbol otherwise hit spot endpoints), both ``urls['api']`` keys overridden together
for the emulator (ccxt signs swap calls against ``['swap']`` and the rest against ``['spot']``),
``set_sandbox_mode`` never called (it drops the ``swap`` URL), proxies from the environment
ignored (ccxt's default), and ccxt's own rate limiter off: Polytrade's limiter in the adapter
knows the venue's per-endpoint quotas, ccxt's single bucket does not.

The client is `PoloniexClient`, ccxt's own class with three hooks and nothing else changed:

- it signs with ``clock_offset_ms`` added to the local clock (`PoloniexAdapter.sync_clock`
  measures the offset against the venue's ``/timestamp``), since ccxt has no time
  synchronisation for Poloniex and the venue refuses a ``signTimestamp`` more than 1 s ahead;
- it sends ``recvWindow`` (header, milliseconds) with every signed request, so a request still
  travelling after that long can no longer be accepted: this bounds how long after sending a
  lost create can still become an order, which is what lets the adapter call a create whose
  reply was lost "not placed" when a lookup finds nothing after the window;
- a 2xx reply whose body is not JSON (cut short on the way) raises ccxt's ``BadResponse``
  instead of being handed to ccxt's parsers, which would raise a bare TypeError or parse the
  text as if it were data; and a ``Retry-After`` header is kept on the raised exception as
  ``retry_after_s``.

Credentials come only from the environment or from a file readable by its owner alone
(mode 0600 or stricter); they never appear in a repr, a log line or an error message.

Usage::

    credentials = Credentials.from_environment()          # POLYTRADE_API_KEY / _SECRET
    client = open_client(credentials, rest_url="http://127.0.0.1:8765")
    try:
        await client.load_markets()
    finally:
        await client.close()
"""

from __future__ import annotations

import email.utils
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]
from ccxt.base import errors as ccxt_errors  # type: ignore[import-untyped]

from polytrade.errors import UsageError

KEY_VARIABLE: Final = "POLYTRADE_API_KEY"
SECRET_VARIABLE: Final = "POLYTRADE_API_SECRET"  # noqa: S105 - a variable name
FILE_VARIABLE: Final = "POLYTRADE_API_CREDENTIALS_FILE"
"""A file of lines ``key=...`` and ``secret=...`` (mode 0600), instead of the two above."""

DEFAULT_TIMEOUT_MS: Final = 10_000
DEFAULT_RECV_WINDOW_MS: Final = 5_000
"""How long after signing the venue may still accept a request (its own limit: one minute)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key and secret; both hidden from `repr` so they cannot leak into logs."""

    key: str = field(repr=False)
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.key or not self.secret:
            raise UsageError("an API key and secret must both be non-empty")

    @classmethod
    def from_environment(
        cls,
        environ: dict[str, str] | None = None,
        *,
        key_variable: str = KEY_VARIABLE,
        secret_variable: str = SECRET_VARIABLE,
    ) -> Credentials:
        """Read the pair from the environment, or from the 0600 file `FILE_VARIABLE` names.

        Raises:
            UsageError: neither source is set, only half of the pair is, or the file is
                readable by others (the message names variables and the file, never a value).
        """
        env = os.environ if environ is None else environ
        key, secret = env.get(key_variable, ""), env.get(secret_variable, "")
        if key and secret:
            return cls(key, secret)
        if key or secret:
            missing = secret_variable if key else key_variable
            raise UsageError(f"{missing} is not set; set both {key_variable} and {secret_variable}")
        path = env.get(FILE_VARIABLE, "")
        if not path:
            raise UsageError(
                f"no API credentials: set {key_variable} and {secret_variable}, or "
                f"{FILE_VARIABLE} to a file of mode 0600 with lines key=... and secret=..."
            )
        return cls.from_file(Path(path))

    @classmethod
    def from_file(cls, path: Path) -> Credentials:
        """Read ``key=...`` and ``secret=...`` lines from a file only its owner may read."""
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(
                f"{path}: cannot read the credentials file ({error.strerror})"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(
                f"{path}: the credentials file is readable by others (mode "
                f"{stat.S_IMODE(mode):04o}); run chmod 600 {path}"
            )
        values: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            name, sep, value = stripped.partition("=")
            if not sep or name.strip() not in {"key", "secret"}:
                raise UsageError(f"{path}:{number}: expected key=... or secret=...")
            values[name.strip()] = value.strip()
        if "key" not in values or "secret" not in values:
            raise UsageError(f"{path}: the file needs both a key=... and a secret=... line")
        return cls(values["key"], values["secret"])


class PoloniexClient(ccxt_async.poloniex):  # type: ignore[misc] # ccxt is untyped
    """`ccxt.async_support.poloniex` with a clock offset, ``recvWindow`` and strict bodies.

    Attributes:
        clock_offset_ms: added to the local clock when signing (venue minus local, ms).
        recv_window_ms: sent as the ``recvWindow`` header of signed requests; None: not sent
            (the venue then accepts a request up to one minute after its timestamp).
    """

    clock_offset_ms: int = 0
    recv_window_ms: int | None = None
    _retry_after_s: float | None = None

    def nonce(self) -> int:
        """The ``signTimestamp``: local milliseconds plus the measured offset to the venue."""
        return int(self.milliseconds()) + self.clock_offset_ms

    def sign(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - ccxt's untyped signature
        """Sign as ccxt does, plus ``recvWindow`` on signed requests."""
        request = super().sign(*args, **kwargs)
        headers = request.get("headers")
        if self.recv_window_ms is not None and headers and "signTimestamp" in headers:
            headers["recvWindow"] = str(self.recv_window_ms)
        return request

    def handle_errors(  # noqa: PLR0913, PLR0917 - ccxt's hook signature
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        headers: dict[str, str] | None,
        body: str,
        response: object,
        request_headers: object,
        request_body: object,
    ) -> None:
        """Map v3 errors as ccxt does; then a 2xx reply without a JSON body is a BadResponse."""
        # handle_http_status_code runs right after this, with no await in between.
        self._retry_after_s = retry_after_seconds(headers or {})
        try:
            super().handle_errors(
                code, reason, url, method, headers, body, response, request_headers, request_body
            )
        except ccxt_errors.BaseError as error:
            error.retry_after_s = self._retry_after_s
            raise
        if response is None and 200 <= code < 300:  # noqa: PLR2004 - the 2xx range
            raise ccxt_errors.BadResponse(
                f"{self.id} {method} {code}: the reply body is not JSON ({len(body or '')} "
                "characters); it was cut short or is not a v3 reply"
            )

    def handle_http_status_code(
        self, code: int, reason: str, url: str, method: str, body: str
    ) -> None:
        """Map HTTP statuses as ccxt does, keeping ``Retry-After`` on the exception."""
        try:
            super().handle_http_status_code(code, reason, url, method, body)
        except ccxt_errors.BaseError as error:
            error.retry_after_s = self._retry_after_s
            raise


def retry_after_seconds(headers: dict[str, str], now_s: float | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (delta or HTTP date); else None."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return max(moment.timestamp() - now, 0.0)


def open_client(
    credentials: Credentials | None = None,
    *,
    rest_url: str | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    recv_window_ms: int | None = DEFAULT_RECV_WINDOW_MS,
) -> PoloniexClient:
    """A `PoloniexClient` for USDT-margined perpetuals (close it when done).

    Args:
        credentials: None for a client of public endpoints only.
        rest_url: base URL of the emulator (``http://127.0.0.1:PORT``); None for Poloniex.
        timeout_ms: ccxt's per-request timeout; a request still unanswered then raises
            ``RequestTimeout``, whose outcome the adapter treats as unknown.
        recv_window_ms: how long after signing the venue may accept a request (the
            ``recvWindow`` header); None leaves the venue's one minute.
    """
    config: dict[str, Any] = {
        "timeout": timeout_ms,
        "enableRateLimit": False,
        "options": {"defaultType": "swap"},
    }
    if credentials is not None:
        config["apiKey"] = credentials.key
        config["secret"] = credentials.secret
    client = PoloniexClient(config)
    client.recv_window_ms = recv_window_ms
    if rest_url is not None:
        base = rest_url.rstrip("/")
        client.urls["api"] = {"spot": base, "swap": base}
    return client
