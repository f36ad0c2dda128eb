"""Typed failures of the Poloniex adapter: what failed, where, and whether trying again is safe.

Every failure the adapter raises is a `VenueFailure` that carries the operation (``create
order``), the endpoint (``POST /v3/trade/order``), the v3 error code when the venue sent one,
and whether the request may be repeated. Three families:

- `Retryable`: the request was not served and repeating a READ is safe: network errors,
  timeouts, 429 rate limits, 5xx replies, maintenance (1002 / 503), a reply body that could not
  be read.
- `NotRetryable`: the venue gave a definite refusal, and repeating the request would be refused
  again: authentication (403), a bad parameter (400, including a ``signTimestamp`` outside the
  window), an invalid order, insufficient margin, an unknown order (11008), a duplicate client
  order id (250), reduce-only without a position (10018) ... and requests the adapter refuses
  before sending them (`InvalidOrderRequest`).
- `OutcomeUnknown`: a state-changing request (create, cancel) whose reply never arrived or could
  not be read, and whose outcome a lookup could not settle either. It is never re-sent; the
  caller keeps the order in flight and reconciles it later.

A `Retryable` failure of a create or cancel is not retried: the adapter resolves it by looking
the order up (see `polytrade.exchange.poloniex.adapter`). `map_ccxt_error` is the one place that
translates ccxt's exceptions into this tree. Messages carry the venue's own ``msg`` and never a
credential: the adapter builds them from the operation, the endpoint and the reply's code and
message only.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar, Final

from ccxt.base import errors as ccxt_errors  # type: ignore[import-untyped]

from polytrade.errors import ExitCode, PolytradeError

# v3 codes (reference/poloniex.md §6) the mapping looks at before ccxt's class.
DUPLICATE: Final = 250
ILLEGAL_PARAM: Final = 400
ACCESS_DENY: Final = 403
TOO_MANY_REQUESTS: Final = 429
INTERNAL_ERROR: Final = 500
DEGRADED: Final = 503
USER_NOT_EXISTS: Final = 1000
SYSTEM_MAINTENANCE: Final = 1002
PRICE_LIMIT: Final = 10002
NO_POSITION_TO_CLOSE: Final = 10018
NOT_CANCELABLE: Final = 11004
ORDER_NOT_EXISTS: Final = 11008
INSUFFICIENT_BALANCE: Final = (21709, 21721)


class VenueFailure(PolytradeError):  # noqa: N818 - failures, not all errors of ours
    """A request to Poloniex that did not succeed.

    Attributes:
        operation: what the adapter was doing, in words (``fetch order``, ``create order``).
        endpoint: ``METHOD /path`` of the request, or ``local`` for a refusal before sending.
        code: the v3 error code of the reply (429, 1002, 11008 ...); None when there was no
            readable reply.
        venue_message: the reply's ``msg``, empty when there was none.
        retry_after_s: seconds the venue asked to wait (``Retry-After``); None when not sent.
        attempts: how many requests were sent for this operation before it failed.
    """

    exit_code = ExitCode.UNAVAILABLE
    retryable: ClassVar[bool] = False
    """Whether repeating an idempotent request may succeed."""
    summary: ClassVar[str] = "the request failed"

    def __init__(
        self,
        *,
        operation: str,
        endpoint: str,
        code: int | None = None,
        venue_message: str = "",
        retry_after_s: float | None = None,
        detail: str = "",
    ) -> None:
        self.operation = operation
        self.endpoint = endpoint
        self.code = code
        self.venue_message = venue_message
        self.retry_after_s = retry_after_s
        self.attempts = 1
        self.detail = detail
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.operation} ({self.endpoint}): {self.detail or self.summary}"
        if self.code is not None:
            text += f" [code {self.code}]"
        if self.venue_message:
            text += f"; the venue said: {self.venue_message}"
        return text


class Retryable(VenueFailure):
    """The request was not served; an idempotent request may be repeated after a wait."""

    retryable = True
    summary = "the venue did not serve the request"


class RateLimited(Retryable):
    """HTTP 429 / code 429: over the venue's quota; wait `retry_after_s` or the policy's floor."""

    summary = "rate limited by the venue (too many requests)"


class VenueMaintenance(Retryable):
    """Code 1002 (HTTP 503): the venue is in maintenance; nothing is served until it ends."""

    summary = "the venue is in maintenance"


class VenueUnavailable(Retryable):
    """A 5xx reply, a refused or dropped connection: the venue could not be reached or failed."""

    summary = "the venue is unavailable (server error or connection lost)"


class RequestTimedOut(Retryable):
    """No reply within the client's timeout (or a 504 from a gateway)."""

    summary = "no reply within the timeout"


class MalformedReply(Retryable):
    """A reply arrived but its body could not be read (cut short, not JSON, wrong shape)."""

    summary = "the reply could not be read (truncated or malformed body)"


class NotRetryable(VenueFailure):
    """A definite refusal: sending the same request again would be refused again."""

    summary = "the venue refused the request"


class AuthenticationFailed(NotRetryable):
    """Code 403 / 1000: unknown key, wrong signature or missing permission."""

    summary = "authentication failed: check the API key, its secret and its permissions"


class RequestRejected(NotRetryable):
    """Code 400 and other refusals of a request's parameters or of the account's state."""

    summary = "the venue rejected the request"


class ClockSkew(RequestRejected):
    """Code 400 for ``signTimestamp``: the local clock is outside the venue's window.

    Not retried: the same clock would sign the same way. `PoloniexAdapter.sync_clock` measures
    the offset to the venue and signs with it from then on.
    """

    summary = "the request's timestamp is outside the venue's window; synchronise the clock"


class OrderRejected(RequestRejected):
    """The venue refused an order: price limit, post-only that would cross, size, state."""

    summary = "the venue rejected the order"


class InsufficientMargin(OrderRejected):
    """The order needs more margin than the account has available."""

    summary = "insufficient margin for the order"


class DuplicateClientOrderId(OrderRejected):
    """Code 250: the client order id is used by an open or recent order."""

    summary = "the client order id is already used"


class NoPositionToReduce(OrderRejected):
    """Code 10018: a reduce-only order with no position to reduce."""

    summary = "reduce-only order with no position to reduce"


class InvalidOrderRequest(OrderRejected):
    """The adapter refused the order before sending it; nothing reached the venue.

    A size off the lot grid or below minSz, a price off the tick grid, contradictory flags.
    """

    summary = "the order request is invalid and was not sent"


class OrderNotFound(RequestRejected):
    """Code 11008: no such order (never placed, or closed longer ago than the venue keeps)."""

    summary = "no such order"


class OrderNotCancelable(RequestRejected):
    """Code 11004: the order is already closed (filled or cancelled)."""

    summary = "the order is already closed"


class OutcomeUnknown(VenueFailure):
    """A create or cancel whose reply was lost and whose lookup did not settle the outcome.

    The request may or may not have taken effect. It is never re-sent; keep the order in
    flight under `client_order_id` and reconcile it by lookup later. `__cause__` is the last
    failure met.
    """

    summary = "the outcome is unknown: the reply was lost and the lookup did not settle it"

    def __init__(
        self,
        *,
        operation: str,
        endpoint: str,
        client_order_id: str | None = None,
        order_id: str | None = None,
        code: int | None = None,
        detail: str = "",
    ) -> None:
        self.client_order_id = client_order_id
        self.order_id = order_id
        super().__init__(operation=operation, endpoint=endpoint, code=code, detail=detail)


_BY_CODE: Final[dict[int, type[VenueFailure]]] = {
    DUPLICATE: DuplicateClientOrderId,
    ACCESS_DENY: AuthenticationFailed,
    USER_NOT_EXISTS: AuthenticationFailed,
    TOO_MANY_REQUESTS: RateLimited,
    INTERNAL_ERROR: VenueUnavailable,
    DEGRADED: VenueUnavailable,
    SYSTEM_MAINTENANCE: VenueMaintenance,
    NO_POSITION_TO_CLOSE: NoPositionToReduce,
    NOT_CANCELABLE: OrderNotCancelable,
    ORDER_NOT_EXISTS: OrderNotFound,
    **dict.fromkeys(INSUFFICIENT_BALANCE, InsufficientMargin),
}

# Most specific ccxt class first: OnMaintenance is an ExchangeNotAvailable, which is a
# NetworkError; OrderNotFound and DuplicateOrderId are InvalidOrders.
_BY_CCXT_CLASS: Final[tuple[tuple[type[Exception], type[VenueFailure]], ...]] = (
    (ccxt_errors.OnMaintenance, VenueMaintenance),
    (ccxt_errors.RateLimitExceeded, RateLimited),
    (ccxt_errors.DDoSProtection, RateLimited),
    (ccxt_errors.RequestTimeout, RequestTimedOut),
    (ccxt_errors.BadResponse, MalformedReply),
    (ccxt_errors.OperationFailed, VenueUnavailable),
    (ccxt_errors.AuthenticationError, AuthenticationFailed),
    (ccxt_errors.InsufficientFunds, InsufficientMargin),
    (ccxt_errors.DuplicateOrderId, DuplicateClientOrderId),
    (ccxt_errors.OrderNotFound, OrderNotFound),
    (ccxt_errors.InvalidOrder, OrderRejected),
    (ccxt_errors.BaseError, RequestRejected),
)

_CODE_IN_TEXT = re.compile(r'"code"\s*:\s*"?(-?\d+)')
_MSG_IN_TEXT = re.compile(r'"(?:msg|message)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_MAX_VENUE_MESSAGE = 300


def venue_reply(text: str) -> tuple[int | None, str]:
    """The v3 ``code`` and ``msg`` found in a ccxt error message (which ends with the body).

    Returns (None, "") when the text holds no v3 body (a timeout, an HTML gateway page).
    """
    start = text.find("{")
    if start < 0:
        return None, ""
    body = text[start:]
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        code, msg = decoded.get("code"), decoded.get("msg", decoded.get("message", ""))
    else:
        found_code, found_msg = _CODE_IN_TEXT.search(body), _MSG_IN_TEXT.search(body)
        code = found_code.group(1) if found_code else None
        msg = found_msg.group(1) if found_msg else ""
    try:
        number = None if code is None or isinstance(code, bool) else int(str(code))
    except ValueError:
        number = None
    return number, str(msg or "")[:_MAX_VENUE_MESSAGE]


def map_ccxt_error(error: BaseException, *, operation: str, endpoint: str) -> VenueFailure:
    """The `VenueFailure` for an exception raised by a ccxt call (or during one).

    The v3 code decides first when the reply carried one (it is more precise than ccxt's class:
    1002 is maintenance, 250 a duplicate id, 10018 reduce-only without a position); then
    ccxt's class. Any exception that is not a ccxt error (ccxt parsing an unreadable reply
    raises a bare TypeError or a JSON error) becomes `MalformedReply`. A ``retry_after_s``
    attribute on the ccxt exception (set by `connection.PoloniexClient` from ``Retry-After``)
    is carried over.
    """
    if isinstance(error, VenueFailure):
        return error
    retry_after = getattr(error, "retry_after_s", None)
    if not isinstance(error, ccxt_errors.BaseError):
        return MalformedReply(
            operation=operation,
            endpoint=endpoint,
            detail=f"the reply could not be read ({type(error).__name__})",
        )
    code, message = venue_reply(str(error))
    kind: type[VenueFailure] | None = _BY_CODE.get(code) if code is not None else None
    if code == ILLEGAL_PARAM and "signtimestamp" in message.lower():
        kind = ClockSkew
    elif code == PRICE_LIMIT and "insufficient" in message.lower():
        # The v3 docs list no insufficient-margin code; the refusal comes as 10002.
        kind = InsufficientMargin
    if kind is None:
        kind = next(ours for theirs, ours in _BY_CCXT_CLASS if isinstance(error, theirs))
    return kind(
        operation=operation,
        endpoint=endpoint,
        code=code,
        venue_message=message,
        retry_after_s=retry_after if isinstance(retry_after, int | float) else None,
    )
