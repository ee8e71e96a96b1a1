"""What a destination needs besides its URL: typed, from CLI options or their variables."""

from __future__ import annotations

from dataclasses import dataclass, field

from offsite.errors import BadInput

SSE_MODES = ("AES256", "aws:kms")
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None  # None: boto3's own (AWS_ENDPOINT_URL, else AWS)
    region: str | None = None
    sse: str | None = None
    kms_key_id: str | None = None
    storage_class: str | None = None
    object_lock_mode: str | None = None
    object_lock_days: int | None = None

    def __post_init__(self) -> None:
        if self.sse is not None and self.sse not in SSE_MODES:
            raise BadInput(f"--s3-sse is one of {', '.join(SSE_MODES)}, not {self.sse!r}")
        if self.kms_key_id and self.sse != "aws:kms":
            raise BadInput("--s3-kms-key-id needs --s3-sse aws:kms")
        if (self.object_lock_mode is None) != (self.object_lock_days is None):
            raise BadInput("--s3-object-lock-mode and --s3-object-lock-days go together")
        if self.object_lock_mode is not None and self.object_lock_mode not in LOCK_MODES:
            raise BadInput(
                f"--s3-object-lock-mode is one of {', '.join(LOCK_MODES)}, "
                f"not {self.object_lock_mode!r}"
            )
        if self.object_lock_days is not None and self.object_lock_days < 1:
            raise BadInput("--s3-object-lock-days must be at least 1")


@dataclass(frozen=True)
class SftpSettings:
    insecure_host_key: bool = False  # accept a server whose host key is not known


@dataclass(frozen=True)
class StorageSettings:
    s3: S3Settings = field(default_factory=S3Settings)
    sftp: SftpSettings = field(default_factory=SftpSettings)
    # gh-artifacts://: read the artifacts of runs on this branch, not the default one;
    # "*" for every branch (still only the repository's own runs, never a fork's)
    artifacts_branch: str | None = None
