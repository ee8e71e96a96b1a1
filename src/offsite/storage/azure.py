"""Azure Blob Storage (``az://container/prefix``), through azure-storage-blob.

``put`` stages blocks of 8 MiB and commits the block list only at the end: until then
no blob exists, and blocks never committed are discarded by Azure within a week.
Credentials from the environment: ``AZURE_STORAGE_CONNECTION_STRING``, or
``AZURE_STORAGE_ACCOUNT`` with ``AZURE_STORAGE_KEY`` or ``AZURE_STORAGE_SAS_TOKEN``, or
``AZURE_STORAGE_ACCOUNT`` alone: then azure-identity's ``DefaultAzureCredential`` (workload
identity from ``azure/login`` with OIDC in Actions, a managed identity, ``az login``), so no
secret has to be stored anywhere.
"""

from __future__ import annotations

import base64
import builtins
import os
import secrets
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from offsite.errors import BadInput, MissingExtra, StorageError
from offsite.storage.base import CHUNK, ObjectInfo, bucket_and_prefix
from offsite.storage.guard import guarded
from offsite.storage.registry import register
from offsite.storage.settings import StorageSettings
from offsite.stream.readers import Readable, read_exactly

NO_CREDENTIAL = (
    "no Azure credential: set AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or sign in "
    "(azure/login with OIDC in Actions, a managed identity, az login)"
)

BLOCK = 8 * CHUNK


class _Chunks:
    """A downloader's chunks as a readable stream."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            return self._rest + b"".join(self._chunks) if self._take() else b""
        if not self._take():
            return b""
        data, self._rest = self._rest[:size], self._rest[size:]
        return data

    def _take(self) -> bool:
        """Make sure some bytes are at hand; False at the end."""
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return False
        return True

    def close(self) -> None:
        self._rest = b""

    def __enter__(self) -> _Chunks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@guarded
class AzureStorage:
    def __init__(self, url: str) -> None:
        self.url = url
        self.container_name, self.prefix = bucket_and_prefix(url, "container")
        try:
            from azure.core import exceptions
            from azure.storage.blob import BlobServiceClient
        except ImportError:
            raise MissingExtra("az://", "azure-storage-blob", "azure") from None
        self._exceptions = exceptions
        env = os.environ
        options: dict[str, Any] = {
            "max_single_get_size": BLOCK,
            "max_chunk_get_size": BLOCK,
            "retry_total": 6,  # transient errors: backoff 0.5, 1, 2 … 16 s with jitter
            "initial_backoff": 0.5,
            "increment_base": 2,
        }
        if env.get("AZURE_STORAGE_CONNECTION_STRING"):
            service = BlobServiceClient.from_connection_string(
                env["AZURE_STORAGE_CONNECTION_STRING"], **options
            )
        elif env.get("AZURE_STORAGE_ACCOUNT"):
            account = env["AZURE_STORAGE_ACCOUNT"]
            credential: Any = env.get("AZURE_STORAGE_KEY") or env.get("AZURE_STORAGE_SAS_TOKEN")
            endpoint = env.get("AZURE_STORAGE_BLOB_ENDPOINT") or (
                f"https://{account}.blob.core.windows.net"
            )
            if not credential:
                if not endpoint.startswith("https://"):
                    raise BadInput(f"{url}: signing in (no AZURE_STORAGE_KEY nor SAS token) "
                                   f"needs an https endpoint, not {endpoint}")  # fmt: skip
                credential = _identity(url)
            service = BlobServiceClient(endpoint, credential=credential, **options)
        else:
            raise BadInput(
                f"{url}: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with "
                "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"
            )
        self.container = service.get_container_client(self.container_name)

    def _error(self, exc: Exception) -> StorageError:
        code = getattr(exc, "error_code", None) or ""
        status = getattr(exc, "status_code", None)
        if code == "ContainerNotFound":
            return StorageError(self.url, f"container {self.container_name!r} does not exist")
        if status in (401, 403):
            return StorageError(
                self.url, f"access denied ({code or status}): check the Azure credentials"
            )
        if type(exc).__name__ in ("ClientAuthenticationError", "CredentialUnavailableError"):
            return StorageError(self.url, NO_CREDENTIAL)
        return StorageError(self.url, str(exc).splitlines()[0])

    def _guard(self, action: Any) -> Any:
        try:
            return action()
        except self._exceptions.ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "BlobNotFound":
                raise FileNotFoundError(str(exc)) from None
            raise self._error(exc) from None
        except self._exceptions.AzureError as exc:
            raise self._error(exc) from None

    def put(self, key: str, stream: Readable) -> int:
        from azure.storage.blob import BlobBlock

        blob = self.container.get_blob_client(self.prefix + key)
        run = secrets.token_hex(4)  # block ids of this upload only
        blocks: list[BlobBlock] = []
        total = 0
        while True:
            data = read_exactly(stream, BLOCK)
            if not data:
                break
            block_id = base64.b64encode(f"{run}-{len(blocks):08d}".encode()).decode()
            self._guard(lambda d=data, b=block_id: blob.stage_block(b, d))
            blocks.append(BlobBlock(block_id=block_id))
            total += len(data)
        self._guard(lambda: blob.commit_block_list(blocks))
        return total

    def create(self, key: str, data: bytes) -> bool:
        """An upload with ``If-None-Match: *`` (``overwrite=False``)."""
        blob = self.container.get_blob_client(self.prefix + key)
        try:
            blob.upload_blob(data, overwrite=False)
        except self._exceptions.ResourceExistsError:
            return False
        except self._exceptions.AzureError as exc:
            raise self._error(exc) from None
        return True

    def open(self, key: str) -> BinaryIO:
        blob = self.container.get_blob_client(self.prefix + key)
        downloader = self._guard(lambda: blob.download_blob())
        return cast(BinaryIO, _Chunks(iter(downloader.chunks())))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        def every() -> builtins.list[Any]:
            return list(self.container.list_blobs(name_starts_with=self.prefix + prefix))

        for blob in self._guard(every):
            yield ObjectInfo(blob.name[len(self.prefix) :], blob.size, blob.last_modified)

    def stat(self, key: str) -> ObjectInfo | None:
        blob = self.container.get_blob_client(self.prefix + key)
        try:
            props = self._guard(lambda: blob.get_blob_properties())
        except FileNotFoundError:
            return None
        return ObjectInfo(key, props.size, props.last_modified)

    def delete(self, key: str) -> None:
        blob = self.container.get_blob_client(self.prefix + key)
        try:
            self._guard(lambda: blob.delete_blob())
        except FileNotFoundError:
            return


def _identity(url: str) -> Any:
    """Short-lived credentials (workload identity, managed identity, the Azure CLI's): the
    first that works of azure-identity's chain, which refreshes its token as it expires."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise BadInput(
            f"{url}: set AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or install "
            "azure-identity (offsite[azure]) for workload identity"
        ) from None
    import logging

    from azure.core.exceptions import ClientAuthenticationError

    logging.getLogger("azure.identity").setLevel(logging.ERROR)  # one line, below, not ten
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    try:  # asked once, now: the storage client would retry a missing sign-in for minutes
        credential.get_token("https://storage.azure.com/.default")
    except ClientAuthenticationError:
        raise StorageError(url, NO_CREDENTIAL) from None
    return credential


@register("az")
def _open(url: str, settings: StorageSettings) -> AzureStorage:
    return AzureStorage(url)
