"""Image references, registry challenges and the choice of an owner's versions: pure."""

from __future__ import annotations

import pytest

from offsite.errors import BadInput
from offsite.oci.packages import ImageChoice, Version, pick
from offsite.oci.reference import parse
from offsite.oci.registry import Registry, challenge

D1, D2, D3 = ("sha256:" + c * 64 for c in "abc")


@pytest.mark.parametrize(
    ("url", "secure", "registry", "repository", "tag", "digest"),
    [
        ("oci://ghcr.io/octo-org/api:1.2", True, "ghcr.io", "octo-org/api", "1.2", None),
        ("oci://ghcr.io/octo-org/api", True, "ghcr.io", "octo-org/api", "latest", None),
        (f"oci://ghcr.io/o/a@{D1}", True, "ghcr.io", "o/a", None, D1),
        (f"oci://ghcr.io/o/a:v1@{D1}", True, "ghcr.io", "o/a", "v1", D1),
        ("oci+http://127.0.0.1:5000/team/app:1", False, "127.0.0.1:5000", "team/app", "1", None),
        ("oci://localhost:5000/a/b/c:x_y.z-1", True, "localhost:5000", "a/b/c", "x_y.z-1", None),
        ("oci://docker.io/redis:7", True, "registry-1.docker.io", "library/redis", "7", None),
        ("oci://[::1]:5000/app:1", True, "[::1]:5000", "app", "1", None),
    ],
)
def test_references(url, secure, registry, repository, tag, digest) -> None:
    ref = parse(url)
    assert (ref.secure, ref.registry, ref.repository, ref.tag, ref.digest) == (
        secure, registry, repository, tag, digest)  # fmt: skip


@pytest.mark.parametrize(
    "url",
    ["oci://ghcr.io", "oci://ghcr.io/App:1", "oci://ghcr.io/a/../b:1", "oci://ghcr.io/a:-x",
     "oci://ghcr.io/a@sha256:123", "oci://ghcr.io/a@md5:" + "a" * 32, "oci://gh cr.io/a:1",
     "oci://u:secret@ghcr.io/a:1", "http://ghcr.io/a:1"],
)  # fmt: skip
def test_malformed_references_are_bad_input_and_never_show_a_password(url) -> None:
    with pytest.raises(BadInput) as caught:
        parse(url)
    assert "secret" not in caught.value.message()


def test_a_bearer_challenge_with_commas_inside_quotes() -> None:
    kind, params = challenge(
        'Bearer realm="https://auth.example/token",service="reg.example",'
        'scope="repository:team/app:pull,push"'
    )
    assert kind == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "reg.example",
                      "scope": "repository:team/app:pull,push"}  # fmt: skip


def test_credentials_never_cross_plain_http_to_another_machine(monkeypatch) -> None:
    monkeypatch.setenv("OFFSITE_REGISTRY_PASSWORD", "pw-123")
    remote = Registry(parse("oci+http://registry.internal:5000/a:1"))
    with pytest.raises(BadInput, match="plain HTTP"):
        remote._basic_header("http://registry.internal:5000/v2/")
    local = Registry(parse("oci+http://127.0.0.1:5000/a:1"))
    assert local._basic_header("http://127.0.0.1:5000/v2/")["Authorization"].startswith("Basic ")


def test_pick_takes_the_newest_tagged_versions_whose_tags_match() -> None:
    versions = [
        Version(D1, ("1.0",), "2026-01-01T00:00:00Z"),
        Version(D2, (), "2026-03-01T00:00:00Z"),  # an untagged build: never picked
        Version(D3, ("latest", "1.1"), "2026-02-01T00:00:00Z"),
    ]
    one = pick("api", "Octo-Org", versions, ImageChoice())
    assert [(i.name, i.url) for i in one] == [("api-1.1", f"oci://ghcr.io/octo-org/api:1.1@{D3}")]
    two = pick("tools/api", "o", versions, ImageChoice(newest=5))
    assert [i.name for i in two] == ["tools-api-1.1", "tools-api-1.0"]
    assert [i.name for i in pick("api", "o", versions, ImageChoice(tags=("1.0",), newest=5))] == [
        "api-1.0"
    ]
