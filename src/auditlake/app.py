"""The composition root: settings in, concrete backends and the app out.

This is the only module that names concrete backends. In the embedded default
journal and store share one SQLite file, so the recorder that indexes the
journal for search runs on the journal's writer thread (one writer per file).
"""

from __future__ import annotations

from starlette.applications import Starlette

from auditlake.config import Settings
from auditlake.journal.sqlite import SqliteJournal
from auditlake.keys.sqlite import SqliteKeyStore
from auditlake.store.sqlite import SqliteStore
from auditlake.store.sqlite_recorder import SqliteRecorder
from auditlake.web.app import create_app
from auditlake.web.metrics import Metrics
from auditlake.web.services import Services


def build_services(settings: Settings) -> Services:
    """The embedded backends for `settings` (not started yet)."""
    path = settings.database_path
    metrics = Metrics()
    recorder = SqliteRecorder(
        batch_events=settings.index_batch_events, on_step=metrics.observe_index
    )
    journal = SqliteJournal(
        path,
        recorder=recorder,
        queue_capacity=settings.queue_capacity,
        max_commit_events=settings.max_commit_events,
        index_delay=settings.index_delay_seconds,
        on_commit=metrics.observe_commit,
    )
    return Services(
        settings=settings,
        journal=journal,
        store=SqliteStore(path),
        keys=SqliteKeyStore(path),
        metrics=metrics,
        searchable=journal.sync_index,
        index_lag=journal.index_lag,
    )


def build_app(settings: Settings) -> Starlette:
    """The ASGI app; it starts and stops its backends with its lifespan."""
    return create_app(build_services(settings))


def serve(settings: Settings) -> None:
    """Run the HTTP server until interrupted."""
    import uvicorn

    uvicorn.run(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )
