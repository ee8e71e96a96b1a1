"""``oci://REGISTRY/REPOSITORY[:TAG|@sha256:…]`` (HTTPS) and ``oci+http://…`` (plain HTTP,
for local registries), parsed by the distribution spec's grammar; a pure module.

``oci://ghcr.io/OWNER`` (one path component, no tag) names a GitHub owner's container
packages, not an image (``owner_of``). Elsewhere a reference without a tag means
``latest``, as ``docker pull`` has it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from offsite.errors import BadInput, MalformedURL

GHCR = "ghcr.io"
SCHEMES = {"oci": True, "oci+http": False}  # scheme → HTTPS
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_FORM = "oci://REGISTRY/REPOSITORY:TAG or @sha256:…"


@dataclass(frozen=True)
class Reference:
    secure: bool  # HTTPS (oci://), else plain HTTP (oci+http://)
    registry: str  # host[:port]
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def base(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.registry}"

    @property
    def ref(self) -> str:
        """What the manifest is fetched by: the digest when given, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def host(self) -> str:
        if self.registry.startswith("["):  # [::1]:5000
            return self.registry[1:].split("]", 1)[0].lower()
        return self.registry.split(":", 1)[0].lower()

    def url(self) -> str:
        scheme = "oci" if self.secure else "oci+http"
        tail = f":{self.tag}" if self.tag else ""
        tail += f"@{self.digest}" if self.digest else ""
        return f"{scheme}://{self.registry}/{self.repository}{tail}"

    def with_tag(self, tag: str | None, digest: str | None = None) -> Reference:
        return Reference(self.secure, self.registry, self.repository, tag, digest)


def _split(url: str) -> tuple[bool, str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise MalformedURL("image", url, _FORM)
    host, slash, path = rest.partition("/")
    if "@" in host:
        raise BadInput(
            f"{scheme}://…@{host.rsplit('@', 1)[-1]}: credentials do not go in the URL; "
            "set OFFSITE_REGISTRY_USER and OFFSITE_REGISTRY_PASSWORD"
        )
    if not slash or not _HOST.fullmatch(host):
        raise MalformedURL("image", url, _FORM)
    return SCHEMES[scheme.lower()], host, path


def parse(url: str, default_tag: str | None = "latest") -> Reference:
    """The image ``url`` names (``default_tag`` when it names no tag nor digest);
    MalformedURL (exit 2) when it names none."""
    secure, host, path = _split(url)
    name, at, digest = path.partition("@")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        if not TAG.fullmatch(tag):
            raise MalformedURL("image", url, f"a tag is letters, digits, '_', '.', '-': {_FORM}")
    if at and not DIGEST.fullmatch(digest):
        raise MalformedURL(
            "image", url, f"a digest is sha256: and 64 lower-case hex digits: {_FORM}"
        )
    if not _REPOSITORY.fullmatch(name):
        raise MalformedURL("image", url, f"a repository is lower-case path components: {_FORM}")
    if not tag and not at:
        tag = default_tag
    if host.lower() in ("docker.io", "index.docker.io"):  # what `docker pull` means by them
        host = "registry-1.docker.io"
        name = name if "/" in name else f"library/{name}"
    return Reference(secure, host, name, tag, digest or None)


def owner_of(url: str) -> str | None:
    """``oci://ghcr.io/OWNER`` (every container package of OWNER, on GitHub's container
    registry: ``github_env.container_registry``) → OWNER; else None."""
    from offsite.github import env as github_env

    try:
        secure, host, path = _split(url)
    except BadInput:
        return None
    path = path.strip("/")
    if (secure, host.lower()) != github_env.container_registry() or not path:
        return None
    return None if "/" in path or ":" in path or "@" in path else path
