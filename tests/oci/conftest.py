"""Real registries (distribution 2.8, Debian's docker-registry) started for these tests:
open, with basic auth, and with the token flow; images pushed into them by skopeo."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakegithub import TOKEN, FakeGitHub
from tests.oci.images import Image, TokenService, build, push
from tests.servers import OciRegistry


def _needs_tools() -> None:
    for tool in ("docker-registry", "skopeo"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (scripts/bootstrap.sh installs it)")


@pytest.fixture(scope="session")
def registry() -> Iterator[OciRegistry]:
    _needs_tools()
    server = OciRegistry()
    yield server
    server.close()


@pytest.fixture(scope="session")
def registry_basic() -> Iterator[OciRegistry]:
    _needs_tools()
    server = OciRegistry(auth="basic")
    yield server
    server.close()


@pytest.fixture(scope="session")
def token_registry() -> Iterator[tuple[OciRegistry, TokenService]]:
    _needs_tools()
    service = TokenService("pusher", "tok-s3cr3t pass")
    server = OciRegistry(auth="token", token_service=service)
    yield server, service
    server.close()
    service.close()


@pytest.fixture(scope="session")
def image(registry: OciRegistry) -> Iterator[Image]:
    """A two-platform image (linux/amd64, linux/arm64) at team/app:1.0."""
    folder = Path(tempfile.mkdtemp(prefix="offsite-image-"))
    made = build(folder / "layout", tag="1.0")
    push(made, registry, "team/app")
    yield made
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    yield fake
    fake.close()
