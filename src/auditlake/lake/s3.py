"""The lake on S3 or any S3-compatible store, through obstore.

`S3Objects` keeps the `ObjectStore` contract of `lake.objects` with the
store's own conditional writes, never a client-side check:

- `put(path, data, None)` is a PUT with `If-None-Match: *` (create only);
- `put(path, data, etag)` is a PUT with `If-Match: <etag>` (compare and swap);
- a 412 (or a 404 for an `If-Match` on a deleted object) returns False.

Which guarantee holds where:

- AWS S3 (since Aug 2024 for `If-None-Match`, Nov 2024 for `If-Match`):
  both conditions are checked atomically by the server, so writers in any
  number of processes or hosts never lose each other's updates.
- moto 5.2 (the tests): honours both headers (412 on a failed condition, 404
  for `If-Match` on a missing key), but checks and then stores without a
  lock, so two PUTs racing inside the same instant could both pass. The
  contract suite runs moto's requests one at a time to model S3.
- A store that ignores the headers (some older S3 clones) silently turns
  `put` into last-writer-wins. There is deliberately no client-side fallback:
  a read-then-write check from here could not stop a writer elsewhere. Check
  a new store with the contract suite in tests/integration before using it.

Credentials: given ones are used as they are; without them obstore's AWS
chain applies (AWS_* environment variables, web identity token, ECS
container credentials, EC2 instance metadata). obstore does not read shared
config profiles, so when AWS_PROFILE is set they come from boto3 instead.

Deletes: `delete(path, expected)` is a DELETE with `If-Match: <etag>`, so
a write landing after the caller read the object is never lost (AWS S3 and
moto check it; 412 returns False). obstore 0.12's `delete` takes no
condition, so the request is signed by obstore (`obstore.sign`, the store's
own credentials) and sent with httpx. A HEAD first still compares the ETag,
so a store that ignores `If-Match` on DELETE (older S3 clones) is left with
only the window between the two requests: on such a store stop archivers of
older versions before moving a legacy lake, the one caller (`lake.migrate`).

Caveat: obstore retries a PUT after a dropped connection or a 5xx. If the
first attempt landed, the retry fails its condition and `put` returns False
although the object now holds `data`; a read-merge-write caller must merge
idempotently (for example, drop rows whose event id is already there).
"""

from __future__ import annotations

import builtins
import os
import re
from datetime import timedelta
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotSupportedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from auditlake.errors import AuditlakeError, ConfigError, Unavailable

if TYPE_CHECKING:
    from obstore import PutMode
    from obstore.store import ClientConfig, RetryConfig, S3Config, S3CredentialProvider

_CREDENTIAL_KEYS = frozenset({"access_key_id", "secret_access_key", "session_token"})

# Bounded so a dead endpoint surfaces as Unavailable in seconds, not after
# obstore's default of ten retries within three minutes.
_RETRY: RetryConfig = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=30),
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=5),
        "base": 2,
    },
}
_CLIENT: ClientConfig = {"connect_timeout": "5s", "timeout": "60s"}
# How long a signed DELETE stays valid: it is sent at once.
_SIGNED_FOR = timedelta(minutes=5)


class S3Objects:
    """A bucket (and an optional key prefix) holding the lake's files."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        path_style: bool = False,
        allow_http: bool = False,
        credentials: dict[str, str] | None = None,
    ) -> None:
        config = _config(bucket, endpoint, region, path_style, credentials)
        client: ClientConfig = {**_CLIENT, "allow_http": allow_http}
        provider = _profile_provider() if credentials is None else None
        try:
            self._store = S3Store(
                bucket,
                prefix=prefix.strip("/") or None,
                config=config,
                client_options=client,
                retry_config=_RETRY,
                credential_provider=provider,
            )
        except BaseError as exc:
            # obstore's message may quote the config, secrets included.
            raise ConfigError(f"cannot set up S3 bucket {bucket!r}: {type(exc).__name__}") from None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: httpx.Client | None = None

    def get(self, path: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None if there is no such key."""
        try:
            result = obstore.get(self._store, path)
            data = bytes(result.bytes())
        except FileNotFoundError as exc:
            if _no_bucket(exc):
                raise _translate(exc, "GET", path) from None
            return None
        except BaseError as exc:
            raise _translate(exc, "GET", path) from None
        # The ETag comes from the same response as the bytes, so they match.
        tag = result.meta["e_tag"]
        if tag is None:
            raise ConfigError("the S3 store returned no ETag: conditional writes impossible")
        return data, tag

    def put(self, path: str, data: bytes, expected: str | None) -> bool:
        """Write `data` if the object is still at `expected` (None: absent)."""
        mode: PutMode = "create" if expected is None else {"e_tag": expected}
        try:
            # One PUT: a multipart upload cannot carry the condition.
            obstore.put(self._store, path, data, mode=mode, use_multipart=False)
        except (AlreadyExistsError, PreconditionError):
            return False
        except (BaseError, FileNotFoundError) as exc:  # a 404 on a PUT: no bucket
            raise _translate(exc, "PUT", path) from None
        return True

    def list(self, prefix: str) -> list[str]:
        """Every key below `prefix` (a folder, not a string prefix), sorted."""
        try:
            chunks = obstore.list(self._store, prefix.strip("/") or None, chunk_size=1000)
            return sorted(meta["path"] for chunk in chunks for meta in chunk)
        except BaseError as exc:
            raise _translate(exc, "LIST", prefix) from None

    def folders(self, prefix: str) -> builtins.list[str]:
        """The names of the folders (common prefixes) directly below `prefix`."""
        try:
            found = obstore.list_with_delimiter(self._store, prefix.strip("/") or None)
        except BaseError as exc:
            raise _translate(exc, "LIST", prefix) from None
        return sorted(folder.rsplit("/", 1)[-1] for folder in found["common_prefixes"])

    def delete(self, path: str, expected: str) -> bool:
        """Remove the object if its ETag is still `expected`: a HEAD (an early
        answer, and a check where the store ignores the condition), then a
        DELETE with `If-Match` (see the module's notes on deletes)."""
        try:
            current = obstore.head(self._store, path)["e_tag"]
        except FileNotFoundError as exc:
            if _no_bucket(exc):
                raise _translate(exc, "HEAD", path) from None
            return True
        except BaseError as exc:
            raise _translate(exc, "HEAD", path) from None
        if current != expected:
            return False
        return self._delete_if_match(path, expected)

    def _delete_if_match(self, path: str, expected: str) -> bool:
        """DELETE `path` with `If-Match: expected`; False on 412 (or 409, a
        write racing it), True once it is gone."""
        try:
            url = obstore.sign(self._store, "DELETE", path, _SIGNED_FOR)
        except BaseError as exc:
            raise _translate(exc, "DELETE", path) from None
        try:
            answer = self._http().delete(url, headers={"If-Match": expected})
        except httpx.HTTPError as exc:
            raise Unavailable(f"S3 DELETE {path!r} failed: {type(exc).__name__}") from None
        status = answer.status_code
        if status in (412, 409):
            return False
        if status < 300 or (status == 404 and "NoSuchBucket" not in answer.text):
            return True  # deleted, or gone already
        what = f"S3 DELETE {path!r} failed (HTTP {status})"
        if status == 404:
            raise ConfigError(f"{what}: the bucket does not exist")
        raise ConfigError(what) if status in (401, 403) else Unavailable(what)

    def _http(self) -> httpx.Client:
        """The client for signed requests, made on first use."""
        if self._client is None:
            self._client = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
        return self._client


def _config(
    bucket: str,
    endpoint: str | None,
    region: str | None,
    path_style: bool,
    credentials: dict[str, str] | None,
) -> S3Config:
    """obstore's S3 config; values given here win over the environment."""
    config: S3Config = {"virtual_hosted_style_request": not path_style}
    if endpoint:
        config["endpoint"] = endpoint if path_style else _bucket_host(endpoint, bucket)
    if region:
        config["region"] = region
    config.update(cast("S3Config", _checked_credentials(credentials or {})))
    return config


def _bucket_host(endpoint: str, bucket: str) -> str:
    """`https://host` as `https://bucket.host`: obstore wants the bucket in a
    virtual-hosted endpoint, while callers give the service's endpoint."""
    parts = urlsplit(endpoint)
    return urlunsplit(parts._replace(netloc=f"{bucket}.{parts.netloc}"))


def _checked_credentials(credentials: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(credentials) - _CREDENTIAL_KEYS)
    if unknown:
        raise ConfigError(f"unknown S3 credential fields: {', '.join(unknown)}")
    if credentials and not {"access_key_id", "secret_access_key"} <= set(credentials):
        raise ConfigError("S3 credentials need both access_key_id and secret_access_key")
    return dict(credentials)


def _profile_provider() -> S3CredentialProvider | None:
    """boto3's credentials for AWS_PROFILE, which obstore alone would ignore."""
    profile = os.environ.get("AWS_PROFILE")
    if not profile:
        return None
    try:
        from obstore.auth.boto3 import Boto3CredentialProvider
    except ImportError:
        raise ConfigError("AWS_PROFILE is set but boto3 is not installed") from None
    try:
        # boto3's default session reads AWS_PROFILE and the shared config files.
        return Boto3CredentialProvider()
    except Exception as exc:  # botocore's errors have no common importable base here
        raise ConfigError(f"AWS profile {profile!r} unusable: {type(exc).__name__}") from None


def _translate(exc: Exception, operation: str, path: str) -> AuditlakeError:
    """An auditlake error for an obstore one, without obstore's message: it can
    quote the response body, which names the access key on signature errors."""
    what = f"S3 {operation} {path!r} failed: {type(exc).__name__}{_status(str(exc))}"
    if _no_bucket(exc):
        return ConfigError(f"{what}: the bucket does not exist")
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError | NotSupportedError):
        return ConfigError(what)  # retrying with the same setup cannot help
    return Unavailable(what)


def _no_bucket(exc: Exception) -> bool:
    # S3 answers 404 for a missing bucket too; only the error code tells it apart.
    return "<Code>NoSuchBucket</Code>" in str(exc)


def _status(message: str) -> str:
    match = re.search(r"status code: (\d{3})", message)
    return f" (HTTP {match.group(1)})" if match else ""
