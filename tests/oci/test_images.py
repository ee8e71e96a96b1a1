"""Container images against a real registry (distribution 2.8) holding a two-platform
image that skopeo pushed: backup, restore under a new name with the same digests,
standard-tools restore, a corrupt blob, a missing tag, --platform, basic auth and the
token flow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from offsite.oci.layout import check_folder
from tests.conftest import batch_gnupg_home, only_set, run_guide_diff
from tests.oci.images import Image, build, extend, push, remote_digest, skopeo
from tests.servers import OciRegistry


def _manifest(dest: Path) -> dict:
    return json.loads((only_set(dest) / "manifest.json").read_text())


def test_backup_and_restore_under_a_new_name_keep_every_digest(
    cli, tmp_path: Path, registry: OciRegistry, image: Image, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    r = cli("backup", registry.url("team/app:1.0"), "--to", dest)
    assert r.code == 0, r.err
    entry = _manifest(dest)["entries"][0]
    assert (entry["name"], entry["kind"], entry["file"]) == (
        "app-1.0",
        "oci-image",
        "app-1.0.tar.zst.gpg",
    )
    # two image manifests under one index; a layer shared by both platforms stored once
    assert entry["stats"]["platforms"] == 2
    assert entry["stats"]["manifests"] == 3
    assert entry["stats"]["blobs"] == 3 + 2 + 3  # manifests, configs, layers (one shared)

    r = cli("restore", dest, "--latest", "--into", registry.url("restored/app:2.0"))
    assert r.code == 0, r.err
    assert remote_digest(registry, "restored/app:2.0") == image.index_digest
    for platform, digest in image.platforms.items():  # each platform's image, by digest
        assert remote_digest(registry, f"restored/app@{digest}") == digest, platform
    # skopeo can pull what was pushed back, every platform
    out = tmp_path / "pulled"
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{registry.host}/restored/app:2.0", f"oci:{out}:x")  # fmt: skip

    # a restore into the same tag again is idempotent; into another image's tag it is refused
    assert cli("restore", dest, "--latest", "--into", registry.url("restored/app:2.0")).code == 0
    other = build(tmp_path / "other", tag="9")
    push(other, registry, "restored/other")
    r = cli("restore", dest, "--latest", "--into", registry.url("restored/other:9"))
    assert r.code == 2 and "not empty" in r.err and "--force" in r.err
    assert remote_digest(registry, "restored/other:9") == other.index_digest
    r = cli("restore", dest, "--latest", "--into", registry.url("restored/other:9"), "--force")
    assert r.code == 0, r.err
    assert remote_digest(registry, "restored/other:9") == image.index_digest

    # no tag in the target: the tag backed up
    r = cli("restore", dest, "--latest", "--into", registry.url("again/app"))
    assert r.code == 0, r.err
    assert remote_digest(registry, "again/app:1.0") == image.index_digest


def test_a_folder_restore_is_a_layout_skopeo_pushes_with_the_same_digest(
    cli, tmp_path: Path, registry: OciRegistry, image: Image, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", registry.url("team/app:1.0"), "--to", dest).code == 0
    folder = tmp_path / "layout"
    r = cli("restore", dest, "--latest", "--into", folder)
    assert r.code == 0, r.err
    assert (
        json.loads((folder / "index.json").read_text())["manifests"][0]["digest"]
        == image.index_digest
    )
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{folder}", f"docker://{registry.host}/fromfolder/app:1.0")  # fmt: skip
    assert remote_digest(registry, "fromfolder/app:1.0") == image.index_digest

    r = cli("drill", dest, "--latest", "--into", tmp_path / "scratch")
    assert r.code == 0, r.out + r.err
    assert "every blob's digest" in r.out
    # a damaged blob in a restored layout is what a drill finds
    victim = next((tmp_path / "scratch" / "blobs" / "sha256").iterdir())
    victim.write_bytes(b"x" + victim.read_bytes()[1:])
    from offsite.sources.oci_image import OciImageSource

    stats = _manifest(dest)["entries"][0]["stats"]
    found = OciImageSource.inspect(str(tmp_path / "scratch"), stats)
    assert any(victim.name in p for p in found.problems), found.problems


def test_the_manifests_restore_hint_with_skopeo_gives_the_same_digest(
    tmp_path: Path, cli, registry: OciRegistry, image: Image, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", registry.url("team/app:1.0"), "--to", dest).code == 0
    stored = only_set(dest)
    entry = _manifest(dest)["entries"][0]
    work = tmp_path / "by-hand"
    work.mkdir()
    shutil.copy(stored / "key.gpg", work)
    shutil.copy(stored / entry["file"], work)
    target = f"{registry.host}/byhand/app:1.0"
    hint = entry["restore_hint"].replace("REGISTRY/REPOSITORY:TAG", target)
    assert "skopeo copy --all --preserve-digests oci-archive:app-1.0.tar" in hint
    hint = hint.replace("skopeo copy", "skopeo --insecure-policy copy --dest-tls-verify=false")
    env = {**os.environ, "GNUPGHOME": str(batch_gnupg_home(tmp_path, None))}
    done = subprocess.run(["bash", "-c", "set -euo pipefail; " + hint], cwd=work, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, (hint, done.stderr)
    assert remote_digest(registry, "byhand/app:1.0") == image.index_digest


def test_a_blob_corrupted_in_the_registry_fails_the_backup_and_writes_no_set(
    cli, tmp_path: Path, registry: OciRegistry, passphrase: str
) -> None:
    made = build(tmp_path / "layout", tag="bad")
    push(made, registry, "team/corrupt")
    data = registry.blob_file(made.layers[-1])
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    dest = tmp_path / "backups"
    r = cli("backup", registry.url("team/corrupt:bad"), "--to", dest)
    assert r.code == 3, r.err
    assert "corrupt" in r.err and made.layers[-1] in r.err
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert not dest.exists() or not any(p.name[:1].isdigit() for p in dest.iterdir())


def test_a_missing_tag_is_one_line_and_exit_3_and_a_malformed_reference_exit_2(
    cli, tmp_path: Path, registry: OciRegistry, image: Image, passphrase: str
) -> None:
    r = cli("backup", registry.url("team/app:nope"), "--to", tmp_path / "b")
    assert r.code == 3, r.err
    assert "no image nope" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("backup", registry.url("team/never:1"), "--to", tmp_path / "b")
    assert r.code == 3 and len(r.err.strip().splitlines()) == 1, r.err
    r = cli("backup", f"oci+http://{registry.host}/Team/App:1", "--to", tmp_path / "b")
    assert r.code == 2 and "lower-case" in r.err, r.err
    r = cli("backup", f"oci+http://u:p@{registry.host}/team/app:1.0", "--to", tmp_path / "b")
    assert r.code == 2 and "OFFSITE_REGISTRY_PASSWORD" in r.err and ":p@" not in r.err


def test_platform_keeps_one_image_of_the_index(
    cli, tmp_path: Path, registry: OciRegistry, image: Image, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    r = cli("backup", registry.url("team/app:1.0"), "--platform", "linux/arm64", "--to", dest)
    assert r.code == 0, r.err
    assert _manifest(dest)["entries"][0]["stats"]["manifests"] == 1
    assert cli("restore", dest, "--latest", "--into", registry.url("arm/app:1.0")).code == 0
    assert remote_digest(registry, "arm/app:1.0") == image.platforms["linux/arm64"]
    r = cli("backup", registry.url("team/app:1.0"), "--platform", "linux/s390x", "--to", dest)
    assert r.code == 3 and "linux/amd64, linux/arm64" in r.err, r.err


def test_basic_auth_with_the_credentials_from_the_environment(
    cli, tmp_path: Path, registry_basic: OciRegistry, passphrase: str, monkeypatch
) -> None:
    reg = registry_basic
    made = build(tmp_path / "layout", tag="1")
    push(made, reg, "team/private", creds=f"{reg.user}:{reg.password}")
    dest = tmp_path / "backups"
    r = cli("backup", reg.url("team/private:1"), "--to", dest)
    assert r.code == 3 and "access denied" in r.err and "OFFSITE_REGISTRY_USER" in r.err, r.err
    monkeypatch.setenv("OFFSITE_REGISTRY_USER", reg.user)
    monkeypatch.setenv("OFFSITE_REGISTRY_PASSWORD", "wrong")
    r = cli("backup", reg.url("team/private:1"), "--to", dest)
    assert r.code == 3 and "denied with OFFSITE_REGISTRY_PASSWORD" in r.err and "wrong" not in r.err
    monkeypatch.setenv("OFFSITE_REGISTRY_PASSWORD", reg.password)
    r = cli("backup", reg.url("team/private:1"), "--to", dest)
    assert r.code == 0, r.err
    assert cli("restore", dest, "--latest", "--into", reg.url("team/copy:1")).code == 0
    creds = f"{reg.user}:{reg.password}"
    assert remote_digest(reg, "team/copy:1", creds=creds) == made.index_digest


def test_the_token_flow_asks_a_token_per_scope_with_the_credentials(
    cli, tmp_path: Path, token_registry, passphrase: str, monkeypatch
) -> None:
    reg, service = token_registry
    creds = f"{service.user}:{service.password}"
    made = build(tmp_path / "layout", tag="1")
    push(made, reg, "team/tokened", creds=creds)
    dest = tmp_path / "backups"
    r = cli("backup", reg.url("team/tokened:1"), "--to", dest)  # anonymous: a token, no access
    assert r.code == 3 and "access denied" in r.err, r.err
    monkeypatch.setenv("OFFSITE_REGISTRY_USER", service.user)
    monkeypatch.setenv("OFFSITE_REGISTRY_PASSWORD", service.password)
    service.asked.clear()
    assert cli("backup", reg.url("team/tokened:1"), "--to", dest).code == 0
    assert service.asked == [{"scope": "repository:team/tokened:pull", "user": service.user}]
    service.asked.clear()
    r = cli("restore", dest, "--latest", "--into", reg.url("team/back:1"))
    assert r.code == 0, r.err
    assert {"scope": "repository:team/back:pull,push", "user": service.user} in service.asked
    assert remote_digest(reg, "team/back:1", creds=creds) == made.index_digest


@pytest.mark.slow
def test_a_200_mib_layer_streams_in_bounded_memory(
    tmp_path: Path, registry: OciRegistry, passphrase: str
) -> None:
    size = 200 << 20
    folder = Path(tempfile.mkdtemp(prefix="offsite-big-", dir=tmp_path))
    made = build(folder / "layout", tag="big", platforms=("linux/amd64",), big_layer=size)
    push(made, registry, "team/big")
    shutil.rmtree(folder)
    dest = tmp_path / "backups"
    offsite = [sys.executable, "-m", "offsite"]  # this interpreter's, whatever PATH holds

    def peak(*args: str) -> int:
        """The largest resident size (KiB) of offsite and what it started, for one command."""
        probe = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")  # fmt: skip
        done = subprocess.run([sys.executable, "-c", probe, *offsite, *args],
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip().splitlines()[-1])

    backup = peak("backup", registry.url("team/big:big"), "--to", str(dest), "--compress", "none")
    stored = only_set(dest)
    assert sum(p.stat().st_size for p in stored.iterdir()) > size
    restore = peak("restore", str(dest), "--latest", "--into", registry.url("team/bigcopy:big"))
    assert remote_digest(registry, "team/bigcopy:big") == made.index_digest
    # a whole layer in memory would be 200 MiB on top of the interpreter's ~60 MiB
    assert backup < 150 * 1024, f"backup peaked at {backup // 1024} MiB"
    assert restore < 150 * 1024, f"restore peaked at {restore // 1024} MiB"


def test_a_registry_that_answers_an_endless_error_is_one_line(cli, tmp_path: Path) -> None:
    """A registry whose 500 never ends: the backup reads a little of it and stops."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Endless(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(500)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(16384):  # 1 GiB, if anyone read it
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = cli("backup", f"oci+http://127.0.0.1:{server.server_address[1]}/a/b:1",
                "--to", tmp_path / "b", "--no-encrypt")  # fmt: skip
    finally:
        server.shutdown()
    assert r.code == 3 and "500" in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_platform_on_a_one_platform_image_checks_its_config_and_drill_into_a_registry(
    cli, tmp_path: Path, registry: OciRegistry, image: Image, passphrase: str
) -> None:
    amd64 = image.platforms["linux/amd64"]
    dest = tmp_path / "backups"
    r = cli("backup", registry.url(f"team/app@{amd64}"), "--platform", "linux/arm64", "--to", dest)
    assert r.code == 3 and "linux/amd64, not linux/arm64" in r.err, r.err
    r = cli("backup", registry.url(f"team/app@{amd64}"), "--platform", "linux/amd64", "--to", dest)
    assert r.code == 0, r.err
    r = cli("drill", dest, "--latest", "--into", registry.url("drill/app:x"))
    assert r.code == 0, r.out + r.err
    assert remote_digest(registry, "drill/app:x") == amd64


def test_an_image_in_a_configuration_file_with_its_platform(
    cli, tmp_path: Path, registry: OciRegistry, image: Image, passphrase: str
) -> None:
    config = tmp_path / "offsite.yml"
    config.write_text(
        "sources:\n"
        f"  - {{name: app-arm, url: '{registry.url('team/app:1.0')}', platform: linux/arm64}}\n"
        f"destinations: ['{tmp_path / 'backups'}']\n"
    )
    r = cli("backup", "--config", config)
    assert r.code == 0, r.err
    assert cli("restore", tmp_path / "backups", "--into", registry.url("conf/app:1")).code == 0
    assert remote_digest(registry, "conf/app:1") == image.platforms["linux/arm64"]
    config.write_text(config.read_text().replace("linux/arm64", "arm64"))
    r = cli("backup", "--config", config)
    assert r.code == 2 and "OS/ARCH" in r.err, r.err


def test_an_image_diff_holds_the_blobs_its_base_lacks_and_restores_every_digest(
    cli, tmp_path: Path, registry: OciRegistry, image: Image, passphrase: str
) -> None:
    first = build(tmp_path / "first", tag="1.0")
    push(first, registry, "team/web")
    dest = tmp_path / "backups"
    url = registry.url("team/web:1.0")
    assert cli("backup", url, "--incremental", "--to", dest).code == 0
    assert cli("backup", url, "--incremental", "--to", dest).code == 0  # nothing new
    second = extend(first, tmp_path / "second")
    push(second, registry, "team/web")
    r = cli("backup", url, "--incremental", "--to", dest, "--json")
    assert r.code == 0, r.err
    full, same, diff = (json.loads((p / "manifest.json").read_text())
                        for p in sorted(dest.iterdir()) if p.is_dir())  # fmt: skip
    assert full["entries"][0]["delta"] == "full"
    assert same["entries"][0]["delta"] == "unchanged" and not same["entries"][0].get("file")
    entry = diff["entries"][0]
    assert diff["base"]["id"] == full["id"] and entry["delta"] == "diff"
    assert (entry["stats"]["new_blobs"], entry["stats"]["platforms"]) == (2, 3)  # config, layer
    assert [c["role"] for c in entry["companions"]] == ["deleted"]  # the first index

    folder = tmp_path / "layout"
    r = cli("restore", dest, "--latest", "--into", folder)
    assert r.code == 0, r.err
    top = json.loads((folder / "index.json").read_text())["manifests"][0]["digest"]
    assert top == second.index_digest
    assert not (folder / "blobs" / "sha256" / first.index_digest[7:]).exists()
    r = cli("restore", dest, "--latest", "--into", registry.url("again/inc:2"))
    assert r.code == 0, r.err
    assert remote_digest(registry, "again/inc:2") == second.index_digest
    for platform, digest in second.platforms.items():
        assert remote_digest(registry, f"again/inc@{digest}") == digest, platform
    # again into the tag that holds the diff's image: its base's is no other image there
    r = cli("restore", dest, "--latest", "--into", registry.url("again/inc:2"))
    assert r.code == 0, r.err
    r = cli("drill", dest, "--latest", "--into", tmp_path / "scratch")
    assert r.code == 0, r.out + r.err
    # by hand, as the incremental guide says: both tars into one folder
    sets = sorted(p for p in dest.iterdir() if (p / "manifest.json").exists())
    work = run_guide_diff("An image (`web-1.0`)", sets[0], sets[-1], tmp_path)
    problems, _ = check_folder(work / "layout")
    assert not problems
    top = json.loads((work / "layout" / "index.json").read_text())["manifests"][0]["digest"]
    assert top == second.index_digest
    # a diff over --full-when-over of its base: the run is full, saying why
    r = cli("backup", url, "--incremental", "--to", dest, "--full-when-over", "1%", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["manifest"].get("base") is None and "--full-when-over" in r.err
