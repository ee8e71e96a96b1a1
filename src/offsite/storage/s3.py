"""S3 and S3-compatible stores (``s3://bucket/prefix``), through boto3.

``put`` streams a body of unknown length as a multipart upload in parts of 8 MiB (more
for very large bodies), four parts in flight: memory stays at a few parts whatever the
size. A body that fits one part is one PutObject. Any failure aborts the multipart
upload, so no object appears. Reads resume with a Range request after a dropped
connection. Transient errors (5xx, throttling, timeouts) are retried by botocore's
``standard`` mode with backoff and jitter; permanent ones fail at once with one line.

``delete`` removes every version of the key, so retention frees space on a versioned
bucket too; under Object Lock a version still locked refuses, and the caller reports it.
"""

from __future__ import annotations

import base64
import builtins
import concurrent.futures
import contextlib
import hashlib
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, cast

from offsite.errors import BadInput, OffsiteError, StorageDenied, StorageError
from offsite.storage.base import ObjectInfo, bucket_and_prefix
from offsite.storage.guard import guarded
from offsite.storage.registry import register
from offsite.storage.settings import S3Settings, StorageSettings
from offsite.stream.readers import Readable, read_exactly

MiB = 1 << 20
PART = 8 * MiB
MAX_PARTS = 10_000
IN_FLIGHT = 4
READ_RETRIES = 5

_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AuthorizationHeaderMalformed",
    "403",
}


def part_size(number: int) -> int:
    """Size of part ``number`` (1-based): 8 MiB, doubling every 1,000 parts, so the
    10,000-part limit of S3 is never reached before its 5 TiB object limit."""
    return PART << ((number - 1) // 1000)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    return str(error.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


class _ResumingBody:
    """The body of a GetObject; a dropped connection is picked up again with a Range
    request for the rest, pinned to the same object version by its ETag."""

    def __init__(self, storage: S3Storage, key: str) -> None:
        self._storage = storage
        self._key = key
        self._offset = 0
        response = storage._call("get_object", Key=key)
        self._etag = response.get("ETag")
        self._body = response["Body"]

    def read(self, size: int = -1, /) -> bytes:
        for attempt in range(READ_RETRIES + 1):
            try:
                data = cast(bytes, self._body.read(None if size < 0 else size))
            except OffsiteError:
                raise
            except Exception as exc:
                if attempt == READ_RETRIES:
                    raise StorageError(self._storage.url, f"reading {self._key}: {exc}") from exc
                self._reopen()
                continue
            self._offset += len(data)
            return data
        raise AssertionError("unreachable")

    def _reopen(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        extra = {"IfMatch": self._etag} if self._etag else {}
        response = self._storage._call(
            "get_object", Key=self._key, Range=f"bytes={self._offset}-", **extra
        )
        self._body = response["Body"]

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> _ResumingBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@guarded
class S3Storage:
    def __init__(self, url: str, settings: S3Settings) -> None:
        self.url = url
        self.bucket, self.prefix = bucket_and_prefix(url)
        self.settings = settings
        import boto3  # a core dependency, imported when an s3:// URL is used
        from botocore.config import Config

        config = Config(
            # AWS_MAX_ATTEMPTS, botocore's own variable, tunes the retries
            retries={
                "mode": "standard",
                "max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", 8)),
            },
            connect_timeout=10,
            read_timeout=60,
            s3={"addressing_style": "path"} if settings.endpoint_url else {},
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            config=config,
        )

    # -- errors ------------------------------------------------------------------------
    def _call(self, method: str, **kwargs: Any) -> Any:
        """A client call whose failures become one clear line."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            NoRegionError,
        )

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except NoCredentialsError:
            raise BadInput(
                f"{self.url}: no AWS credentials (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use a role)"
            ) from None
        except NoRegionError:
            raise BadInput(f"{self.url}: no region: set AWS_REGION or --s3-region") from None
        except ClientError as exc:
            code = _code(exc)
            if code in ("NoSuchKey", "404") and "Key" in kwargs:
                raise FileNotFoundError(kwargs["Key"]) from None
            if kwargs.get("IfNoneMatch") and code in (
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",  # another conditional write of the key in flight
            ):
                raise FileExistsError(kwargs["Key"]) from None
            raise self._explain(code, exc) from None
        except BotoCoreError as exc:
            raise StorageError(self.url, str(exc)) from None

    def _explain(self, code: str, exc: Exception) -> StorageError:
        if code == "NoSuchBucket":
            return StorageError(self.url, f"bucket {self.bucket!r} does not exist")
        if code in _DENIED:
            return StorageDenied(
                self.url, f"access denied ({code}): check the AWS credentials and their policy"
            )
        return StorageError(self.url, str(exc))

    # -- the protocol --------------------------------------------------------------------
    def _extra(self) -> dict[str, Any]:
        s = self.settings
        extra: dict[str, Any] = {}
        if s.sse:
            extra["ServerSideEncryption"] = s.sse
        if s.kms_key_id:
            extra["SSEKMSKeyId"] = s.kms_key_id
        if s.storage_class:
            extra["StorageClass"] = s.storage_class
        if s.object_lock_mode and s.object_lock_days:
            extra["ObjectLockMode"] = s.object_lock_mode
            extra["ObjectLockRetainUntilDate"] = datetime.now(timezone.utc) + timedelta(
                days=s.object_lock_days
            )
        return extra

    def _md5(self, data: bytes) -> dict[str, str]:
        """Object Lock wants an integrity header on every upload; Content-MD5 is the one
        every S3-compatible store accepts."""
        if not self.settings.object_lock_mode:
            return {}
        return {"ContentMD5": base64.b64encode(hashlib.md5(data).digest()).decode()}

    def put(self, key: str, stream: Readable) -> int:
        full = self.prefix + key
        first = read_exactly(stream, part_size(1))
        if len(first) < part_size(1):  # the whole body fits one request
            self._call("put_object", Key=full, Body=first, **self._md5(first), **self._extra())
            return len(first)
        upload = self._call("create_multipart_upload", Key=full, **self._extra())["UploadId"]
        try:
            total = self._upload_parts(full, upload, first, stream)
        except BaseException:
            with contextlib.suppress(Exception):
                self._call("abort_multipart_upload", Key=full, UploadId=upload)
            raise
        return total

    def _upload_parts(self, key: str, upload: str, first: bytes, stream: Readable) -> int:
        def send(number: int, data: bytes) -> dict[str, Any]:
            response = self._call(
                "upload_part",
                Key=key,
                UploadId=upload,
                PartNumber=number,
                Body=data,
                **self._md5(data),
            )
            part = {"PartNumber": number, "ETag": response["ETag"]}
            for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
                if response.get(name):
                    part[name] = response[name]
            return part

        parts: list[dict[str, Any]] = []
        pending: list[concurrent.futures.Future[dict[str, Any]]] = []
        total = 0
        data, number = first, 1
        with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
            try:
                while data:
                    if number > MAX_PARTS:
                        raise StorageError(self.url, f"{key}: more than {MAX_PARTS} parts")
                    pending.append(pool.submit(send, number, data))
                    total += len(data)
                    del data  # memory: a part is held only by its upload
                    while len(pending) >= IN_FLIGHT:  # bounded: wait for the oldest
                        parts.append(pending.pop(0).result())
                    number += 1
                    data = read_exactly(stream, part_size(number))
                parts += [f.result() for f in pending]
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
        self._call(
            "complete_multipart_upload",
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": parts},
        )
        return total

    def create(self, key: str, data: bytes) -> bool:
        """A conditional PutObject (``If-None-Match: *``), which S3 arbitrates."""
        full = self.prefix + key
        extra = {**self._md5(data), **self._extra()}
        try:
            self._call("put_object", Key=full, Body=data, IfNoneMatch="*", **extra)
        except FileExistsError:
            return False
        return True

    def open(self, key: str) -> BinaryIO:
        return cast(BinaryIO, _ResumingBody(self, self.prefix + key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        token: dict[str, str] = {}
        while True:
            page = self._call("list_objects_v2", Prefix=self.prefix + prefix, **token)
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"][len(self.prefix) :], obj["Size"], obj["LastModified"])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            head = self._call("head_object", Key=self.prefix + key)
        except FileNotFoundError:
            return None
        return ObjectInfo(key, head["ContentLength"], head["LastModified"])

    def delete(self, key: str) -> None:
        full = self.prefix + key
        try:
            versions = self._versions(full)
        except StorageError:
            versions = [None]  # a store without versions: a plain delete
        for version in versions:
            extra = {"VersionId": version} if version else {}
            try:
                self._call("delete_object", Key=full, **extra)
            except FileNotFoundError:
                continue
            except StorageDenied:
                raise StorageError(
                    self.url, f"{key} cannot be deleted: it is under Object Lock or policy"
                ) from None

    def _versions(self, full: str) -> builtins.list[str | None]:
        found: builtins.list[str | None] = []
        marker: dict[str, str] = {}
        while True:
            page = self._call("list_object_versions", Prefix=full, **marker)
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if item["Key"] == full:
                    found.append(item.get("VersionId"))
            if not page.get("IsTruncated"):
                return found
            marker = {
                "KeyMarker": page["NextKeyMarker"],
                "VersionIdMarker": page.get("NextVersionIdMarker", ""),
            }

    def incomplete_uploads(self) -> builtins.list[tuple[str, str, datetime]]:
        """Multipart uploads under the prefix never completed nor aborted: key, id, start."""
        found = []
        marker: dict[str, str] = {}
        while True:
            page = self._call(
                "list_multipart_uploads", Prefix=self.prefix, MaxUploads=1000, **marker
            )
            found += [
                (u["Key"][len(self.prefix) :], u["UploadId"], u["Initiated"])
                for u in page.get("Uploads", [])
            ]
            if not page.get("IsTruncated"):
                return found
            marker = {
                "KeyMarker": page["NextKeyMarker"],
                "UploadIdMarker": page["NextUploadIdMarker"],
            }

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._call("abort_multipart_upload", Key=self.prefix + key, UploadId=upload_id)


@register("s3")
def _open(url: str, settings: StorageSettings) -> S3Storage:
    return S3Storage(url, settings.s3)
