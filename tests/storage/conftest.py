"""Every destination backend, against a real server the tests start, behind one shape
(``Backend``) so that one contract suite runs the same cases over all of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from offsite.storage import Storage, open_storage
from offsite.storage.settings import S3Settings, StorageSettings
from tests.faultproxy import FaultProxy, Match, TcpFaultProxy
from tests.servers import AZURITE_KEY, Azurite, GcsEmulator, MotoS3, SshServer

BACKENDS = ["local", "s3", "gcs", "azure", "sftp"]


@dataclass
class Backend:
    name: str
    url: str
    settings: StorageSettings = field(default_factory=StorageSettings)
    env: dict[str, str] = field(default_factory=dict)
    proxy: FaultProxy | TcpFaultProxy | None = None  # transient faults can be injected here
    bad_env: dict[str, str] | None = None  # credentials the server refuses
    bad_secret: str = ""  # the refused secret in them, which no message may show
    missing_url: str | None = None  # a bucket or container that does not exist
    options: list[str] = field(default_factory=list)  # the same settings, as CLI options
    part: Match | None = None  # (method, path) of the upload of a part after the first
    read: Match | None = None  # (method, path) of a read of an object's bytes

    def open(self, url: str | None = None) -> Storage:
        return open_storage(url or self.url, self.settings)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoS3]:
    server = MotoS3()
    yield server
    server.close()


@pytest.fixture(scope="session")
def gcs() -> Iterator[GcsEmulator]:
    server = GcsEmulator()
    yield server
    server.close()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    try:
        server = Azurite()
    except FileNotFoundError:
        pytest.skip("Azurite is not installed (scripts/bootstrap.sh installs it with npm)")
    yield server
    server.close()


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    try:
        server = SshServer()
    except FileNotFoundError:
        pytest.skip("sshd is not installed (scripts/bootstrap.sh installs openssh-server)")
    yield server
    server.close()


@pytest.fixture
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    name = request.param
    if name == "local":
        yield Backend("local", str(tmp_path / "dest"))
        return
    if name == "s3":
        moto: MotoS3 = request.getfixturevalue("moto")
        proxy = FaultProxy(moto.port)
        bucket = moto.bucket()
        found = Backend(
            "s3",
            f"s3://{bucket}/team/backups",
            StorageSettings(s3=S3Settings(endpoint_url=proxy.endpoint)),
            moto.env,
            proxy,
            bad_env={**moto.env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"},
            bad_secret="not-the-secret",
            missing_url="s3://no-such-bucket-offsite/backups",
            options=["--s3-endpoint-url", proxy.endpoint],
            part=lambda m, p: m == "PUT" and "partNumber=2" in p,
            read=lambda m, p: m == "GET" and "entry.bin" in p,
        )
        for key, value in moto.env.items():
            monkeypatch.setenv(key, value)
        yield found
        proxy.close()
        return
    if name == "gcs":
        emulator: GcsEmulator = request.getfixturevalue("gcs")
        proxy = FaultProxy(emulator.port)
        env = {**emulator.env, "STORAGE_EMULATOR_HOST": proxy.endpoint}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield Backend(
            "gcs",
            f"gs://{emulator.bucket()}/team/backups",
            env=env,
            proxy=proxy,
            missing_url="gs://no-such-bucket-offsite/backups",
            part=lambda m, p: m == "PUT" and "upload_id=" in p,
            read=lambda m, p: m == "GET" and "alt=media" in p,
        )
        proxy.close()
        return
    if name == "azure":
        server: Azurite = request.getfixturevalue("azurite")
        proxy = FaultProxy(server.port)
        env = {"AZURE_STORAGE_CONNECTION_STRING": server.connection_string(proxy.port)}
        bad = AZURITE_KEY[:-6] + "AAAAA="
        monkeypatch.setenv(
            "AZURE_STORAGE_CONNECTION_STRING", env["AZURE_STORAGE_CONNECTION_STRING"]
        )
        yield Backend(
            "azure",
            f"az://{server.container()}/team/backups",
            env=env,
            proxy=proxy,
            bad_env={"AZURE_STORAGE_CONNECTION_STRING": server.connection_string(proxy.port, bad)},
            bad_secret=bad,
            missing_url="az://no-such-container-offsite/backups",
            part=lambda m, p: m == "PUT" and "comp=block&" in p and "blockid=" in p,
            read=lambda m, p: m == "GET" and "entry.bin" in p,
        )
        proxy.close()
        return
    if name == "sftp":
        sshd: SshServer = request.getfixturevalue("sshd")
        tcp = TcpFaultProxy(sshd.port)
        env = sshd.env(tcp.port)
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the key the test names
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        wrong = sshd.keygen(f"wrong-{tmp_path.name}").read_text()
        yield Backend(
            "sftp",
            f"sftp://{sshd.user}@127.0.0.1:{tcp.port}{sshd.folder()}/team/backups",
            env=env,
            proxy=tcp,
            bad_env={**env, "OFFSITE_SFTP_KEY": wrong},
            bad_secret=wrong.strip().splitlines()[1],
        )
        tcp.close()
        return
    raise AssertionError(name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)
