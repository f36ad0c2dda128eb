"""Where the Jinja templates live and the environment that renders them.

The templates are shared with the web UI and live at the top of the repository, in
`ui/templates`; a wheel carries a copy at `polytrade/_ui/templates` (pyproject force-includes
`ui/` there). Rendering escapes every value (autoescape) and fails on any undefined name
(StrictUndefined), so a typo in a template is an error, never an empty cell.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

from polytrade.report.formatting import FILTERS


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
