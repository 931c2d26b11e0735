"""The composition root: settings in, concrete backends and the app out.

This is the only module that names concrete backends. The embedded default
keeps the journal and the store in two SQLite files of the data folder, so
the journal's group commits and the recorder's index steps never wait for
each other's write lock.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path

from starlette.applications import Starlette

from auditlake.config import Settings
from auditlake.consumers.archiver import Archiver
from auditlake.consumers.process import ConsumerProcess
from auditlake.consumers.runner import BatchObserver, ConsumerGroup, ConsumerRunner
from auditlake.consumers.state import ConsumerState
from auditlake.dead_letters import DeadLetters
from auditlake.errors import ConfigError, Unavailable
from auditlake.files import PRIVATE_UMASK, private_folder
from auditlake.ingest import Ingest
from auditlake.journal.base import CommitObserver, Journal
from auditlake.journal.sqlite import SqliteJournal
from auditlake.journal.sqlite_reader import SqliteJournalReader
from auditlake.keys.base import KeyStore
from auditlake.keys.sqlite import SqliteKeyStore
from auditlake.lake.objects import LocalObjects, ObjectStore
from auditlake.metrics import Metrics
from auditlake.pollers.poller import Poller, PollObserver, Schedule
from auditlake.pollers.runner import PollerGroup, PollerRunner
from auditlake.pollers.state import PollerState
from auditlake.process_tuning import freeze_startup_objects, tune_allocator
from auditlake.runtime import Services
from auditlake.sqlite_db import connect
from auditlake.store.base import EventStore
from auditlake.store.recorder_process import RecorderProcess
from auditlake.store.retention import Keeper, RetentionRunner
from auditlake.store.sqlite import SqliteStore
from auditlake.store.sqlite_recorder import SqliteIndexSink, open_index_store
from auditlake.store.sqlite_retention import SqliteKeeper, SqliteRetention
from auditlake.web.app import create_app

log = logging.getLogger("uvicorn.error")  # where uvicorn's own lines go
ARCHIVER = "archiver"
# From the start of one recorder batch to the next at least: under a stream
# of small commits, fewer and larger steps (fewer reports for the server to
# read) for at most this much searchability (docs/benchmarks.md, "issue 12
# closed"); a batch that takes longer is followed at once.
RECORDER_MIN_STEP_SECONDS = 0.01
RECORDER = "recorder"
RECORDER_REINDEX = "recorder.reindex"  # reads only: never committed


def build_services(settings: Settings) -> Services:
    """The embedded backends for `settings` (not started yet)."""
    metrics = Metrics()
    recorder = RecorderProcess(partial(build_recorder, settings), on_step=metrics.observe_index)
    journal = build_journal(settings, on_commit=metrics.observe_commit, on_durable=recorder.notify)
    consumers = (
        ConsumerProcess(build_consumers(settings), partial(build_consumers, settings))
        if settings.lake.enabled
        else None
    )
    services = Services(
        settings=settings,
        journal=journal,
        store=build_store(settings),
        keys=build_keys(settings),
        metrics=metrics,
        recorder=recorder,
        consumers=consumers,
        retention=build_retention(settings, consumers) if consumers else None,
    )
    if settings.sources.cloudflare:
        services.pollers = build_pollers(settings, services.ingest, metrics)
    return services


def build_journal(
    settings: Settings,
    *,
    on_commit: CommitObserver | None = None,
    on_durable: Callable[[int], None] | None = None,
) -> Journal:
    """The journal (not started); `on_durable(position)` after each commit."""
    return SqliteJournal(
        settings.journal_path,
        queue_capacity=settings.queue_capacity,
        max_commit_events=settings.max_commit_events,
        on_commit=on_commit,
        on_durable=on_durable,
    )


def build_ingest(journal: Journal) -> Ingest:
    """The way in for a CLI process (`poll`, `rehydrate`): it runs no
    recorder, so nothing holds its writes back but the journal's queue (a
    server indexes what it wrote at its own pace), and it exports no metrics."""
    return Ingest(journal, Metrics())


def build_keeper(settings: Settings) -> Keeper:
    """Where rehydrate asks retention to keep events for a while."""
    return SqliteKeeper(settings.journal_path)


def build_keys(settings: Settings) -> KeyStore:
    """The API keys' store."""
    return SqliteKeyStore(settings.keys_path)


def build_recorder(settings: Settings, on_batch: BatchObserver) -> ConsumerGroup:
    """The recorder: the journal made searchable in the store, as fast as
    it comes (every waiting record is due; the position is the store's)."""
    sink = SqliteIndexSink(open_index_store(settings.store_path))
    reader = SqliteJournalReader(settings.journal_path)
    rereader = reader.subscribe(RECORDER_REINDEX)
    state = ConsumerState(settings.consumers_path)
    recorder = ConsumerRunner(
        RECORDER,
        sink,
        reader,
        state.dead_letters,
        batch_events=1,
        batch_seconds=0.0,
        catch_up_events=settings.index_batch_events,
        max_backoff=1.0,  # search waits on it: retry every second, as it always did
        min_step_seconds=RECORDER_MIN_STEP_SECONDS,
        on_batch=on_batch,
        on_idle=partial(sink.reindex_text, rereader, settings.index_batch_events),
    )
    closers = [sink.close, rereader.close, reader.close, state.close]
    return ConsumerGroup([recorder], state.dead_letters, closers)


def consumer_names(settings: Settings) -> list[str]:
    """The journal consumers `settings` run."""
    return [RECORDER, *([ARCHIVER] if settings.lake.enabled else [])]


def build_consumer_letters(settings: Settings) -> tuple[DeadLetters, Callable[[], None]]:
    """The consumers' dead letters, and what closes them."""
    state = ConsumerState(settings.consumers_path)
    return state.dead_letters, state.close


def build_consumers(settings: Settings) -> ConsumerGroup:
    """The archiver, following the journal into the lake."""
    state = ConsumerState(settings.consumers_path)
    reader = SqliteJournalReader(settings.journal_path)
    archiver = ConsumerRunner(
        ARCHIVER,
        Archiver(lake_objects(settings)),
        reader,
        state.dead_letters,
        resume_from=state.legacy_cursor(ARCHIVER),
        batch_events=settings.lake.batch_events,
        batch_seconds=settings.lake.batch_seconds,
    )
    return ConsumerGroup([archiver], state.dead_letters, [reader.close, state.close])


def build_store(settings: Settings) -> EventStore:
    """The store searches read; with retention, the lake answers for what left it."""
    store = SqliteStore(settings.store_path, settings.journal_path)
    if not settings.retention.active:
        return store
    from auditlake.lake.reader import LakeReader
    from auditlake.store.history import HistoryStore

    return HistoryStore(store, LakeReader(lake_objects(settings)), settings.retention)


def build_retention(settings: Settings, consumers: ConsumerProcess) -> RetentionRunner | None:
    """Retention of the store, when `[retention]` lets events leave it."""
    if not settings.retention.active:
        return None
    retention = SqliteRetention(
        settings.store_path,
        settings.journal_path,
        settings.retention,
        archived=lambda: consumers.output_through(ARCHIVER),
    )
    return RetentionRunner(retention, settings.retention.every_seconds)


def lake_objects(settings: Settings) -> ObjectStore:
    """The lake's object store: S3 when configured, else the folder."""
    s3 = settings.lake.s3
    if s3 is None:
        return LocalObjects(settings.lake_folder)
    from auditlake.lake.s3 import S3Objects

    return S3Objects(
        s3.bucket,
        prefix=s3.prefix,
        endpoint=s3.endpoint,
        region=s3.region,
        path_style=s3.path_style,
        allow_http=s3.allow_http,
    )


def build_pollers(settings: Settings, ingest: Ingest, observer: PollObserver | None) -> PollerGroup:
    """A runner per `[[sources.cloudflare]]` block, journaling through `ingest`."""
    import httpx

    from auditlake.pollers.cloudflare import make_fetcher

    state = PollerState(settings.pollers_path)
    runners, closers = [], []
    for source in settings.sources.cloudflare:
        client = httpx.Client(timeout=source.timeout_seconds)
        closers.append(client.close)
        poller = Poller(
            source.name,
            source.tenant or source.account_id,
            make_fetcher(source, client),
            Schedule(source.poll_interval, source.safety_lag, source.initial_checkpoint),
            ingest=ingest,
            state=state,
            limits=settings.limits,
            observer=observer,
        )
        runners.append(PollerRunner(poller, max_backoff=source.max_backoff_seconds))
    closers.append(state.close)
    return PollerGroup(runners, closers)


def build_app(settings: Settings) -> Starlette:
    """The ASGI app; it starts and stops its backends with its lifespan."""
    return create_app(build_services(settings))


def serve(settings: Settings, port_file: Path | None = None) -> None:
    """Run the HTTP server until interrupted. The socket listens before the
    app starts (port 0: the system picks a free one), and the bound port is
    written to `port_file` if given (for scripts and tests, which need no
    guess at a free port)."""
    import uvicorn

    os.umask(PRIVATE_UMASK)  # whatever else the process and its children write
    tune_allocator()
    check_databases(settings)
    listener = listen(settings.host, settings.port)
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        build_app(settings),
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )  # configures logging

    def forget_port() -> None:  # a script must not read a port that is gone
        if port_file is not None:
            port_file.unlink(missing_ok=True)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # uvicorn's own line is left out when it gets a socket
                log.info("listening on %s:%d", settings.host, port)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            try:
                await super().shutdown(sockets)
            finally:  # before uvicorn re-raises the signal that stopped it
                forget_port()

    if port_file is not None:
        write_port(port_file, port)
    freeze_startup_objects()
    try:
        Server(config).run(sockets=[listener])
    finally:  # a start that failed
        forget_port()


def check_databases(settings: Settings) -> None:
    """Open each database file the server uses once, before it starts: a
    path it cannot use is one error naming it (Unavailable), not a failure
    inside the app's startup or a child that keeps dying."""
    paths = [settings.journal_path, settings.store_path, settings.keys_path]
    paths += [settings.consumers_path] + (
        [settings.pollers_path] if settings.sources.cloudflare else []
    )
    for path in paths:
        try:
            private_folder(path.parent)
        except OSError as exc:
            raise Unavailable(f"cannot make the folder of {path}: {exc.strerror or exc}") from exc
        connect(path).close()


def write_port(path: Path, port: int) -> None:
    """Write `port` to `path` whole (a reader never sees half of it);
    ConfigError naming the path when it cannot be written."""
    partial_file = path.with_name(path.name + ".partial")
    try:
        partial_file.write_text(f"{port}\n")
        partial_file.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the port file {path}: {exc.strerror or exc}") from exc


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on `host`:`port`; Unavailable naming the
    address when it cannot (in use, not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return listener
