"""Fault injection for the loopback Poloniex emulator: what goes wrong, how often, from one seed.

`Faults` is the per-run configuration (a frozen pydantic model, loadable from a mapping or
YAML). `FaultInjector` turns it into decisions: one `RestFault` per REST request and one
`WebsocketFaultPlan` per websocket connection. Every random draw comes from `random.Random`
streams seeded from `Faults.seed`, and every request or push draws the same number of values
whatever the outcome, so a run is reproducible given the seed and the order of requests: the
REST stream is shared by all requests in arrival order, and connection number *k* gets its own
stream, so websocket traffic never shifts the REST decisions and vice versa.

The faults mirror what reference/reliability.md §6 asks the engine to survive: latency, 429
and 5xx replies, a create that the venue accepts but whose reply never arrives (tests 9-10),
maintenance (test 17), clock skew (test 18), truncated bodies, and websockets that drop, go
silent, repeat or reorder pushes (test 13).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Self, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from polytrade.errors import UsageError
from polytrade.spec.yaml_source import YamlFatalError, parse_yaml

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from pydantic_core import ErrorDetails

EndpointGroup = Literal[
    "market", "candles", "place", "cancel", "cancel_batch", "balance", "account"
]
"""Groups of REST endpoints that share a Poloniex quota (reference/poloniex.md §6).

- market: instruments, order book, trades, tickers, funding, spot markets, currencies
- candles: klines
- place: create order
- cancel: cancel one order
- cancel_batch: cancel a batch, cancel all
- balance: account balance
- account: leverage, position mode, margin, open orders, history, details, fills, positions
"""

ENDPOINT_GROUPS: Final[tuple[EndpointGroup, ...]] = get_args(EndpointGroup)

EVERY_GROUP: Final = "*"
"""The key of a per-group rate table that applies to every group not named in it."""

GroupKey = Literal[
    "*", "market", "candles", "place", "cancel", "cancel_batch", "balance", "account"
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
"""A probability per event, as a fraction in [0, 1]."""


class _FaultModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MaintenanceWindow(_FaultModel):
    """A span of emulator time in which every REST request gets HTTP 503 with code 1002.

    New websocket connections are refused with HTTP 503 as well; open ones stay up.
    """

    start: AwareDatetime = Field(description="First instant of maintenance (inclusive).")
    end: AwareDatetime = Field(description="End of maintenance (exclusive).")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end <= self.start:
            raise ValueError(
                f"maintenance ends at {self.end.isoformat()}, which is not after its start "
                f"{self.start.isoformat()}; give an end later than the start"
            )
        return self

    def covers(self, now_ms: int) -> bool:
        """Whether `now_ms` (milliseconds since the epoch) falls in the window."""
        return _epoch_ms(self.start) <= now_ms < _epoch_ms(self.end)


class WebsocketFaults(_FaultModel):
    """What happens to pushes (channel data frames) on each websocket connection.

    Acks, pongs and auth replies are never dropped, repeated or reordered on their own, but
    they stop too once a connection is dropped or silent.
    """

    drop_every_n_messages: int | None = Field(
        default=None,
        ge=1,
        description="Cut the connection (no close frame) right after its N-th push; none: never.",
    )
    drop_probability: Probability = Field(
        default=0.0,
        description="Per push: cut the connection instead of sending it (the push is lost).",
    )
    silent_after_n_messages: int | None = Field(
        default=None,
        ge=1,
        description="After the N-th push, stop sending anything without closing; none: never.",
    )
    silent_probability: Probability = Field(
        default=0.0, description="Per push: send it, then go silent without closing."
    )
    duplicate_probability: Probability = Field(
        default=0.0, description="Per push: send it twice in a row."
    )
    out_of_order_probability: Probability = Field(
        default=0.0,
        description="Per push: hold it back and send it right after the next push.",
    )


class Faults(_FaultModel):
    """Per-run fault knobs of the emulator; the default injects nothing."""

    seed: int = Field(default=0, description="Seed of every random draw the emulator makes.")
    latency_ms: float = Field(
        default=0.0, ge=0.0, description="Delay before every REST reply, in milliseconds."
    )
    latency_jitter_ms: float = Field(
        default=0.0,
        ge=0.0,
        description="Uniform jitter around latency_ms, +/- this many milliseconds (floor 0).",
    )
    too_many_requests: dict[GroupKey, Probability] = Field(
        default_factory=dict,
        description="Per endpoint group ('*' for the rest): chance of an HTTP 429, code 429.",
    )
    server_errors: dict[GroupKey, Probability] = Field(
        default_factory=dict,
        description="Per endpoint group ('*' for the rest): chance of a 5xx reply.",
    )
    server_error_statuses: tuple[int, ...] = Field(
        default=(500, 502, 503, 504),
        min_length=1,
        description="HTTP statuses a server error is drawn from, uniformly.",
    )
    timeout_after_accept: Probability = Field(
        default=0.0,
        description="Per create-order request: the order is accepted, then the reply is lost.",
    )
    timeout_after_accept_action: Literal["delay", "drop"] = Field(
        default="delay",
        description="delay: answer after timeout_after_accept_delay_ms; drop: cut the connection.",
    )
    timeout_after_accept_delay_ms: float = Field(
        default=30_000.0,
        ge=0.0,
        description="How long a delayed reply waits, in milliseconds (past the client timeout).",
    )
    maintenance: tuple[MaintenanceWindow, ...] = Field(
        default=(), description="Windows of emulator time with HTTP 503, code 1002."
    )
    clock_skew_ms: int = Field(
        default=0,
        description="Milliseconds added to the emulator clock when it checks signTimestamp.",
    )
    malformed_bodies: Probability = Field(
        default=0.0,
        description="Per successful REST reply: chance the JSON body is cut short.",
    )
    websocket: WebsocketFaults = Field(default_factory=WebsocketFaults)

    @model_validator(mode="after")
    def _statuses_are_server_errors(self) -> Self:
        wrong = [status for status in self.server_error_statuses if not 500 <= status <= 599]  # noqa: PLR2004
        if wrong:
            raise ValueError(
                f"server_error_statuses holds {wrong}, which are not 5xx statuses; "
                "use HTTP statuses from 500 to 599"
            )
        return self

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Faults:
        """Validate plain data (for example a parsed YAML or JSON document).

        Raises:
            UsageError: a key is unknown or a value is out of range; the message lists every
                problem with its key path.
        """
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = "; ".join(_describe(error) for error in exc.errors())
            raise UsageError(f"the fault settings are invalid: {problems}") from exc

    @classmethod
    def from_yaml(cls, text: str, display: str = "faults.yaml") -> Faults:
        """Read fault settings from YAML text with the project's safe YAML reader.

        `display` names the file in messages. Raises UsageError for unreadable YAML, a
        document that is not a mapping, or invalid settings.
        """
        try:
            document = parse_yaml(text, display)
        except YamlFatalError as exc:
            raise UsageError(f"cannot read the fault settings: {exc}") from exc
        if document.issues:
            raise UsageError(
                "cannot read the fault settings: "
                + "; ".join(issue.render() for issue in document.issues)
            )
        if not isinstance(document.data, dict):
            raise UsageError(
                f"{display} must hold a mapping of fault settings (seed, latency_ms, ...), "
                f"not a {type(document.data).__name__}"
            )
        return cls.from_mapping(document.data)

    def too_many_requests_probability(self, group: EndpointGroup) -> float:
        """The chance of an injected 429 for a request in `group`."""
        return self.too_many_requests.get(group, self.too_many_requests.get(EVERY_GROUP, 0.0))

    def server_error_probability(self, group: EndpointGroup) -> float:
        """The chance of an injected 5xx for a request in `group`."""
        return self.server_errors.get(group, self.server_errors.get(EVERY_GROUP, 0.0))

    def in_maintenance(self, now_ms: int) -> bool:
        """Whether emulator time `now_ms` (ms since the epoch) is inside a maintenance window."""
        return any(window.covers(now_ms) for window in self.maintenance)


@dataclass(frozen=True, slots=True)
class RestFault:
    """What the emulator does to one REST request, decided before it is handled."""

    delay_s: float
    """Seconds to wait before handling the request (latency plus jitter)."""
    refusal_status: int | None
    """429 or a 5xx status to answer with instead of handling the request; None: handle it."""
    keep_fraction: float | None
    """Cut the JSON reply to this fraction of its bytes (at least one byte is cut); None: whole."""
    lose_reply_after_accept: bool
    """Create order only: let the backend accept it, then delay or drop the reply."""


@dataclass(frozen=True, slots=True)
class PushFault:
    """What happens to one push on one websocket connection."""

    drop_before: bool
    """Cut the connection instead of sending this push."""
    hold_back: bool
    """Send this push after the next one."""
    duplicate: bool
    """Send this push twice."""
    drop_after: bool
    """Cut the connection right after sending this push."""
    silent_after: bool
    """Stop sending anything (without closing) right after this push."""


class WebsocketFaultPlan:
    """The fault decisions for one websocket connection, push by push."""

    def __init__(self, faults: WebsocketFaults, rng: random.Random) -> None:
        self._faults = faults
        self._rng = rng
        self._pushes = 0

    def next_push(self) -> PushFault:
        """Decide the fate of the next push (four draws per push, whatever the settings)."""
        faults = self._faults
        drop_draw, silent_draw, duplicate_draw, order_draw = [self._rng.random() for _ in range(4)]
        self._pushes += 1
        count = self._pushes
        every_n = faults.drop_every_n_messages
        silent_n = faults.silent_after_n_messages
        return PushFault(
            drop_before=drop_draw < faults.drop_probability,
            hold_back=order_draw < faults.out_of_order_probability,
            duplicate=duplicate_draw < faults.duplicate_probability,
            drop_after=every_n is not None and count % every_n == 0,
            silent_after=silent_draw < faults.silent_probability
            or (silent_n is not None and count >= silent_n),
        )


class FaultInjector:
    """Turns `Faults` into per-request and per-connection decisions, reproducibly."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rest = random.Random(f"{faults.seed}:rest")  # noqa: S311 - simulation, not crypto
        self._connections = 0

    def next_rest(self, group: EndpointGroup, *, places_order: bool) -> RestFault:
        """Decide the faults of the next REST request in arrival order.

        Always draws six values so later decisions do not depend on this one's outcome.
        `places_order` marks a create-order request, the only one that can lose its reply
        after the backend accepted it.
        """
        faults = self.faults
        rng = self._rest
        jitter_draw, limit_draw, error_draw, status_draw, cut_draw, lose_draw = [
            rng.random() for _ in range(6)
        ]
        jitter = faults.latency_jitter_ms * (2.0 * jitter_draw - 1.0)
        delay_s = max(0.0, faults.latency_ms + jitter) / 1000.0
        refusal: int | None = None
        if limit_draw < faults.too_many_requests_probability(group):
            refusal = 429
        elif error_draw < faults.server_error_probability(group):
            statuses = faults.server_error_statuses
            refusal = statuses[min(int(status_draw * len(statuses)), len(statuses) - 1)]
        keep: float | None = None
        if cut_draw < faults.malformed_bodies:
            # Reuse the draw's position inside [0, p) as the share of the body to keep.
            keep = cut_draw / faults.malformed_bodies
        return RestFault(
            delay_s=delay_s,
            refusal_status=refusal,
            keep_fraction=keep,
            lose_reply_after_accept=places_order and lose_draw < faults.timeout_after_accept,
        )

    def next_connection(self) -> WebsocketFaultPlan:
        """The plan of the next websocket connection (its own seeded stream)."""
        index = self._connections
        self._connections += 1
        rng = random.Random(f"{self.faults.seed}:ws:{index}")  # noqa: S311 - simulation
        return WebsocketFaultPlan(self.faults.websocket, rng)


def truncate_body(body: bytes, keep_fraction: float) -> bytes:
    """Cut a reply body to `keep_fraction` of its bytes, always losing at least the last byte.

    A cut JSON document can never parse, which is the point: the client sees a 200 whose
    body is not JSON.
    """
    if not body:
        return body
    keep = min(int(len(body) * keep_fraction), len(body) - 1)
    return body[:keep]


def _describe(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{where}: is not a fault setting; check its spelling and nesting"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


def _epoch_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)
