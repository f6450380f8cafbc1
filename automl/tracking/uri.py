"""Which MLflow tracking store a sweep writes to, checked before any compute."""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlparse

from automl.config.paths import not_creatable
from automl.config.schema import ConfigError
from automl.provenance import masked_line, redact

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


class StoreError(Exception):
    """The tracking store failed during a sweep (a server gone, a disk full): one line."""


def store_failure(err: BaseException) -> BaseException | None:
    """The MLflow error behind `err` (itself, or what it was raised from), None if none."""
    from mlflow.exceptions import MlflowException

    visited: set[int] = set()
    seen: BaseException | None = err
    while seen is not None and id(seen) not in visited:
        if isinstance(seen, MlflowException):
            return seen
        visited.add(id(seen))
        seen = seen.__cause__ or seen.__context__
    return None


def scheme_of(uri: str) -> str:
    """`sqlite`, `http`, ...; a bare path is `file`, and MLflow's bare `databricks` (or
    `databricks-uc`) is Databricks."""
    if "://" in uri:
        return uri.split("://", 1)[0]
    head = uri.split(":", 1)[0]
    if head in ("databricks", "databricks-uc"):
        return "databricks"
    # `sqlite:/x.db` (slashes missing) is a mistyped SQLite store, not a file path; `file:/x`
    # is a file URI; `C:/runs` a Windows path
    return head if head in ("sqlite", "postgresql", "mysql") else "file"


def file_store_path(uri: str) -> str:
    """The folder of a file store: a bare path, or a `file:` URI's path (`file:///a%20b`,
    `file://localhost/x`, `file:/x`) with its %-escapes decoded."""
    if not uri.startswith("file:"):
        return uri
    parsed = urlparse(uri)
    return unquote(parsed.path)


def tracking_uri(configured: str | None) -> str:
    """The configured URI, else $MLFLOW_TRACKING_URI, else a SQLite file in the working dir."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    scheme = scheme_of(uri)
    allowed = ("sqlite", "http", "https", "file", "postgresql", "mysql", "databricks")
    if not any(scheme.startswith(a) for a in allowed):
        raise ConfigError(f"config: tracking.uri: unsupported scheme {scheme!r} in {redact(uri)}")
    return uri


def sqlite_path(uri: str) -> str:
    """The file of a `sqlite:///` URI, query dropped and %-escapes decoded as SQLAlchemy does."""
    return unquote(uri.removeprefix("sqlite:///").split("?", 1)[0])


def sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI; None for other stores, in-memory databases and
    SQLite URI filenames (`file:...`), which have no plain file to place things beside."""
    path = sqlite_path(uri) if uri.startswith("sqlite:///") else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def create_in_wal_mode(uri: str) -> None:
    """A SQLite store the sweep creates starts in write-ahead-log mode: each MLflow write in the
    driver costs less (one sync a commit), and the UI reads while the sweep writes instead of
    making it wait. The mode stays with the file; an existing store is the user's and keeps its
    own. SQLite URI filenames (`file:...`) are left to MLflow as they are."""
    path = sqlite_file(uri)
    if path is None or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")


def artifact_root(uri: str, experiment: str) -> str | None:
    """Where a new experiment of a SQLite store keeps its artifacts: `mlruns/<experiment>/`
    beside the database file. MLflow's own default is `./mlruns/<id>` in the working directory
    whatever the database's path, so every store opened from one folder would share it, and a
    sweep would write artifacts where it was started rather than where its records are. None
    for other stores: a server or database knows its own artifact root."""
    path = sqlite_file(uri)
    if path is None:
        return None
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
    return (path.absolute().parent / "mlruns" / folder).as_uri()


def check_store(uri: str) -> None:
    """The tracking store must be usable before any compute, and checking it writes nothing:
    a local file must be creatable (or already an MLflow store), a server or a database must
    answer."""
    scheme = scheme_of(uri)
    if scheme in ("http", "https"):
        check_reachable(uri)
    elif scheme == "sqlite":
        if uri != "sqlite://" and not uri.startswith("sqlite:///"):  # sqlite://x.db: a typo
            raise ConfigError(
                f"config: tracking.uri: {redact(uri)}: a SQLite store is sqlite:///relative.db "
                "or sqlite:////absolute/path.db (three or four slashes)"
            )
        path = sqlite_path(uri)
        if (
            uri == "sqlite://"
            or path == ":memory:"
            or (  # a SQLite URI filename in memory
                path.startswith("file:")
                and (path.startswith("file::memory:") or "mode=memory" in uri)
            )
        ):
            raise ConfigError(
                f"config: tracking.uri: {redact(uri)}: an in-memory SQLite store is gone when "
                "the command ends (and with it every run); use sqlite:///PATH/mlflow.db"
            )
        _check_creatable(uri, sqlite_path(uri))
        _check_is_mlflow_store(uri)
    elif scheme == "file":
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
            raise ConfigError(
                f"config: tracking.uri: {redact(uri)}: MLflow refuses file stores (maintenance "
                "mode); use sqlite:///PATH/mlflow.db, or set MLFLOW_ALLOW_FILE_STORE=true"
            )
        _check_creatable(uri, file_store_path(uri))
    else:  # a database server (postgresql, mysql, ...) or databricks: ask it once
        _check_answers(uri)


def check_registry(uri: str) -> None:
    """$MLFLOW_REGISTRY_URI, where set apart from the tracking store, registers the export: a
    registry that cannot be used failed the sweep at its very end, after every trial."""
    registry = os.environ.get("MLFLOW_REGISTRY_URI")
    if not registry or registry == uri:
        return
    try:
        check_store(registry)
    except ConfigError as err:
        raise ConfigError(
            "config: MLFLOW_REGISTRY_URI: " + str(err).removeprefix("config: tracking.uri: ")
        ) from None


def store_problem(uri: str | None) -> str | None:
    """`check_store` for a command-line option (`--tracking-uri`): why the store cannot be used,
    in one line without the config key, or None when it can."""
    try:
        check_store(tracking_uri(uri))
    except ConfigError as err:
        return str(err).removeprefix("config: tracking.uri: ")
    return None


def _check_creatable(uri: str, path: str) -> None:
    """The store's file or folder exists, or its nearest existing parent is a writable folder."""
    if not path:
        return
    problem = not_creatable(path)
    if problem:
        raise ConfigError(f"config: tracking.uri: {redact(uri)}: {problem}")


def _check_is_mlflow_store(uri: str) -> None:
    """An existing SQLite file must be an MLflow store already: MLflow would add its tables to
    any other database (another application's) without asking. Read without writing anything,
    beside it either."""
    path = sqlite_file(uri)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    # immutable: no lock and no -wal/-shm files left beside it; but a store in use (its -wal
    # there) is read through its log, or tables still in the log would be missed
    in_use = path.with_name(path.name + "-wal").exists()
    try:
        location = f"{path.absolute().as_uri()}?mode=ro" + ("" if in_use else "&immutable=1")
        with closing(sqlite3.connect(location, uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as err:
        if "locked" in str(err) or "busy" in str(err):
            return  # a store another process holds: MLflow waits for it as it does for writes
        what = "cannot be read" if "unable to open" in str(err) else "not a SQLite database"
        raise ConfigError(f"config: tracking.uri: {redact(uri)}: {what} ({err})") from None
    _refuse_foreign_tables(uri, tables, "file")


def _check_answers(uri: str) -> None:
    """A server answers; a database is an MLflow store or empty: MLflow's client adds its
    tables (and runs its migrations) in any database it is pointed at, even to read."""
    from mlflow.tracking import MlflowClient

    try:
        if scheme_of(uri).startswith(("postgresql", "mysql")):
            _check_tables(uri)
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except ConfigError:
        raise
    except Exception as err:  # a missing driver, a refused connection, bad credentials
        raise ConfigError(
            f"config: tracking.uri: {redact(uri)} cannot be used ({type(err).__name__}: "
            f"{masked_line(err)})"
        ) from None


def _check_tables(uri: str) -> None:
    """Read the database's table names only (SQLAlchemy, which MLflow's SQL store uses)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    _refuse_foreign_tables(uri, tables, "database")


def _refuse_foreign_tables(uri: str, tables: set[str], what: str) -> None:
    """An empty database becomes a store; one with tables must hold MLflow's already."""
    if tables and not {"alembic_version", "experiments"} <= tables:
        raise ConfigError(
            f"config: tracking.uri: {redact(uri)}: a database of another application (tables "
            f"{', '.join(sorted(tables)[:5])}), not an MLflow store: name another {what}"
        )


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """An HTTP tracking server must answer before any compute is spent on a sweep."""
    if not uri.startswith(("http://", "https://")):
        return
    import http.client
    import ssl
    import urllib.error
    import urllib.request
    from urllib.parse import unquote, urlsplit, urlunsplit

    try:
        parts = urlsplit(uri.rstrip("/") + "/health")
        # urllib reads `alice:pw@host` as the host name; MLflow's requests sends it as Basic
        # auth, to this host only (a redirect elsewhere does not carry it)
        host = parts.netloc.rpartition("@")[2]  # host[:port], [v6] kept
        request = urllib.request.Request(urlunsplit(parts._replace(netloc=host)))
        if parts.username is not None:
            import base64

            user, password = unquote(parts.username), unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_unredirected_header("Authorization", f"Basic {token}")
        urllib.request.urlopen(request, timeout=timeout_s).close()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            return  # an authenticating proxy answered: the server is there
        if err.code == 404:  # a server with MLflow's API but no /health (DagsHub): ask the API
            _check_answers(uri)
            return
        raise ConfigError(
            f"config: tracking.uri: {redact(uri)} answered HTTP {err.code} at /health (not an "
            "MLflow tracking server, or one that is down behind its proxy)"
        ) from None
    except (ValueError, http.client.InvalidURL):  # an unencoded '/' or '#' in a password
        raise ConfigError(  # not echoed: such a password escapes `redact` too
            "config: tracking.uri: is not a valid URL (percent-encode special characters in a "
            "user name or password)"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, ssl.SSLError):  # a private CA MLflow is told of, not urllib
            _check_answers(uri)
            return
        raise ConfigError(
            f"config: tracking.uri: {redact(uri)} does not answer ({reason})"
        ) from None
