"""Real processes for the node's acceptance tests: the emulator, the node, the venue's view.

`Emulator` runs `polytrade exchange-sim` as its own process; `node_profiles` writes the test
profiles (tests/node_specs) pointed at it; `run_node` runs `polytrade run` as a child process
(optionally told to SIGKILL itself at a point of the order lifecycle); `Venue` reads what the
emulator holds for the account through the real ccxt client.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ccxt  # type: ignore[import-untyped]

KEY = "node-test-key"
SECRET = "node-test-secret-4f9c2a"  # noqa: S105 - a throwaway secret the tests grep for
SPECS = Path(__file__).parents[1] / "node_specs"
SYMBOL = "BTC_USDT_PERP"
UNIFIED = "BTC/USDT:USDT"
ENV = {
    **os.environ,
    "POLYTRADE_SIM_API_KEY": KEY,
    "POLYTRADE_SIM_API_SECRET": SECRET,
    "PYTHONUNBUFFERED": "1",
}


def command(*args: str) -> list[str]:
    """`polytrade ARGS...` as a child process's argument list (this interpreter)."""
    return [sys.executable, "-m", "polytrade", *args]


def cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run `polytrade ARGS...` to its end with the test environment."""
    return subprocess.run(
        command(*args), capture_output=True, text=True, env=ENV, timeout=timeout, check=False
    )


class Emulator:
    """`polytrade exchange-sim` in a child process (stopped with SIGTERM by `close`)."""

    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            command("exchange-sim", "--port", "0", "--json", "--no-quotas", *options),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"exchange-sim did not start: {self.process.communicate()[1]}")
        self.info: dict[str, Any] = json.loads(line)

    @property
    def rest_url(self) -> str:
        """The REST base URL."""
        return str(self.info["rest_url"])

    def close(self) -> str:
        """Stop it; returns what it wrote on stderr."""
        self.process.send_signal(signal.SIGTERM)
        _out, err = self.process.communicate(timeout=30)
        return err


def node_profiles(folder: Path, rest_url: str) -> dict[str, Path]:
    """The test specs copied into `folder`, pointed at the emulator; paths by mode."""
    target = folder / "specs"
    shutil.copytree(SPECS, target, dirs_exist_ok=True)
    port_url = rest_url.rstrip("/")
    ws = port_url.replace("http://", "ws://")
    for name in ("paper.yaml", "live.yaml"):
        path = target / name
        text = path.read_text(encoding="utf-8")
        text = text.replace("http://127.0.0.1:8765", port_url).replace("ws://127.0.0.1:8765", ws)
        path.write_text(text, encoding="utf-8")
    return {"paper": target / "paper.yaml", "live": target / "live.yaml"}


def run_node(
    profile: Path,
    store: str,
    *,
    max_bars: int,
    crash_at: str | None = None,
    timeout: float = 180.0,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`polytrade run PROFILE --max-bars N --json` to its end (or its self-kill)."""
    env = dict(ENV)
    if crash_at:
        env["POLYTRADE_CRASH_AT"] = crash_at
    return subprocess.run(
        command("run", str(profile), "--store", store, "--max-bars", str(max_bars), "--json"),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


@dataclass
class Venue:
    """The account as the emulator holds it, read with the real (synchronous) ccxt client."""

    rest_url: str

    def client(self) -> Any:
        """A ccxt client on the emulator."""
        exchange = ccxt.poloniex(
            {"apiKey": KEY, "secret": SECRET, "options": {"defaultType": "swap"}}
        )
        exchange.urls["api"] = {"spot": self.rest_url, "swap": self.rest_url}
        return exchange

    def orders_by_client_id(self) -> dict[str, int]:
        """How many venue orders carry each client order id (open and closed)."""
        exchange = self.client()
        counts: dict[str, int] = {}
        orders = exchange.fetch_open_orders(UNIFIED) + exchange.fetch_closed_orders(
            UNIFIED, limit=200
        )
        for order in orders:
            cid = order["clientOrderId"]
            counts[cid] = counts.get(cid, 0) + 1
        return counts

    def fills(self) -> list[dict[str, Any]]:
        """The account's fills (raw v3 rows)."""
        return [t["info"] for t in self.client().fetch_my_trades(UNIFIED, limit=1000)]

    def position(self) -> float:
        """Signed contracts held."""
        for row in self.client().fetch_positions([UNIFIED]):
            qty = float(row["contracts"] or 0)
            return qty if row["info"]["side"] == "BUY" else -qty
        return 0.0

    def equity(self) -> float:
        """Account equity (USDT), from ``info.eq``."""
        return float(self.client().fetch_balance()["info"]["eq"])
