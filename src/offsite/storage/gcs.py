"""Google Cloud Storage (``gs://bucket/prefix``), through google-cloud-storage.

``put`` is a resumable upload in 8 MiB chunks (each chunk retried on transient errors);
a failure cancels the upload session, so no object appears. Credentials are Google's
application default ones (``GOOGLE_APPLICATION_CREDENTIALS``, workload identity);
``STORAGE_EMULATOR_HOST`` points the client at an emulator.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from offsite.errors import BadInput, MissingExtra, StorageError
from offsite.storage.base import CHUNK, ObjectInfo, bucket_and_prefix
from offsite.storage.guard import guarded
from offsite.storage.registry import register
from offsite.storage.settings import StorageSettings
from offsite.stream.readers import Readable

PART = 8 * CHUNK


@guarded
class GcsStorage:
    def __init__(self, url: str) -> None:
        self.url = url
        self.bucket_name, self.prefix = bucket_and_prefix(url)
        try:
            from google.api_core import exceptions
            from google.auth.exceptions import DefaultCredentialsError
            from google.cloud import storage
            from google.cloud.storage.retry import DEFAULT_RETRY
        except ImportError:
            raise MissingExtra("gs://", "google-cloud-storage", "gcs") from None
        self._exceptions = exceptions
        try:  # a resumable upload's own error type (google-resumable-media before 3.0)
            from google.cloud.storage.exceptions import InvalidResponse
        except ImportError:
            from google.resumable_media import InvalidResponse
        self._upload_error: type[Exception] = InvalidResponse
        self._retry = DEFAULT_RETRY
        try:
            self.client = storage.Client()
        except DefaultCredentialsError:
            raise BadInput(
                f"{url}: no Google credentials (set GOOGLE_APPLICATION_CREDENTIALS to a "
                "service account key file, or use workload identity federation)"
            ) from None
        self.bucket = self.client.bucket(self.bucket_name)

    def _error(self, exc: Exception) -> StorageError:
        code = getattr(exc, "code", None)
        if isinstance(exc, self._upload_error):
            code = getattr(exc.response, "status_code", None)  # type: ignore[attr-defined]
        if code == 404:
            return StorageError(self.url, f"bucket {self.bucket_name!r} does not exist")
        if code in (401, 403):
            return StorageError(
                self.url, f"access denied ({code}): check the Google credentials and roles"
            )
        return StorageError(self.url, str(exc).splitlines()[0])

    def _guard(self, action: Any) -> Any:
        try:
            return action()
        except (self._exceptions.GoogleAPIError, self._upload_error) as exc:
            raise self._error(exc) from None

    def put(self, key: str, stream: Readable) -> int:
        blob = self.bucket.blob(self.prefix + key, chunk_size=PART)
        written = 0

        def upload() -> None:
            nonlocal written
            out = blob.open("wb", ignore_flush=True, retry=self._retry)
            try:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                out.close()  # the last chunk, and the object appears
            except BaseException:
                # Cancel the session and close the buffer, also when ``close`` itself
                # failed: else the writer's finalizer would try the upload again later.
                with contextlib.suppress(Exception):
                    out.terminate()
                raise

        self._guard(upload)
        return written

    def create(self, key: str, data: bytes) -> bool:
        """An upload with ``ifGenerationMatch=0``: only when no live object has the name."""
        blob = self.bucket.blob(self.prefix + key)
        try:
            blob.upload_from_string(data, if_generation_match=0, retry=self._retry)
        except self._exceptions.PreconditionFailed:
            return False
        except (self._exceptions.GoogleAPIError, self._upload_error) as exc:
            raise self._error(exc) from None
        return True

    def open(self, key: str) -> BinaryIO:
        blob = self._guard(lambda: self.bucket.get_blob(self.prefix + key))
        if blob is None:
            raise FileNotFoundError(key)
        return cast(BinaryIO, blob.open("rb", chunk_size=PART, retry=self._retry))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        def page() -> builtins.list[Any]:
            return list(self.client.list_blobs(self.bucket_name, prefix=self.prefix + prefix))

        for blob in self._guard(page):
            yield ObjectInfo(blob.name[len(self.prefix) :], blob.size or 0, blob.updated)

    def stat(self, key: str) -> ObjectInfo | None:
        blob = self._guard(lambda: self.bucket.get_blob(self.prefix + key))
        return None if blob is None else ObjectInfo(key, blob.size or 0, blob.updated)

    def delete(self, key: str) -> None:
        try:
            self.bucket.blob(self.prefix + key).delete(retry=self._retry)
        except self._exceptions.NotFound:
            return
        except (self._exceptions.GoogleAPIError, self._upload_error) as exc:
            raise self._error(exc) from None


@register("gs")
def _open(url: str, settings: StorageSettings) -> GcsStorage:
    return GcsStorage(url)
