"""Object storage through obstore: one store per destination URL, every operation async.

``Store(url)`` hands the URL to obstore's ``from_url``, which reads the credentials, the
region and the endpoint from the environment as the storage's own tools do
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``,
``GOOGLE_*``, ``AZURE_*``): nothing of ours is configured. Ours are only the timeouts and the
retries: no client options are given, since those would replace the environment's (its
``AWS_ALLOW_HTTP``, proxies) rather than add to them. Keys are relative to the URL's prefix.

A conditional write (``write``: create only, or replace only the version read) that loses to
another writer raises ``Conflict``; every other failure leaves through
``exporter.publish.failures``, as an error of ours naming the URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import obstore
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import from_url

from exporter.errors import ConfigError
from exporter.publish.failures import translating

if TYPE_CHECKING:
    from obstore import PutMode
    from obstore.store import ObjectStore, RetryConfig

T = TypeVar("T")
# Requests that fail on the way (5xx, a dropped connection) are retried a few times, within
# two minutes; obstore's own timeouts apply (5 s to connect, 30 s a request: 8 MB a part).
_RETRY: RetryConfig = {
    "max_retries": 3,
    "retry_timeout": timedelta(minutes=2),
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5),
                "base": 2},
}  # fmt: skip
STATE_FOLDER = "_genesys_publish"  # hidden from Spark and Hive readers of the prefix (a _)
# A large file goes up in parts, two at a time: 16 MB of it in memory. With 8 files at once
# a 1M-conversation publish peaked at 363 MB (412 MB with 4 parts a file, no faster).
_PART_BYTES = 8 * 2**20
_PARTS_AT_ONCE = 2


class Conflict(Exception):
    """A conditional write lost: the object exists, or changed since it was read."""


@dataclass(frozen=True, slots=True)
class Read:
    """An object's bytes and the version (ETag) they are."""

    data: bytes
    etag: str


class Store:
    """The objects under one URL (``s3://bucket/prefix``); keys are relative to it."""

    def __init__(self, url: str) -> None:
        self.url = url
        with translating(url, "open the object store"):
            self._store: ObjectStore = from_url(url, retry_config=_RETRY)

    async def read(self, key: str) -> Read | None:
        """The object at ``key``, or None when there is none."""
        with translating(self.url, f"read {key}"):
            try:
                got = await obstore.get_async(self._store, key)
            except FileNotFoundError:  # obstore raises the builtin for a missing object
                return None
            data = await got.bytes_async()
        return Read(bytes(data), str(got.meta["e_tag"]))

    async def listing(self, prefix: str) -> dict[str, str]:
        """Every key under ``prefix`` (a folder, ending in /) with its ETag."""
        with translating(self.url, f"list {prefix}"):
            found = await obstore.list(self._store, prefix, chunk_size=1000).collect_async()
        return {meta["path"]: str(meta["e_tag"]) for meta in found}

    async def upload(self, key: str, path: Path) -> str:
        """Put the file at ``path`` as ``key`` (replacing any object there, atomically: a
        reader gets the old object or the new one whole); returns its ETag."""
        with translating(self.url, f"upload {key}"):
            done = await obstore.put_async(
                self._store, key, path, chunk_size=_PART_BYTES, max_concurrency=_PARTS_AT_ONCE
            )
        return str(done["e_tag"])

    async def write(self, key: str, data: bytes, *, replacing: str | None) -> str:
        """Put ``data`` as ``key`` only if the object is still the version ``replacing`` (an
        ETag), or, for None, only if there is none yet; Conflict otherwise. Returns the new
        ETag."""
        mode: PutMode = "create" if replacing is None else {"e_tag": replacing}
        with translating(self.url, f"write {key}"):
            try:
                done = await obstore.put_async(self._store, key, data, mode=mode)
            except (AlreadyExistsError, PreconditionError) as exc:
                raise Conflict(key) from exc
        return str(done["e_tag"])

    async def delete(self, keys: list[str]) -> None:
        if not keys:
            return
        with translating(self.url, f"delete {keys[0]}{' and more' if len(keys) > 1 else ''}"):
            await obstore.delete_async(self._store, keys)

    async def claim(self, kind: str) -> None:
        """Record that this prefix holds a ``kind`` publish (parquet, delta), or check that
        it does: one prefix never holds two formats' files, whose folders would overlap.
        The first request a publish makes: a wrong endpoint or credentials fail here."""
        key = f"{STATE_FOLDER}/format"
        found = await self.read(key)
        if found is None:
            try:
                await self.write(key, f"{kind}\n".encode(), replacing=None)
                return
            except Conflict:  # another publish claimed it this moment: check what for
                found = await self.read(key)
        held = found.data.decode().strip() if found is not None else kind
        if held != kind:
            raise ConfigError(
                f"{self.url} holds tables published as {held}; publish {kind} under another "
                "prefix (--to)."
            )


async def run_all(work: Sequence[Awaitable[T]]) -> list[T]:
    """Await every one in a task group: the first failure cancels the rest and is raised as
    itself (not inside an ExceptionGroup), so callers see our errors as they are."""
    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(one)) for one in work]
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    return [task.result() for task in tasks]


async def _awaited(one: Awaitable[T]) -> T:
    return await one


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaf = group.exceptions[0]
    return _first(leaf) if isinstance(leaf, BaseExceptionGroup) else leaf
