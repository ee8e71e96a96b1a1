"""A GitHub owner's container images (oci://ghcr.io/OWNER): packages and versions listed
by the fake GitHub in GitHub's own shapes, the images themselves in a real registry that
stands in for ghcr.io (OFFSITE_CONTAINER_REGISTRY)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.conftest import only_set
from tests.fakegithub import FakeGitHub, FakeVersion
from tests.oci.images import build, push, remote_digest
from tests.servers import OciRegistry

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def _publish(
    tmp_path: Path, registry: OciRegistry, github: FakeGitHub, owner: str
) -> dict[str, str]:
    """Three versions of octo-org/api (1.0 oldest, an untagged build, 1.1 and latest newest)
    and one of octo-org/web; their index digests by tag."""
    digests = {}
    versions: dict[str, list[FakeVersion]] = {"api": [], "web": []}
    for n, (package, tags) in enumerate([("api", ["1.0"]), ("api", []), ("api", ["1.1", "latest"]),
                                         ("web", ["2.0"])]):  # fmt: skip
        made = build(tmp_path / f"img{n}", tag=tags[0] if tags else "untagged")
        push(made, registry, f"{owner}/{package}")
        versions[package].append(FakeVersion(made.index_digest, tags, NOW + timedelta(hours=n)))
        for tag in tags:
            digests[f"{package}:{tag}"] = made.index_digest
    github.packages[owner] = versions
    github.package_orgs.add(owner)
    return digests


def test_an_owners_images_newest_tagged_version_of_each_package(
    cli, tmp_path: Path, registry: OciRegistry, github: FakeGitHub, passphrase: str, monkeypatch
) -> None:
    monkeypatch.setenv("OFFSITE_CONTAINER_REGISTRY", f"oci+http://{registry.host}")
    github.page_size = 1  # a page per version: the listing stops once it has what it needs
    digests = _publish(tmp_path, registry, github, "octo-org")
    owner = f"oci+http://{registry.host}/octo-org"

    r = cli("plan", owner, "--shards", "2")
    assert r.code == 0, r.err
    asked = [line for line in github.log if line.endswith("/packages/container/api/versions")]
    assert len(asked) == 1  # three versions, one a page: the newest tagged one is on the first
    jobs = json.loads(r.out)["include"]
    assert sorted(n for j in jobs for n in j["names"]) == ["api-1.1", "web-2.0"]

    dest = tmp_path / "backups"
    r = cli("backup", owner, "--to", dest)
    assert r.code == 0, r.err
    manifest = json.loads((only_set(dest) / "manifest.json").read_text())
    assert sorted(e["name"] for e in manifest["entries"]) == ["api-1.1", "web-2.0"]
    r = cli("restore", dest, "--latest", "--entry", "api-1.1", "--into", registry.url("copy/api"))
    assert r.code == 0, r.err
    assert remote_digest(registry, "copy/api:1.1") == digests["api:1.1"]

    # the newest two tagged versions of the packages matching a filter, with tags matching
    r = cli("plan", owner, "--image-filter", "api", "--image-versions", "2")
    assert sorted(n for j in json.loads(r.out)["include"] for n in j["names"]) == [
        "api-1.0",
        "api-1.1",
    ]
    r = cli("plan", owner, "--image-tags", "latest")
    assert sorted(n for j in json.loads(r.out)["include"] for n in j["names"]) == ["api-latest"]

    # a shard backs up its share only
    r = cli("backup", owner, "--shard", "1/2", "--to", tmp_path / "shard")
    assert r.code == 0, r.err
    first = next(j["names"] for j in jobs if j["shard"] == "1/2")
    shard = json.loads((only_set(tmp_path / "shard") / "manifest.json").read_text())
    assert [e["name"] for e in shard["entries"]] == first


def test_github_owner_with_include_images_and_an_unknown_owner(
    cli, tmp_path: Path, registry: OciRegistry, github: FakeGitHub, monkeypatch
) -> None:
    monkeypatch.setenv("OFFSITE_CONTAINER_REGISTRY", f"oci+http://{registry.host}")
    _publish(tmp_path, registry, github, "octo-org")
    github.org_repos["octo-org"] = []
    r = cli("plan", "github://octo-org", "--include-images")
    assert r.code == 0, r.err
    assert sorted(n for j in json.loads(r.out)["include"] for n in j["names"]) == [
        "api-1.1",
        "web-2.0",
    ]
    r = cli("plan", f"oci+http://{registry.host}/nobody")
    assert r.code == 2 and "nobody" in r.err and len(r.err.strip().splitlines()) == 1, r.err
