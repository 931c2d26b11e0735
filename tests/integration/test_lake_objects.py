"""One contract suite for the lake's object stores: a local folder and S3
(a moto server on 127.0.0.1), plus the local folder's crash safety."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tests.conftest import free_port

from auditlake.consumers.archiver import Archiver
from auditlake.core.event import Event
from auditlake.errors import ConfigError, Unavailable
from auditlake.lake.layout import read_rows
from auditlake.lake.objects import LocalObjects, ObjectStore
from auditlake.lake.s3 import S3Objects

BUCKET = "auditlake-test"
REGION = "us-east-1"
# Fake keys for moto, passed explicitly: no test touches the process environment
# for them.
FAKE = {"access_key_id": "AKIAFAKEFAKEFAKE", "secret_access_key": "fake-secret-do-not-print"}

WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server for this module, with the test bucket created."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _one_request_at_a_time(server)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=FAKE["access_key_id"],
        aws_secret_access_key=FAKE["secret_access_key"],
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def _one_request_at_a_time(server: ThreadedMotoServer) -> None:
    """moto checks If-Match / If-None-Match and then stores without a lock, so
    two racing PUTs could in theory both pass; real S3 decides atomically.
    Serializing moto's requests models that and keeps the race test honest
    about the client, not about moto."""
    wsgi = server._server  # the only handle on moto's WSGI server
    assert wsgi is not None
    app: WSGI = wsgi.app
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    wsgi.app = serialized


def _s3(endpoint: str, **overrides: Any) -> S3Objects:
    """An S3Objects on a fresh prefix of the test bucket."""
    options: dict[str, Any] = {
        "prefix": f"run-{uuid.uuid4().hex}",
        "endpoint": endpoint,
        "region": REGION,
        "path_style": True,
        "allow_http": True,
        "credentials": FAKE,
    }
    options.update(overrides)
    return S3Objects(options.pop("bucket", BUCKET), **options)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjects(tmp_path / "lake")
    return _s3(request.getfixturevalue("s3_endpoint"))


# --- the contract, for every backend ------------------------------------------


def test_get_of_missing_object_is_none(store: ObjectStore) -> None:
    assert store.get("nothing/here.parquet") is None


def test_create_then_get_returns_bytes_and_tag(store: ObjectStore) -> None:
    assert store.put("a/first.bin", b"hello", None) is True
    got = store.get("a/first.bin")
    assert got is not None
    assert got[0] == b"hello"
    assert isinstance(got[1], str) and got[1]


def test_create_over_existing_object_is_refused(store: ObjectStore) -> None:
    assert store.put("a/f", b"one", None)
    assert store.put("a/f", b"two", None) is False
    assert _data(store, "a/f") == b"one"


def test_update_with_current_tag_replaces(store: ObjectStore) -> None:
    store.put("a/f", b"one", None)
    tag = _tag(store, "a/f")
    assert store.put("a/f", b"two", tag) is True
    assert _data(store, "a/f") == b"two"
    assert _tag(store, "a/f") != tag


def test_update_with_stale_tag_is_refused(store: ObjectStore) -> None:
    store.put("a/f", b"one", None)
    stale = _tag(store, "a/f")
    store.put("a/f", b"two", stale)
    assert store.put("a/f", b"three", stale) is False
    assert _data(store, "a/f") == b"two"


def test_update_of_missing_object_is_refused(store: ObjectStore) -> None:
    store.put("a/other", b"one", None)
    tag = _tag(store, "a/other")
    assert store.put("a/never", b"x", tag) is False
    assert store.get("a/never") is None


def test_racing_writers_lose_no_update(store: ObjectStore) -> None:
    errors: list[BaseException] = []

    def append_line(n: int) -> None:
        try:
            _append(store, "race/log.txt", f"line {n}\n".encode())
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=append_line, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    lines = _data(store, "race/log.txt").decode().splitlines()
    assert sorted(lines) == sorted(f"line {n}" for n in range(10))


def test_list_is_sorted_nested_and_filtered_by_folder(store: ObjectStore) -> None:
    for path in ["b/2", "a/x/3", "a/1", "ab/4"]:
        store.put(path, b".", None)
    assert store.list("") == ["a/1", "a/x/3", "ab/4", "b/2"]
    assert store.list("a") == ["a/1", "a/x/3"]  # a folder, so not "ab/4"
    assert store.list("a/x") == ["a/x/3"]
    assert store.list("missing") == []


def test_large_object_round_trip(store: ObjectStore) -> None:
    data = os.urandom(5 * 1024 * 1024)
    assert store.put("big/blob.bin", data, None)
    assert _data(store, "big/blob.bin") == data
    changed = data[:-1] + b"!"
    assert store.put("big/blob.bin", changed, _tag(store, "big/blob.bin"))
    assert _data(store, "big/blob.bin") == changed


@pytest.mark.parametrize("top", ["acme", "tenant=acme", "a%3Ab"])
def test_hive_style_paths(store: ObjectStore, top: str) -> None:
    path = f"{top}/year=2026/month=1/day=15/hour=0/events.parquet"
    other = f"{top}x/year=2026/month=1/day=15/hour=0/events.parquet"
    assert store.put(path, b"rows", None)
    assert store.put(other, b"rows", None)
    assert _data(store, path) == b"rows"
    assert store.list(top) == [path]
    assert store.list(f"{top}/year=2026/month=1") == [path]
    assert store.put(path, b"more rows", _tag(store, path))


def test_folders_are_the_names_directly_below_a_prefix(store: ObjectStore) -> None:
    assert store.folders("") == []
    for path in ["b/2", "a/x/3", "a/1", "ab/y/z/4", "top.txt", "tenant=a%3Ab/year=1/f"]:
        store.put(path, b".", None)
    assert store.folders("") == ["a", "ab", "b", "tenant=a%3Ab"]  # not the file top.txt
    assert store.folders("a") == ["x"]
    assert store.folders("ab/") == ["y"]
    assert store.folders("missing") == []


def test_delete_at_the_current_version_removes_the_object(store: ObjectStore) -> None:
    store.put("d/f", b"one", None)
    store.put("d/g", b"other", None)
    assert store.delete("d/f", _tag(store, "d/f")) is True
    assert store.get("d/f") is None
    assert store.list("d") == ["d/g"]
    assert store.delete("d/f", "any-tag") is True  # gone already: deleted
    assert store.put("d/f", b"again", None)  # and may be created anew


def test_delete_at_a_stale_version_removes_nothing(store: ObjectStore) -> None:
    store.put("d/f", b"one", None)
    stale = _tag(store, "d/f")
    store.put("d/f", b"two", stale)
    assert store.delete("d/f", stale) is False
    assert _data(store, "d/f") == b"two"


def test_a_folder_whose_objects_are_all_deleted_is_not_listed(store: ObjectStore) -> None:
    store.put("gone/x/y/f", b".", None)
    store.put("kept/f", b".", None)
    assert store.delete("gone/x/y/f", _tag(store, "gone/x/y/f"))
    assert store.folders("") == ["kept"]
    assert store.list("gone") == []


# --- the local folder only ------------------------------------------------------


def test_local_crash_before_rename_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjects(tmp_path / "lake")
    store.put("t/f.parquet", b"old", None)
    tag = _tag(store, "t/f.parquet")

    def crash(*_args: object) -> None:
        raise OSError("simulated crash before the rename")

    with monkeypatch.context() as patch, pytest.raises(OSError, match="simulated"):
        patch.setattr(os, "replace", crash)
        store.put("t/f.parquet", b"new", tag)
    assert store.get("t/f.parquet") == (b"old", tag)
    assert store.list("") == ["t/f.parquet"]
    assert not list((tmp_path / "lake").rglob("*.part"))


def test_local_lock_and_temp_files_stay_out_of_the_data_folders(tmp_path: Path) -> None:
    # Readers glob a tenant's folder (DuckDB `read_parquet('lake/acme/**')`):
    # a lock file there was read as a broken Parquet file.
    root = tmp_path / "lake"
    store = LocalObjects(root)
    one, two = "acme/year=2026/hour=1/events.parquet", "acme/year=2026/hour=2/events.parquet"
    store.put(one, b"one", None)
    store.put(one, b"two", _tag(store, one))
    store.put(two, b"x", None)
    store.delete(two, _tag(store, two))
    outside = _outside_locks(root, files_only=True)
    assert outside == ["acme/year=2026/hour=1/events.parquet"]
    assert (root / ".locks/acme/year=2026/hour=1/.lock").is_file()
    assert not list(root.rglob("*.part"))
    assert store.folders("") == ["acme"] and store.list("") == outside


def _outside_locks(root: Path, *, files_only: bool = False) -> list[str]:
    """What is below `root` but not in its `.locks` folder, sorted."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if ".locks" not in p.parts and (p.is_file() or not files_only)
    )


def _append_lines(root: str, worker: int, lines: int) -> None:
    """One process's writer: `lines` read-append-write rounds on one object."""
    store = LocalObjects(Path(root))
    for n in range(lines):
        _append(store, "race/log.txt", f"{worker}:{n}\n".encode())


def test_local_writers_in_several_processes_lose_no_update(tmp_path: Path) -> None:
    # The in-process lock cannot serialize processes: only the shared lock file can.
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_append_lines, args=(str(tmp_path / "lake"), w, 25))
        for w in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    lines = _data(LocalObjects(tmp_path / "lake"), "race/log.txt").decode().splitlines()
    assert sorted(lines) == sorted(f"{w}:{n}" for w in range(3) for n in range(25))


def test_local_leftovers_of_older_versions_are_removed_unless_in_use(tmp_path: Path) -> None:
    import fcntl

    root = tmp_path / "lake"
    store = LocalObjects(root)
    store.put("old/a/events.parquet", b"rows", None)
    for folder in ("old/a", "old/b/c", "busy"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / ".lock").touch()
    (root / "old/a/.tmp-1.part").touch()
    os.utime(root / "old/a/.tmp-1.part", (0, 0))  # an hour old: a crash's
    (root / "old/a/.tmp-2.part").touch()  # maybe a write in progress: stays
    held = os.open(root / "busy/.lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # a writer is inside
    try:
        assert store.remove_leftovers(lambda name: True, empty_folders=True) == 3
    finally:
        os.close(held)
    assert _outside_locks(root) == [
        "busy", "busy/.lock", "old", "old/a", "old/a/.tmp-2.part", "old/a/events.parquet"
    ]  # fmt: skip
    assert store.get("old/a/events.parquet") == (b"rows", _tag(store, "old/a/events.parquet"))


# --- S3 only ------------------------------------------------------------------------


def test_s3_unreachable_is_transient_and_keeps_secrets() -> None:
    store = _s3(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    for call in (lambda: store.get("x"), lambda: store.put("x", b"1", None)):
        with pytest.raises(Unavailable) as info:
            call()
        assert info.value.transient
        for secret in FAKE.values():
            assert secret not in str(info.value)


def test_s3_missing_bucket_is_a_config_error(s3_endpoint: str) -> None:
    store = _s3(s3_endpoint, bucket="no-such-bucket")
    with pytest.raises(ConfigError, match="bucket does not exist"):
        store.get("x")
    with pytest.raises(ConfigError, match="bucket does not exist"):
        store.put("x", b"1", None)


def test_s3_rejects_unknown_or_partial_credentials(s3_endpoint: str) -> None:
    with pytest.raises(ConfigError, match="unknown"):
        _s3(s3_endpoint, credentials={**FAKE, "password": "x"})
    with pytest.raises(ConfigError, match="both"):
        _s3(s3_endpoint, credentials={"access_key_id": "AKIA"})


def test_s3_prefix_isolates_stores(s3_endpoint: str) -> None:
    first, second = _s3(s3_endpoint), _s3(s3_endpoint)
    first.put("a/f", b"one", None)
    assert second.get("a/f") is None
    assert second.list("") == []
    assert first.list("") == ["a/f"]


def test_s3_without_credentials_reads_the_aws_profile(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # obstore alone ignores profiles; this checks the boto3 route. The
    # environment changes end with this test.
    shared = tmp_path / "aws-credentials"
    shared.write_text(
        f"[lake]\naws_access_key_id = {FAKE['access_key_id']}\n"
        f"aws_secret_access_key = {FAKE['secret_access_key']}\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_PROFILE", "lake")
    store = _s3(s3_endpoint, credentials=None)
    assert store.put("p/f", b"via profile", None)
    assert _data(store, "p/f") == b"via profile"


def test_s3_delete_keeps_an_object_written_after_its_check(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The DELETE carries If-Match: a write landing between the HEAD and the
    # DELETE (an older archiver during the move) must survive.
    import obstore

    store = _s3(s3_endpoint)
    store.put("d/f", b"one", None)
    tag = _tag(store, "d/f")
    head = obstore.head

    def head_then_another_write(inner: Any, path: str) -> Any:
        meta = head(inner, path)
        assert store.put("d/f", b"two", tag)
        return meta

    monkeypatch.setattr(obstore, "head", head_then_another_write)
    assert store.delete("d/f", tag) is False
    assert _data(store, "d/f") == b"two"
    monkeypatch.setattr(obstore, "head", head)
    assert store.delete("d/f", _tag(store, "d/f")) is True
    assert store.get("d/f") is None


def test_s3_virtual_hosted_endpoint_gets_the_bucket() -> None:
    from auditlake.lake.s3 import _bucket_host

    assert _bucket_host("https://minio.example:9000", "lake") == "https://lake.minio.example:9000"


# --- helpers ------------------------------------------------------------------------


def _append(store: ObjectStore, path: str, line: bytes) -> None:
    """Read, append, write back; retry when another writer got there first."""
    for _ in range(500):
        current = store.get(path)
        data, tag = current if current else (b"", None)
        if store.put(path, data + line, tag):
            return
    raise AssertionError(f"gave up appending to {path}")


def _data(store: ObjectStore, path: str) -> bytes:
    got = store.get(path)
    assert got is not None, path
    return got[0]


def _tag(store: ObjectStore, path: str) -> str:
    got = store.get(path)
    assert got is not None, path
    return got[1]


# --- the archiver on each backend ---------------------------------------------


class Wrapped:
    """An object store passing every call to `inner`, for tests to override one."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def get(self, path: str) -> tuple[bytes, str] | None:
        return self.inner.get(path)

    def put(self, path: str, data: bytes, expected: str | None) -> bool:
        return self.inner.put(path, data, expected)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def folders(self, prefix: str) -> list[str]:
        return self.inner.folders(prefix)

    def delete(self, path: str, expected: str) -> bool:
        return self.inner.delete(path, expected)


class FailingPuts(Wrapped):
    """An object store whose first `failures` puts fail as a network error would."""

    def __init__(self, inner: ObjectStore, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures

    def put(self, path: str, data: bytes, expected: str | None) -> bool:
        if self.failures:
            self.failures -= 1
            raise Unavailable("the connection dropped")
        return self.inner.put(path, data, expected)


def _events(tenant: str, ids: list[str]) -> list[Event]:
    from datetime import UTC, datetime, timedelta

    from auditlake.core.event import EventInput
    from auditlake.core.normalize import Limits, Origin, normalize
    from auditlake.core.times import format_rfc3339 as rfc3339

    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    inputs = [
        EventInput(
            action="doc.viewed", id=i, occurred_at=rfc3339(start + timedelta(minutes=n % 90))
        )
        for n, i in enumerate(ids)
    ]
    origin = Origin(tenant, "key:t", "api", start)
    return [s.event for s in normalize(inputs, origin, Limits())]


def _archived(store: ObjectStore) -> list[str]:
    ids: list[str] = []
    for path in store.list(""):
        ids += [r["id"] for r in read_rows(_data(store, path))]
    return sorted(ids)


def test_a_failed_put_then_the_retried_batch_leaves_each_event_once(store: ObjectStore) -> None:
    events = _events("acme", [f"e{n}" for n in range(300)])  # two hours: two partitions
    flaky = Archiver(FailingPuts(store, failures=1))
    with pytest.raises(Unavailable):
        flaky.archive(events)  # the consumer's cursor stays: it retries the batch
    flaky.archive(events)
    Archiver(store).archive(events[:50])  # and a redelivery changes nothing
    assert _archived(store) == sorted(e.id for e in events)


def test_two_archivers_racing_on_a_partition_keep_every_event_once(store: ObjectStore) -> None:
    ids = [f"r{n}" for n in range(400)]
    events = _events("acme", ids)
    halves = [events[::2] + events[:40], events[1::2] + events[:40]]  # with an overlap
    threads = [
        threading.Thread(target=Archiver(store).archive, args=(half[i : i + 37],))
        for half in halves
        for i in range(0, len(half), 37)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _archived(store) == sorted(ids)
