"""Opening the store: the URL, the engine, SQLite's durability pragmas, the schema at head.

`open_store(url)` is the one way in. SQLite (the default, `sqlite:///polytrade.db`) runs in WAL
mode with `synchronous=FULL` (a committed run survives a power cut) and foreign keys on;
PostgreSQL is used through psycopg 3 (`postgresql://` URLs are sent to the `psycopg` driver).
The schema is brought to the Alembic head in one transaction each time a store is opened, and
left alone when it is there already.

Messages never show a password from the URL: it is masked as `***`.
"""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from polytrade.errors import ExitCode, PolytradeError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from alembic.config import Config
    from sqlalchemy.pool import ConnectionPoolEntry

DEFAULT_URL: Final = "sqlite:///polytrade.db"
"""The store used when no URL is given: a SQLite file in the current folder."""

MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"
"""The Alembic script folder (env.py, versions/)."""

_CONNECT_TIMEOUT_S: Final = 10
_BEGIN_OPTION: Final = "polytrade_sqlite_begin"
"""Execution option naming how a SQLite transaction begins (BEGIN, or BEGIN IMMEDIATE)."""
_LOCK_KEY: Final = 0x706F6C7974726164  # "polytrad": the advisory lock of schema upgrades
_SQLITE_PRAGMAS: Final = (
    "busy_timeout=30000",  # first: wait for another process's lock instead of failing
    "journal_mode=WAL",
    "synchronous=FULL",
    "foreign_keys=ON",
)
_WAL_RETRY_S: Final = 10.0
"""Switching a new file to WAL needs a moment alone with it; SQLite does not always wait for
that itself, so the switch is retried for up to this long when another opener holds it."""
_PASSWORD: Final = re.compile(r"(?P<head>://[^:/@\s]*:)(?P<password>[^@\s]*)(?P<tail>@)")


class StoreUnavailableError(PolytradeError):
    """The store's database could not be reached or used (exit code 4, UNAVAILABLE)."""

    exit_code = ExitCode.UNAVAILABLE


KNOWN_REVISIONS: Final = ("0001", "0002", "0003")
"""The shipped migrations' revisions, oldest first (kept equal to Alembic's by a test)."""


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def store_url(url: str | None) -> str:
    """The SQLAlchemy URL of a store.

    Args:
        url: `sqlite:///path.db`, `postgresql://user:password@host:port/database` (also
            `postgres://`), or None for `DEFAULT_URL`.

    Returns:
        The URL to connect with: `postgresql://` and `postgres://` name the psycopg 3 driver
        (`postgresql+psycopg://`); other URLs are returned as given.

    Raises:
        UsageError: the URL cannot be parsed or names a database the store does not support.
    """
    if url is None:
        return DEFAULT_URL
    parsed = _parse(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend == "postgresql" and driver in {"", "psycopg"}:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite" and driver in {"", "pysqlite"}:
        return url
    raise UsageError(
        f"the store URL {mask_url(url)} names {parsed.drivername}, which the store does not "
        "support; use sqlite:///path/to/file.db or postgresql://user:password@host/database"
    )


def open_store(url: str | None = None, *, create: bool = True) -> Engine:
    """Connect to a store and bring its schema to the latest migration.

    Args:
        url: see `store_url`; None opens `DEFAULT_URL`.
        create: when False, a SQLite file that does not exist is an error instead of being
            created (read-only commands use it so a typo does not leave an empty store).

    Returns:
        A SQLAlchemy engine. On SQLite every connection it makes has journal_mode=WAL,
        synchronous=FULL and foreign_keys=ON, and transactions begin with an explicit BEGIN
        (so a transaction is all or nothing, DDL included).

    Raises:
        UsageError: the URL is not usable (unsupported, no such SQLite file with
            `create=False`, not a database file, a schema newer than this version knows).
        StoreUnavailableError: the database cannot be reached or opened.
    """
    full = store_url(url)
    parsed = _parse(full)
    shown = mask_url(full)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, shown, create=create)
    else:
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
        try:
            engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
        except (NoSuchModuleError, ImportError) as exc:
            raise UsageError(
                f"the store URL {shown} needs a driver that is missing: {exc}"
            ) from None
    try:
        upgrade_schema(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise _unavailable(exc, shown, full) from None
    except BaseException:
        engine.dispose()
        raise
    return engine


def upgrade_schema(engine: Engine) -> None:
    """Apply every migration the database lacks, in one transaction; nothing when at head.

    Raises:
        UsageError: the database is at a revision this version of Polytrade does not know
            (it was written by a newer version).
    """
    head = head_revision()
    with engine.connect() as connection:
        if schema_revision(connection) == head:
            return
    # Two processes may open a new store at once: the first takes the write lock (SQLite:
    # BEGIN IMMEDIATE; PostgreSQL: an advisory lock), the second waits, then finds the head.
    with engine.connect() as plain:
        connection = plain.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            if schema_revision(connection) == head:
                return
            from alembic import command  # noqa: PLC0415 - only when migrating

            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


@contextmanager
def store_errors(engine: Engine) -> Iterator[None]:
    """Raise an unreachable or unwritable database as StoreUnavailableError (masked URL).

    Locked, full, read-only or gone: the operational errors a user can meet. Other errors
    (constraints, bugs) pass unchanged.
    """
    try:
        yield
    except OperationalError as exc:
        full = engine.url.render_as_string(hide_password=False)
        raise _unavailable(exc, mask_url(full), full) from None


def schema_revision(connection: Connection) -> str | None:
    """The Alembic revision the database is at (None for an empty database).

    Read with plain SQL: importing Alembic costs most of a second, and an up-to-date store
    (every start but the first) never needs it.

    Raises:
        UsageError: the revision is not one this version of Polytrade knows.
    """
    if not inspect(connection).has_table("alembic_version"):
        return None
    current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if current is None:
        return None
    if current not in KNOWN_REVISIONS:
        url = connection.engine.url.render_as_string(hide_password=True)
        raise UsageError(
            f"the store {url} has schema revision {current}, which this version of Polytrade "
            f"does not know (it knows {', '.join(KNOWN_REVISIONS)}); it was written by a newer "
            "version: upgrade Polytrade or use another store"
        )
    return str(current)


def head_revision() -> str:
    """The newest migration's revision id (a test keeps it equal to Alembic's own head)."""
    return KNOWN_REVISIONS[-1]


def script_revisions() -> list[str]:
    """Every revision of the shipped migrations, oldest first, as Alembic reads them."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - only when migrating

    script = ScriptDirectory.from_config(_alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def _alembic_config() -> Config:
    from alembic.config import Config  # noqa: PLC0415 - only when migrating

    config = Config()
    # configparser interpolates %: a % in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise UsageError(
            f"the store URL {mask_url(url)!r} cannot be read; use sqlite:///path/to/file.db or "
            "postgresql://user:password@host:port/database"
        ) from None


def _sqlite_engine(parsed: URL, shown: str, *, create: bool) -> Engine:
    database = parsed.database or ""
    in_memory = database in {"", ":memory:"} or database.startswith("file:")
    if not in_memory:
        path = Path(database)
        if not create and not path.is_file():
            raise UsageError(
                f"there is no store at {path} (from {shown}); give its URL with --store or "
                "POLYTRADE_STORE_URL, or save a run there first"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"the folder of the store {path} cannot be created: {exc.strerror}"
            ) from None
    # One shared connection for an in-memory database: each new one would be a new, empty one.
    pool: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
    engine = create_engine(parsed, **pool)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:  # noqa: ANN401 - a DB-API connection
    del record
    # The sqlite3 module opens transactions by itself only before INSERT/UPDATE/DELETE, and
    # never before DDL; turning that off and sending BEGIN ourselves (in _sqlite_on_begin)
    # makes every SQLAlchemy transaction a real one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            deadline = time.monotonic() + _WAL_RETRY_S
            while True:
                try:
                    cursor.execute(f"PRAGMA {pragma}")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    begin = connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if begin == "BEGIN IMMEDIATE" else "BEGIN")


def _unavailable(exc: DBAPIError, shown: str, full: str) -> PolytradeError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    password = make_url(full).password
    if password:
        reason = reason.replace(str(password), "***")
    if "file is not a database" in reason:
        return UsageError(f"the store {shown} is not a SQLite database ({reason})")
    return StoreUnavailableError(
        f"the store {shown} cannot be used: {reason}; check that the database server is "
        "running and that the URL, user and password are right"
    )
