"""Shared fixtures: example data, GnuPG keys, and running the CLI in-process."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from offsite.cli import run
from tests.servers import Postgres

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("example", ROOT / "scripts" / "example.py")
assert _spec and _spec.loader
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)

PASSPHRASE = "correct horse battery staple"

# What makes a test slow: a server it starts (databases, object stores, an sshd, a git
# daemon, the fake GitHub), the actions' own virtualenv, or hypothesis' hundreds of
# generated inputs. Such a test is marked ``slow`` here, by what it uses, so that
# ``scripts/test -m "not slow"`` (the Contributing page) runs the rest in under a minute; a test slow
# for another reason (a retry waited out, a server of its own) carries the mark itself.
SLOW_FIXTURES = frozenset(
    {"pg", "mariadb", "redis", "moto", "gcs", "azurite", "sshd", "backend", "action_venv",
     "daemon", "github", "org", "archiving", "registry", "registry_basic", "token_registry",
     "site"}
)  # fmt: skip
SLOW_FOLDERS = ("property",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in SLOW_FOLDERS or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``offsite ARGS...`` in this process; return exit code, stdout and stderr."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("OFFSITE_", "GITHUB_")):
            monkeypatch.delenv(name)
    # the host's key cache and spools: the test's own, never the user's home
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))


@pytest.fixture(scope="session", autouse=True)
def _servers_homes_untouched() -> Iterator[None]:
    """The servers the tests start run as their own users (runuser gives them their home):
    what offsite keeps for them goes under the tests' temporary folders, never into
    ``~postgres/.cache``."""
    homes = [Path(os.path.expanduser("~postgres")) / ".cache" / "offsite"]
    before = {h for h in homes if h.exists()}
    yield
    written = {h for h in homes if h.exists()} - before
    assert not written, f"the tests wrote into {sorted(map(str, written))}"


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OFFSITE_PASSPHRASE", PASSPHRASE)
    return PASSPHRASE


@dataclass(frozen=True)
class Keyring:
    home: Path
    fingerprint: str
    public_key_file: Path


@pytest.fixture(scope="session")
def keyring() -> Iterator[Keyring]:
    """A GnuPG home with one unprotected key pair (short path: the agent's socket lives there)."""
    home = Path(tempfile.mkdtemp(prefix="offsite-t-"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
         "offsite test <test@example.invalid>", "default", "default", "never"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys"], env=env, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    fingerprint = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr:"))
    public = home / "public.asc"
    public.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--armor", "--export", fingerprint], env=env, check=True,
            capture_output=True,
        ).stdout
    )  # fmt: skip
    yield Keyring(home, fingerprint, public)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def with_keyring(keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> Keyring:
    monkeypatch.setenv("GNUPGHOME", str(keyring.home))
    return keyring


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    return example.make_sqlite(tmp_path / "src" / "app.db", rows=3000)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return example.make_tree(tmp_path / "src" / "files")


def sqlite_content(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows in primary-key order, plus the schema."""
    with sqlite3.connect(path) as db:
        schema = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        tables = [r[1] for r in schema if r[0] == "table"]
        content = {t: db.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    return {"__schema__": schema, **content}


def tree_content(root: Path) -> dict[str, tuple[str, int, str]]:
    """Each path below ``root``: its type, permission bits, and content hash or link target."""
    found: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if path.is_symlink():
                found[rel] = ("link", 0, os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir", st.st_mode & 0o7777, "")
            else:
                found[rel] = (
                    "file",
                    st.st_mode & 0o7777,
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                )
    return found


def snapshot(root: Path) -> dict[str, str]:
    """Every file below ``root`` with its hash: to prove a failed command changed nothing."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "dir"
        for p in sorted(root.rglob("*"))
    }


def only_set(dest: Path) -> Path:
    """The one set folder (beside it: drill records and a WAL archive, SPEC §8, §9)."""
    sets = [p for p in dest.iterdir() if p.is_dir() and p.name not in ("drills", "wal")]
    assert len(sets) == 1, sets
    return sets[0]


def batch_gnupg_home(tmp_path: Path, keyring: Keyring | None) -> Path:
    """A GNUPGHOME where plain `gpg --decrypt` runs unattended: what a person types
    interactively at a pinentry prompt comes from a file instead."""
    home = tmp_path / "gh"
    if keyring is not None:
        shutil.copytree(keyring.home, home, ignore=shutil.ignore_patterns("S.*"))
    else:
        home.mkdir()
    home.chmod(0o700)
    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSPHRASE)
    (home / "gpg.conf").write_text(f"batch\npinentry-mode loopback\npassphrase-file {secret}\n")
    return home


def run_guide_diff(after: str, base: Path, diff: Path, tmp_path: Path) -> Path:
    """The bash block of docs/guides/incremental.md that follows ``after``, run in a folder
    holding the base
    set as ``base/`` and the diff as ``diff/`` (what a person downloads), passphrase-
    encrypted sets opened unattended; the folder it ran in."""
    work = tmp_path / "by-hand"
    work.mkdir()
    shutil.copytree(base, work / "base")
    shutil.copytree(diff, work / "diff")
    guide = (ROOT / "docs/guides/incremental.md").read_text()
    commands = guide.split(after, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    env = {**os.environ, "GNUPGHOME": str(batch_gnupg_home(tmp_path, None))}
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + commands], cwd=work, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return work


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manual built as ``mkdocs build --strict`` builds it: the one scripts/test built
    (``$OFFSITE_SITE``), else built here."""
    built = os.environ.get("OFFSITE_SITE")
    if built and (Path(built) / "index.html").exists():
        return Path(built)
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mkdocs")), "build", "--strict", "--quiet",
         "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    """A throwaway PostgreSQL server on a free port, for the whole session."""
    try:
        server = Postgres()
    except FileNotFoundError as exc:
        pytest.skip(f"{exc} is not installed")
    yield server
    server.close()
