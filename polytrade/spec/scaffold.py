"""Starting points for new specs (`polytrade new ...`): small, valid, and commented."""

from __future__ import annotations

from string import Template
from typing import Final

_STRATEGY: Final = Template("""\
${modeline}apiVersion: polytrade/v1
kind: Strategy
metadata:
  name: ${name}
  description: EMA trend follower. Replace this with what your strategy does.
  tags: [trend]
spec:
  instruments: [BTC_USDT_PERP]
  timeframe: 1h
  params:                       # the search space evolution explores
    fast: {type: int, default: 20, min: 5, max: 60, description: fast EMA length in bars}
    slow: {type: int, default: 100, min: 30, max: 300, description: slow EMA length in bars}
    stop_atr: {type: float, default: 3.0, min: 1.0, max: 6.0, description: stop distance in ATRs}
  signals:
    trend: ema(close, fast) - ema(close, slow)
    atr14: atr(high, low, close, 14)
  entry_long: cross_above(trend, 0)
  exit_long: cross_below(trend, 0)
  entry_short: cross_below(trend, 0)
  exit_short: cross_above(trend, 0)
  stops:
    stop_loss: stop_atr * atr14   # USDT per coin from the entry price
  sizing: {method: risk_per_trade, risk_fraction: 0.01}
  execution: {style: market}
""")

_RISK: Final = Template("""\
${modeline}apiVersion: polytrade/v1
kind: RiskBudget
metadata:
  name: ${name}
  description: Conservative limits. Fractions are fractions (0.1 = 10%).
spec:
  capital_usdt: 10000
  max_leverage: 2
  max_position_notional_usdt: 20000
  max_order_notional_usdt: 10000
  price_band_bps: 100
  max_daily_loss: {limit: 0.03, action: halt}
  max_drawdown: {limit: 0.15, action: flatten}
  loss_streak: {losses: 5, cooldown_seconds: 21600}
""")

_PROFILE: Final = Template("""\
${modeline}apiVersion: polytrade/v1
kind: Profile
metadata:
  name: ${name}
  description: ${mode} deployment.
spec:
  mode: ${mode}
  venue:
    name: poloniex
${credentials}  strategies:
    - ref: ${strategy}
      allocation: 1.0
  risk: ${risk}
  data:
${data}
""")

_DATA: Final = {
    "backtest": "    source: synthetic\n    seed: 7\n    days: 365",
    "paper": "    source: live\n    warmup_bars: 500",
    "live": "    source: live\n    warmup_bars: 500",
}
_CREDENTIALS: Final = (
    "    credentials:\n"
    "      api_key_env: POLYTRADE_POLONIEX_API_KEY\n"
    "      api_secret_env: POLYTRADE_POLONIEX_API_SECRET\n"
)


def modeline(schema_ref: str | None) -> str:
    """The yaml-language-server comment that binds a file to its JSON Schema."""
    return f"# yaml-language-server: $schema={schema_ref}\n" if schema_ref else ""


def strategy_yaml(name: str, schema_ref: str | None) -> str:
    """A valid example Strategy named `name`."""
    return _STRATEGY.substitute(name=name, modeline=modeline(schema_ref))


def risk_budget_yaml(name: str, schema_ref: str | None) -> str:
    """A valid, conservative RiskBudget named `name`."""
    return _RISK.substitute(name=name, modeline=modeline(schema_ref))


def profile_yaml(name: str, mode: str, strategy: str, risk: str, schema_ref: str | None) -> str:
    """A Profile of `mode` running `strategy` under `risk` (paths relative to the profile)."""
    return _PROFILE.substitute(
        name=name,
        mode=mode,
        strategy=strategy,
        risk=risk,
        data=_DATA[mode],
        credentials=_CREDENTIALS if mode == "live" else "",
        modeline=modeline(schema_ref),
    )
