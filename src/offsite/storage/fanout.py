"""One stream to several destinations: a tee, a put per destination on its own thread.

One destination failing stops the tee, so every other put fails too and none of them
holds the object as if it were whole; a failing source reaches every put as an error, not
as the end of the data. The caller removes what the run wrote.
"""

from __future__ import annotations

import contextlib
import threading

from offsite.errors import StorageError
from offsite.storage.base import Storage
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import Readable


def put_everywhere(pipeline: Pipeline, storages: list[Storage], key: str, stream: Readable) -> None:
    if len(storages) == 1:
        put_one(storages[0], key, stream)
        return
    # Each reader is checked: a source that fails mid-stream makes every put see the error
    # at its end of data and abort, so no destination completes the object, whatever the
    # cleanup afterwards can or cannot remove (S3 Object Lock).
    readers = [pipeline.checked(r) for r in pipeline.tee(stream, len(storages))]
    failures: list[BaseException] = []

    def put(storage: Storage, reader: Readable) -> None:
        try:
            put_one(storage, key, reader)
        except BaseException as exc:
            failures.append(exc)
            with contextlib.suppress(Exception):
                reader.close()  # the tee stops, and every other destination's put fails too

    threads = [threading.Thread(target=put, args=(s, r)) for s, r in zip(storages, readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        root = next((f for f in failures if isinstance(f, StorageError)), failures[0])
        raise root


def put_one(storage: Storage, key: str, stream: Readable) -> None:
    storage.put(key, stream)
