"""S3 beyond the contract: failures in the middle of a multi-destination backup, Object
Lock under prune, server-side encryption and storage class, against moto's server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from offsite.prune import run_prune
from offsite.sets.retention import Policy
from offsite.storage import open_storage
from offsite.storage.local import LocalStorage
from offsite.storage.settings import S3Settings, StorageSettings
from tests.faultproxy import FaultProxy
from tests.servers import MotoS3

BIG = "head -c 40000000 /dev/urandom"  # 40 MB: five parts


@pytest.fixture
def s3env(moto: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # fail fast where the tests break things
    return moto


def _uploads(moto: MotoS3, bucket: str) -> list[str]:
    return [
        u["Key"] for u in moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    ]


def _objects(moto: MotoS3, bucket: str) -> list[str]:
    return [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_server_failing_mid_upload_fails_the_run_everywhere(
    cli, s3env: MotoS3, tmp_path: Path, passphrase: str
) -> None:
    bucket = s3env.bucket()
    proxy = FaultProxy(s3env.port)
    try:
        proxy.fail(lambda m, p: m == "PUT" and "partNumber=3" in p, times=100, status=500)
        local = tmp_path / "local"
        r = cli("backup", "--exec", f"big={BIG}", "--to", local, "--to", f"s3://{bucket}/b",
                "--s3-endpoint-url", proxy.endpoint, "--compress", "none", "--no-encrypt")  # fmt: skip
        assert r.code == 3, r.err
        assert "s3://" in r.err and "\n" not in r.err.strip()
        assert not local.exists() or list(local.rglob("*")) == []  # nothing committed locally
        assert _objects(s3env, bucket) == []
        assert _uploads(s3env, bucket) == []  # the upload was aborted
    finally:
        proxy.close()


def test_server_killed_mid_upload(cli, s3env: MotoS3, tmp_path: Path, passphrase: str) -> None:
    """The endpoint disappears: exit 3, nothing committed anywhere; the multipart upload
    the dead endpoint could not be told to abort is aborted by a later prune."""
    bucket = s3env.bucket()
    proxy = FaultProxy(s3env.port)
    proxy.die_on(lambda m, p: m == "PUT" and "partNumber=3" in p)
    local = tmp_path / "local"
    r = cli("backup", "--exec", f"big={BIG}", "--to", local, "--to", f"s3://{bucket}/b",
            "--s3-endpoint-url", proxy.endpoint, "--compress", "none", "--no-encrypt")  # fmt: skip
    proxy.close()
    assert r.code == 3, r.err
    assert not local.exists() or list(local.rglob("*")) == []
    # only the set id's reservation: an incomplete set, which prune removes after a day
    (reservation,) = _objects(s3env, bucket)
    assert reservation.endswith("/.offsite-set")
    assert len(_uploads(s3env, bucket)) == 1  # the dead endpoint could not take the abort
    storage = open_storage(f"s3://{bucket}/b", StorageSettings(s3=S3Settings(s3env.endpoint)))
    # (moto reports every upload as begun in 2010, so the day's grace is not tested
    # here but in test_prune_aborts_only_uploads_older_than_a_day)
    result = run_prune(storage, Policy(last=1), dry_run=False)
    assert len(result.uploads) == 1 and result.failures == []
    assert _uploads(s3env, bucket) == []


def test_object_lock_keeps_sets_and_prune_reports_it(
    cli, s3env: MotoS3, tree: Path, passphrase: str
) -> None:
    bucket = s3env.bucket(lock=True)
    url = f"s3://{bucket}/locked"
    lock = ["--s3-endpoint-url", s3env.endpoint,
            "--s3-object-lock-mode", "GOVERNANCE", "--s3-object-lock-days", "1"]  # fmt: skip
    for _ in range(2):
        assert cli("backup", tree, "--to", url, *lock).code == 0
    head = s3env.client().head_object(Bucket=bucket, Key=_objects(s3env, bucket)[0])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(timezone.utc) + timedelta(hours=23)
    # a stolen credential cannot delete the locked version
    version = s3env.client().list_object_versions(Bucket=bucket)["Versions"][0]
    with pytest.raises(Exception, match="AccessDenied"):
        s3env.client().delete_object(
            Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"]
        )
    r = cli("prune", url, "--keep-last", "1", "--s3-endpoint-url", s3env.endpoint)
    assert r.code == 3
    assert "could not remove" in r.err and "Object Lock" in r.err
    assert "Traceback" not in r.err
    listed = cli("list", url, "--json", "--s3-endpoint-url", s3env.endpoint)
    assert len(json.loads(listed.out)["sets"]) == 2  # the manifest went first, and stayed


def test_sse_and_storage_class(cli, s3env: MotoS3, tree: Path, passphrase: str) -> None:
    bucket = s3env.bucket()
    r = cli("backup", tree, "--to", f"s3://{bucket}", "--s3-endpoint-url", s3env.endpoint,
            "--s3-sse", "AES256", "--s3-storage-class", "STANDARD_IA")  # fmt: skip
    assert r.code == 0, r.err
    for key in _objects(s3env, bucket):
        head = s3env.client().head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        assert head["StorageClass"] == "STANDARD_IA"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--s3-sse", "rot13"], "--s3-sse is one of"),
        (["--s3-kms-key-id", "k"], "needs --s3-sse aws:kms"),
        (["--s3-object-lock-mode", "GOVERNANCE"], "go together"),
        (["--s3-object-lock-mode", "FOREVER", "--s3-object-lock-days", "3"], "GOVERNANCE"),
    ],
)
def test_bad_s3_settings_are_exit_2(cli, tree: Path, args: list[str], says: str) -> None:
    r = cli("backup", tree, "--to", "s3://bucket", "--no-encrypt", *args)
    assert r.code == 2 and says in r.err


def test_no_credentials_is_exit_2(cli, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    r = cli("backup", tree, "--to", "s3://bucket", "--no-encrypt", "--s3-region", "us-east-1")
    assert r.code == 2 and "no AWS credentials" in r.err


def test_prune_aborts_only_uploads_older_than_a_day(tmp_path: Path) -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)

    class WithUploads(LocalStorage):
        aborted: list[str] = []

        def incomplete_uploads(self) -> list[tuple[str, str, datetime]]:
            return [("a/x", "1", now - timedelta(hours=2)), ("b/y", "2", now - timedelta(days=2))]

        def abort_upload(self, key: str, upload_id: str) -> None:
            self.aborted.append(upload_id)

    storage = WithUploads(str(tmp_path))
    assert run_prune(storage, Policy(last=1), dry_run=True, now=now).uploads == ["b/y"]
    assert storage.aborted == []
    assert run_prune(storage, Policy(last=1), dry_run=False, now=now).uploads == ["b/y"]
    assert storage.aborted == ["2"]


def test_prune_finds_interrupted_uploads_on_every_page(s3env: MotoS3) -> None:
    """moto answers ListMultipartUploads in one page whatever MaxUploads says, so the
    pages come from botocore's Stubber, which checks requests and answers against the
    S3 service model."""
    from botocore.stub import Stubber

    storage = open_storage("s3://bkt/b", StorageSettings(s3=S3Settings(s3env.endpoint)))
    started = datetime(2024, 5, 1, tzinfo=timezone.utc)

    def page(keys: list[str], more: bool) -> dict[str, object]:
        answer: dict[str, object] = {
            "Bucket": "bkt", "IsTruncated": more,
            "Uploads": [{"Key": f"b/{k}", "UploadId": f"id-{k}", "Initiated": started} for k in keys],
        }  # fmt: skip
        if more:
            answer |= {"NextKeyMarker": f"b/{keys[-1]}", "NextUploadIdMarker": f"id-{keys[-1]}"}
        return answer

    with Stubber(storage.client) as stub:  # type: ignore[attr-defined]
        ask = {"Bucket": "bkt", "Prefix": "b/", "MaxUploads": 1000}
        stub.add_response("list_multipart_uploads", page(["s/1", "s/2"], True), ask)
        stub.add_response(
            "list_multipart_uploads", page(["s/3"], False),
            {**ask, "KeyMarker": "b/s/2", "UploadIdMarker": "id-s/2"},
        )  # fmt: skip
        found = storage.incomplete_uploads()  # type: ignore[attr-defined]
        stub.assert_no_pending_responses()
    assert found == [
        ("s/1", "id-s/1", started),
        ("s/2", "id-s/2", started),
        ("s/3", "id-s/3", started),
    ]


def test_interrupted_uploads_outside_the_prefix_are_left_alone(s3env: MotoS3) -> None:
    bucket = s3env.bucket()
    client = s3env.client()
    begun = {client.create_multipart_upload(Bucket=bucket, Key=f"b/set/e{i}")["UploadId"]
             for i in range(3)}  # fmt: skip
    client.create_multipart_upload(Bucket=bucket, Key="elsewhere/x")
    storage = open_storage(f"s3://{bucket}/b", StorageSettings(s3=S3Settings(s3env.endpoint)))
    found = storage.incomplete_uploads()  # type: ignore[attr-defined]
    assert {upload_id for _, upload_id, _ in found} == begun
    result = run_prune(storage, Policy(last=1), dry_run=False)
    assert len(result.uploads) == 3
    assert _uploads(s3env, bucket) == ["elsewhere/x"]
