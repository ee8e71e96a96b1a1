"""Repository backup: mirror → bundle → restore gives back every ref, over file:// and
git://; a cached mirror fetches only what is new; tokens reach git only by askpass."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import only_set
from tests.git.conftest import GitDaemon, commit, git, refs


def _backup(cli, *args):  # type: ignore[no-untyped-def]
    r = cli("backup", *args, "--no-encrypt", "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)["manifest"]


@pytest.mark.parametrize("served", ["file", "daemon"])
def test_round_trip_into_a_new_bare_repository(
    cli, tmp_path: Path, repo: Path, daemon: GitDaemon, served: str
) -> None:
    url = f"git+file://{repo}" if served == "file" else f"git+{daemon.url('app.git')}"
    manifest = _backup(cli, url, "--to", tmp_path / "sets")
    (entry,) = manifest["entries"]
    assert (entry["kind"], entry["file"], entry["name"]) == ("git", "app.bundle.zst", "app")
    assert entry["stats"]["refs"] == len(refs(repo).splitlines()) == 6  # 3 branches, notes, 2 tags
    assert "git clone --mirror app.bundle app.git" in entry["restore_hint"]

    r = cli("restore", tmp_path / "sets", "--into", tmp_path / "restored.git")
    assert r.code == 0, r.err
    assert refs(tmp_path / "restored.git") == refs(repo)
    git("fsck", "--full", "--no-dangling", cwd=tmp_path / "restored.git")
    assert git("notes", "show", "main", cwd=tmp_path / "restored.git") == "reviewed by Grace\n"


def test_the_repository_was_deleted_a_new_empty_one_gets_everything(
    cli, tmp_path: Path, repo: Path
) -> None:
    _backup(cli, f"git+file://{repo}", "--to", tmp_path / "sets")
    fresh = tmp_path / "new-home.git"
    git("init", "-q", "--bare", str(fresh))
    r = cli("restore", tmp_path / "sets", "--into", f"git+file://{fresh}")
    assert r.code == 0, r.err
    assert refs(fresh) == refs(repo)
    git("fsck", "--full", cwd=fresh)
    r = cli("restore", tmp_path / "sets", "--into", f"git+file://{fresh}")  # has refs now
    assert r.code == 2 and "not empty; pass --force" in r.err


def test_standard_tools_restore_the_bundle(cli, tmp_path: Path, repo: Path) -> None:
    _backup(cli, f"git+file://{repo}", "--to", tmp_path / "sets", "--compress", "none")
    bundle = only_set(tmp_path / "sets") / "app.bundle"
    git("clone", "-q", "--mirror", str(bundle), str(tmp_path / "by-hand.git"))
    git("remote", "remove", "origin", cwd=tmp_path / "by-hand.git")
    assert refs(tmp_path / "by-hand.git") == refs(repo)


def test_incremental_backup_fetches_only_new_objects(cli, tmp_path: Path, repo: Path) -> None:
    cache = tmp_path / "mirror-cache"
    first = _backup(cli, f"git+file://{repo}", "--to", tmp_path / "sets", "--mirror-cache", cache)
    stats = first["entries"][0]["stats"]
    assert stats["incremental"] is False and stats["objects_fetched"] == stats["objects"]

    work = tmp_path / "work"
    git("clone", "-q", str(repo), str(work))
    before = git("rev-parse", "HEAD", cwd=work).strip()
    commit(work, "new.txt", "something new\n")  # one commit, one tree, one blob
    git("push", "-q", "origin", "main", cwd=work)
    new_objects = len(git("rev-list", "--objects", f"{before}..HEAD", cwd=work).splitlines())
    assert new_objects == 3

    second = _backup(cli, f"git+file://{repo}", "--to", tmp_path / "sets", "--mirror-cache", cache)
    stats = second["entries"][0]["stats"]
    assert stats["incremental"] is True and stats["objects_fetched"] == new_objects
    assert stats["objects"] == first["entries"][0]["stats"]["objects"] + new_objects
    # and the bundle is still complete: everything, not just what was new
    r = cli("restore", tmp_path / "sets", "--id", second["id"], "--into", tmp_path / "r.git")
    assert r.code == 0, r.err
    assert refs(tmp_path / "r.git") == refs(repo)


def test_an_empty_or_missing_repository_fails_without_a_set(cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.git"
    git("init", "-q", "--bare", str(empty))
    r = cli("backup", f"git+file://{empty}", "--to", tmp_path / "sets", "--no-encrypt")
    assert r.code == 3 and "no branches or tags" in r.err
    r = cli(
        "backup", f"git+file://{tmp_path}/absent.git", "--to", tmp_path / "sets", "--no-encrypt"
    )
    assert r.code == 3 and "entry 'absent'" in r.err
    assert not any((tmp_path / "sets").rglob("manifest.json"))


def test_drill_checks_the_restored_repository(cli, tmp_path: Path, repo: Path) -> None:
    _backup(cli, f"git+file://{repo}", "--to", tmp_path / "sets")
    r = cli("drill", tmp_path / "sets", "--into", tmp_path / "drill.git")
    assert r.code == 0, r.err
    assert "git fsck --full" in r.out


class _AuthRecorder:
    """An HTTP remote that asks for credentials and records what git sends."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                recorder.seen.append(self.headers.get("Authorization", ""))
                self.send_response(401 if not self.headers.get("Authorization") else 403)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/octo-org/app.git"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_token_reaches_git_by_askpass_and_nowhere_else(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "ghs_tokenThatMustNeverBePrinted0123456789"
    monkeypatch.setenv("GITHUB_TOKEN", token)
    remote = _AuthRecorder()
    try:
        r = cli("backup", f"git+{remote.url}", "--to", tmp_path / "sets", "--no-encrypt")
    finally:
        remote.server.shutdown()
    assert r.code == 3
    sent = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert f"Basic {sent}" in remote.seen  # git asked the helper, and sent what it said
    assert token not in r.out + r.err
    r = cli(
        "backup", f"git+http://u:{token}@127.0.0.1:1/x.git", "--to", tmp_path / "s", "--no-encrypt"
    )
    assert r.code == 2 and token not in r.err and "OFFSITE_GIT_TOKEN" in r.err


def test_the_self_check_reads_the_whole_bundle(tmp_path: Path, repo: Path) -> None:
    from offsite.sources.git import pack_problem

    bundle = tmp_path / "app.bundle"
    git("bundle", "create", "-q", str(bundle), "--all", cwd=repo)
    assert pack_problem(bundle) is None
    data = bytearray(bundle.read_bytes())
    flipped = bytearray(data)
    flipped[len(data) - 100] ^= 0x01  # git bundle verify still says "okay" to this
    (tmp_path / "flipped.bundle").write_bytes(bytes(flipped))
    git("bundle", "verify", "-q", str(tmp_path / "flipped.bundle"), cwd=repo)
    assert (
        pack_problem(tmp_path / "flipped.bundle")
        == "the pack's checksum does not match its content"
    )
    (tmp_path / "short.bundle").write_bytes(bytes(data[:-50]))  # truncated inside the pack
    assert (
        pack_problem(tmp_path / "short.bundle") == "the pack's checksum does not match its content"
    )
