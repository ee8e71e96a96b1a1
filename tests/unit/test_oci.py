"""Image references, registry challenges and the choice of an owner's versions: pure."""

from __future__ import annotations

import pytest

from offsite.errors import BadInput
from offsite.oci.auth import challenge
from offsite.oci.packages import ImageChoice, Version, pick
from offsite.oci.reference import parse
from offsite.oci.registry import Registry

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
        remote.auth.basic_header("http://registry.internal:5000/v2/")
    local = Registry(parse("oci+http://127.0.0.1:5000/a:1"))
    assert local.auth.basic_header("http://127.0.0.1:5000/v2/")["Authorization"].startswith(
        "Basic "
    )


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


def test_credentials_go_to_the_registry_they_are_for() -> None:
    from offsite.oci.auth import credentials_for

    env = {"OFFSITE_REGISTRY_USER": "me", "OFFSITE_REGISTRY_PASSWORD": "pw", "GITHUB_TOKEN": "gh"}
    assert credentials_for("ghcr.io", env).origin == "GITHUB_TOKEN"  # type: ignore[union-attr]
    assert credentials_for("registry.example", env).password == "pw"  # type: ignore[union-attr]
    scoped = {**env, "OFFSITE_REGISTRY_HOST": "registry.example"}
    assert credentials_for("registry-1.docker.io", scoped) is None
    assert credentials_for("registry.example", scoped).password == "pw"  # type: ignore[union-attr]
    ghes = {"GITHUB_TOKEN": "gh", "OFFSITE_CONTAINER_REGISTRY": "containers.ghe.example"}
    assert credentials_for("ghcr.io", ghes) is None
    assert credentials_for("containers.ghe.example", ghes).password == "gh"  # type: ignore[union-attr]


def test_a_token_service_on_another_site_never_gets_the_password(monkeypatch) -> None:
    from offsite.oci.answers import RegistryError

    monkeypatch.setenv("OFFSITE_REGISTRY_PASSWORD", "pw-123")
    registry = Registry(parse("oci://registry.example.com/a:1"))
    with pytest.raises(RegistryError, match="another site"):
        registry.auth.authorize('Bearer realm="https://collector.example.net/token"', "s", "")
    hub = Registry(parse("oci://docker.io/library/redis:7"))  # registry-1.docker.io
    with pytest.raises(RegistryError, match="another site"):
        hub.auth.authorize('Bearer realm="https://auth.evil.io/token"', "s", "")


class _Answer:
    def __init__(self, body: object, next_url: str = "") -> None:
        self.status_code, self.headers, self._body = 200, {}, body
        self.links = {"next": {"url": next_url}} if next_url else {}

    def json(self) -> object:
        return self._body


def test_github_pages_are_followed_on_the_api_host_only() -> None:
    from offsite.errors import OperationFailed
    from offsite.oci.packages import _pages

    class Http:
        asked: list[str] = []

        def get(self, url: str, timeout: float) -> _Answer:
            self.asked.append(url)
            return _Answer([{"name": "a"}], "http://elsewhere.example/page2")

    http = Http()
    pages = _pages(http, "https://api.github.com/orgs/o/packages", "oci://ghcr.io/o")
    assert next(pages) == [{"name": "a"}]
    with pytest.raises(OperationFailed, match="another host"):
        next(pages)
    assert http.asked == ["https://api.github.com/orgs/o/packages"]


def test_odd_versions_from_github_are_left_out_and_names_kept_apart() -> None:
    from offsite.oci.packages import Image, _version, unique

    assert _version({"name": D1, "metadata": {"container": "x"}}) is None
    assert _version([1]) is None
    assert _version({"name": "../x", "metadata": {"container": {"tags": ["1"]}}}) is None
    assert _version({"name": D1, "metadata": {"container": {"tags": ["1", 2, "../x"]}}}).tags == (
        "1",
    )  # type: ignore[union-attr]
    named = unique([Image("api-server-1", f"oci://ghcr.io/o/api/server:1@{D1}"),
                    Image("api-server-1", f"oci://ghcr.io/o/api-server:1@{D2}")])  # fmt: skip
    assert [i.name for i in named] == ["api-server-1", "api-server-1-bbbbbbbbbbbb"]
