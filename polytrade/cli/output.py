"""Where the CLI writes: results on stdout, progress and summaries on stderr (rich)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

stderr = Console(stderr=True, highlight=False)
"""Human-facing messages. Rich turns colour off by itself when stderr is not a terminal."""
stdout = Console(highlight=False)
"""Tables that are a command's result."""


def emit_json(document: Any) -> None:
    """Write exactly one JSON document to stdout."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def emit_line(text: str) -> None:
    """Write one plain line to stdout (no markup, so paths and brackets print as they are)."""
    sys.stdout.write(text + "\n")
