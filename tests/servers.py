"""Throwaway database and storage servers on free loopback ports, from the installed binaries.

Each server lives in its own temporary folder and is stopped and deleted afterwards;
tests never touch a server or data they did not create. PostgreSQL and MariaDB refuse
to run as root, so under root they run as the packages' own system users.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

PG_PASSWORD = "pg-s3cr3t p@ss:/word"
MY_PASSWORD = 'my-s3cr3t "p@ss" word'
REDIS_PASSWORD = "redis-s3cr3t-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not start on port {port}:\n{tail}")


def _as_user(user: str) -> list[str]:
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _workdir(prefix: str, owner: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


def server_env(folder: Path) -> dict[str, str]:
    """The environment a server the tests start runs in: what its archive_command and
    restore_command keep (offsite's key cache and spool) goes under ``folder``, never into
    the server user's home (runuser sets HOME to it)."""
    return {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}


def pg_bin(name: str) -> str | None:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    for folder in reversed(dirs):
        if os.access(os.path.join(folder, name), os.X_OK):
            return os.path.join(folder, name)
    return shutil.which(name)


class Postgres:
    def __init__(self, conf: dict[str, str] | None = None) -> None:
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise FileNotFoundError("initdb/pg_ctl")
        self.pg_ctl = pg_ctl
        self.dir = _workdir("offsite-pg-", "postgres")
        self.port = free_port()
        self.user = "offsite"
        pwfile = self.dir / "pw"
        pwfile.write_text(PG_PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        subprocess.run(
            [*_as_user("postgres"), initdb, "-D", str(self.dir / "data"), "-U", self.user,
             f"--pwfile={pwfile}", "-A", "scram-sha-256", "--no-sync", "-E", "UTF8",
             "--locale=C.UTF-8"],
            check=True, capture_output=True,
        )  # fmt: skip
        pwfile.unlink()
        if conf:  # postgresql.conf settings, e.g. archiving's
            with open(self.dir / "data" / "postgresql.conf", "a") as fh:
                fh.writelines(f"{key} = '{value}'\n" for key, value in conf.items())
        self.start()

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*_as_user("postgres"), self.pg_ctl, "-D", str(self.dir / "data"), "-o", opts,
             "-l", str(self.dir / "log"), "-w", "start"],
            check=True, capture_output=True, env=server_env(self.dir),
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [*_as_user("postgres"), self.pg_ctl, "-D", str(self.dir / "data"), "-m", mode,
             "-w", "stop"],
            check=False, capture_output=True,
        )  # fmt: skip

    def url(self, database: str, password: str | None = PG_PASSWORD) -> str:
        auth = self.user + (f":{quote(password, safe='')}" if password is not None else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def sql(self, database: str, script: str) -> str:
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD}
        done = subprocess.run(
            [pg_bin("psql") or "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database],
            input=script, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return done.stdout

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class MariaDB:
    def __init__(self) -> None:
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        server = shutil.which("mariadbd") or (
            "/usr/sbin/mariadbd" if os.access("/usr/sbin/mariadbd", os.X_OK) else None
        )
        if not install or not server:
            raise FileNotFoundError("mariadb-install-db/mariadbd")
        self.dir = _workdir("offsite-my-", "mysql")
        self.port = free_port()
        self.user = "offsite"
        user = ["--user=mysql"] if os.geteuid() == 0 else []
        subprocess.run(
            [install, "--no-defaults", f"--datadir={self.dir / 'data'}", "--skip-test-db",
             "--auth-root-authentication-method=normal", *user],
            check=True, capture_output=True,
        )  # fmt: skip
        self.socket = self.dir / "sock"
        log = self.dir / "err.log"
        tmp = self.dir / "tmp"  # its own: never /tmp, which other servers and tests share
        tmp.mkdir()
        if user:
            shutil.chown(tmp, "mysql", "mysql")
        self.proc = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={self.dir / 'data'}", f"--port={self.port}",
             f"--tmpdir={tmp}",
             "--bind-address=127.0.0.1", f"--socket={self.socket}", f"--log-error={log}",
             f"--pid-file={self.dir / 'pid'}", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
             "--innodb-flush-log-at-trx-commit=0", "--event-scheduler=OFF", *user],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.port, self.proc, "mariadbd", log)
        escaped = MY_PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
        self.root_sql(
            f"CREATE USER '{self.user}'@'%' IDENTIFIED BY '{escaped}';"
            f"CREATE USER '{self.user}'@'localhost' IDENTIFIED BY '{escaped}';"
            f"GRANT ALL ON *.* TO '{self.user}'@'%' WITH GRANT OPTION;"
            f"GRANT ALL ON *.* TO '{self.user}'@'localhost' WITH GRANT OPTION;"
        )

    def url(self, database: str = "", password: str | None = MY_PASSWORD) -> str:
        auth = self.user + (f":{quote(password, safe='')}" if password is not None else "")
        return f"mysql://{auth}@127.0.0.1:{self.port}/{database}"

    def root_sql(self, script: str, database: str | None = None) -> str:
        client = shutil.which("mariadb") or "mysql"
        done = subprocess.run(
            [client, "--no-defaults", "--default-character-set=utf8mb4", f"--socket={self.socket}",
             "-uroot", "--batch", "--skip-column-names", *([database] if database else [])],
            input=script, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return done.stdout

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self, password: str | None = REDIS_PASSWORD) -> None:
        server = shutil.which("redis-server")
        if not server:
            raise FileNotFoundError("redis-server")
        self.server = server
        self.dir = Path(tempfile.mkdtemp(prefix="offsite-redis-"))
        self.port = free_port()
        self.password = password
        self.proc = self.run(self.dir, self.port)

    def run(self, folder: Path, port: int, rdb: str = "dump.rdb") -> subprocess.Popen[bytes]:
        """A redis-server on ``port`` with its data in ``folder`` (loading ``rdb`` if there)."""
        auth = ["--requirepass", self.password] if self.password else []
        log = folder / "redis.log"
        proc = subprocess.Popen(
            [self.server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
             "--dbfilename", rdb, "--save", "", "--appendonly", "no", "--logfile", str(log),
             "--repl-diskless-sync-delay", "0", *auth],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(port, proc, "redis-server", log)
        return proc

    def url(self, db: int = 0, password: str | None = REDIS_PASSWORD) -> str:
        auth = f":{quote(password, safe='')}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def cli(self, *args: str, port: int | None = None) -> str:
        env = {**os.environ, "REDISCLI_AUTH": self.password or ""}
        done = subprocess.run(
            ["redis-cli", "-p", str(port or self.port), *args],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        if done.stdout.startswith(("ERR ", "WRONGTYPE ", "NOAUTH ")):
            raise RuntimeError(f"redis-cli {args[0]}: {done.stdout.strip()}")  # exits 0 on these
        return done.stdout

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class MotoS3:
    """moto's S3-compatible server on a free port, checking signatures: the first four
    requests (unauthenticated) create an IAM user with an S3 policy and its access key,
    which every later request must sign with."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="offsite-moto-"))
        self.port = free_port()
        log = self.dir / "moto.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"},
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_port(self.port, self.proc, "moto server", log)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        import boto3

        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")  # fmt: skip
        iam.create_user(UserName="offsite")
        iam.put_user_policy(UserName="offsite", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))  # fmt: skip
        key = iam.create_access_key(UserName="offsite")["AccessKey"]
        iam.get_user(UserName="offsite")  # the fourth: from here on requests are signed
        self.env = {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_REGION": "us-east-1",
        }

    def client(self, endpoint: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=endpoint or self.endpoint, region_name="us-east-1",
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}),
        )  # fmt: skip

    def bucket(self, lock: bool = False) -> str:
        name = f"offsite-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
        return name

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class GcsEmulator:
    """gcp-storage-emulator (PyPI) on a free port, in memory. It does not check
    credentials, so the bad-credentials case cannot run against it."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="offsite-gcs-"))
        self.port = free_port()
        log = self.dir / "gcs.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
             "--port", str(self.port), "--in-memory"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_port(self.port, self.proc, "gcp-storage-emulator", log)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {"STORAGE_EMULATOR_HOST": self.endpoint, "GOOGLE_CLOUD_PROJECT": "offsite-test"}

    def bucket(self) -> str:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        name = f"offsite-{secrets.token_hex(6)}"
        with _env(self.env):
            storage.Client(
                project="offsite-test", credentials=AnonymousCredentials()
            ).create_bucket(name)
        return name

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Any:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


AZURITE = Path(__file__).parent / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class Azurite:
    """Azurite's Blob service (npm, installed by scripts/bootstrap.sh) on a free port, in
    memory; it checks Shared Key signatures like Azure does."""

    def __init__(self) -> None:
        if not AZURITE.exists():
            raise FileNotFoundError(AZURITE)
        self.dir = Path(tempfile.mkdtemp(prefix="offsite-azurite-"))
        self.port = free_port()
        log = self.dir / "azurite.log"
        self.proc = subprocess.Popen(
            [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--inMemoryPersistence", "--skipApiVersionCheck", "--silent"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_port(self.port, self.proc, "azurite", log)

    def connection_string(self, port: int | None = None, key: str = AZURITE_KEY) -> str:
        return (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={key};BlobEndpoint=http://127.0.0.1:{port or self.port}/devstoreaccount1;"
        )

    def container(self) -> str:
        from azure.storage.blob import BlobServiceClient

        name = f"offsite-{secrets.token_hex(6)}"
        BlobServiceClient.from_connection_string(self.connection_string()).create_container(name)
        return name

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


SSHD = "/usr/sbin/sshd"


class SshServer:
    """OpenSSH's sshd on a free loopback port, with a throwaway host key and one
    authorised client key (for the user the tests run as); SFTP by internal-sftp."""

    def __init__(self) -> None:
        if not os.access(SSHD, os.X_OK):
            raise FileNotFoundError(SSHD)
        self.dir = Path(tempfile.mkdtemp(prefix="offsite-sshd-"))
        self.port = free_port()
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.host_key = self.keygen("host")
        self.client_key = self.keygen("client")
        (self.dir / "authorized_keys").write_text(self.public("client"))
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {self.dir / 'sshd.pid'}\nAuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
            "MaxStartups 100\n"
        )
        if os.geteuid() == 0:  # sshd's privilege separation folder, as the package makes it
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = self.dir / "sshd.log"
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        _wait_port(self.port, self.proc, "sshd", log)

    def keygen(self, name: str, passphrase: str = "") -> Path:
        path = self.dir / name
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name,
                        "-f", str(path)], check=True)  # fmt: skip
        return path

    def public(self, name: str) -> str:
        return (self.dir / f"{name}.pub").read_text()

    def known_hosts(self, port: int | None = None) -> str:
        kind, key = self.public("host").split()[:2]
        return f"[127.0.0.1]:{port or self.port} {kind} {key}\n"

    def env(self, port: int | None = None) -> dict[str, str]:
        return {
            "OFFSITE_SFTP_KEY": self.client_key.read_text(),
            "OFFSITE_SFTP_KNOWN_HOSTS": self.known_hosts(port),
        }

    def folder(self) -> Path:
        """A fresh folder for one test's destination, inside this server's."""
        return Path(tempfile.mkdtemp(prefix="store-", dir=self.dir))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class OciRegistry:
    """Distribution's registry (Debian's docker-registry), on a free port, plain HTTP.

    ``auth``: None (open), "basic" (htpasswd, bcrypt) or "token" (distribution's token
    flow: the registry checks JWTs that ``TokenService`` signs, against its certificate).
    """

    def __init__(self, auth: str | None = None, token_service: Any = None) -> None:
        binary = shutil.which("docker-registry")
        if not binary:
            raise FileNotFoundError("docker-registry")
        self.dir = Path(tempfile.mkdtemp(prefix="offsite-registry-"))
        self.storage = self.dir / "storage"
        self.port = free_port()
        self.user, self.password = "puller", "reg-s3cr3t p@ss"
        lines = [
            "version: 0.1",
            "log: {level: warn, accesslog: {disabled: true}}",
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}}}}",
            f"http: {{addr: '127.0.0.1:{self.port}', secret: '{secrets.token_hex(16)}'}}",
        ]
        if auth == "basic":
            import bcrypt

            hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
            (self.dir / "htpasswd").write_text(f"{self.user}:{hashed}\n")
            lines.append(
                f"auth: {{htpasswd: {{realm: offsite-test, path: {self.dir / 'htpasswd'}}}}}"
            )
        elif auth == "token":
            bundle = self.dir / "token.pem"
            bundle.write_bytes(token_service.cert_pem)
            lines.append(
                f"auth: {{token: {{realm: '{token_service.url}', service: '{token_service.service}', "
                f"issuer: '{token_service.issuer}', rootcertbundle: {bundle}}}}}"
            )
        config = self.dir / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        log = self.dir / "registry.log"
        self.proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        _wait_port(self.port, self.proc, "docker-registry", log)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, repository: str, http: bool = True) -> str:
        return f"{'oci+http' if http else 'oci'}://{self.host}/{repository}"

    def blob_file(self, digest: str) -> Path:
        hexa = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
