"""Where the Jinja templates live and the environment that renders them.

The templates are shared with the web UI and live at the top of the repository, in
`ui/templates`; a wheel carries a copy at `polytrade/_ui/templates` (pyproject force-includes
`ui/` there). Rendering escapes every value (autoescape) and fails on any undefined name
(StrictUndefined), so a typo in a template is an error, never an empty cell.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from polytrade.errors import UsageError
from polytrade.report.formatting import FILTERS

if TYPE_CHECKING:
    from collections.abc import Callable


def template_dir() -> Path:
    """The folder of the Jinja templates: the repository's `ui/templates`, else the wheel's copy."""
    repository = Path(__file__).resolve().parents[2] / "ui" / "templates"
    if repository.is_dir():
        return repository
    return Path(__file__).resolve().parents[1] / "_ui" / "templates"


def static_dir() -> Path:
    """The folder of the static files (stylesheets) beside the templates."""
    return template_dir().parent / "static"


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja environment of Polytrade's pages, with the number filters of `formatting`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def write_page(path: str | os.PathLike[str], render: Callable[[], str]) -> Path:
    """Write the page `render` returns to `path` atomically: a complete file, or the old one.

    The page is written to a temporary file in the same folder and renamed over `path`, so a
    reader never sees half a report. Missing parent folders are created. `render` runs after
    the path is checked (a bad path fails before any work).

    Returns:
        The path written.

    Raises:
        UsageError: when `path` is a folder or cannot be written (the message says why).
    """
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a folder; give the report a file name such as report.html")
    html = render()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
                stream.write(html)
                stream.flush()
                os.fsync(stream.fileno())
            Path(temporary).chmod(0o644)
            Path(temporary).replace(target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(
            f"could not write the report to {target}: {exc.strerror or exc}; "
            "choose a path in a folder you can write to"
        ) from exc
    return target
