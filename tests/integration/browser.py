"""A report page opened offline in Debian's chromium (playwright), for the browser tests.

Every network request but the page's own file is refused, and every console error or
warning and page error is collected: a report must draw with none.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is absent: install Debian's chromium package to run the browser tests",
)


@dataclass
class OfflinePage:
    """The open page, its file's URL, and what went wrong or was asked for so far."""

    page: Any
    url: str
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextmanager
def offline_page(path: Path) -> Iterator[OfflinePage]:
    """`path` opened in chromium with the network refused; closed on exit."""
    sync_api = pytest.importorskip("playwright.sync_api")
    url = path.resolve().as_uri()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            opened = OfflinePage(page, url)
            page.on(
                "console",
                lambda message: (
                    opened.problems.append(f"console {message.type}: {message.text}")
                    if message.type in {"error", "warning"}
                    else None
                ),
            )
            page.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))

            def refuse_the_network(route: Any) -> None:
                opened.requests.append(route.request.url)
                if route.request.url == url:
                    route.continue_()
                else:
                    route.abort()

            page.route("**/*", refuse_the_network)
            page.goto(url, wait_until="load")
            yield opened
        finally:
            browser.close()
