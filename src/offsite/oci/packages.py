"""A GitHub owner's container images on ghcr.io, through GitHub's packages API: which
packages (by name glob), which of their versions (tagged ones, newest first, tags by
glob, the newest N). Choosing is a pure function; listing pages through ``Link``.

The token is GitHub's (``GITHUB_TOKEN`` or ``GH_TOKEN``) and needs ``read:packages``
(in Actions: ``permissions: packages: read``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from offsite.errors import BadInput, OperationFailed
from offsite.github import env as github_env
from offsite.github import gha
from offsite.names import safe_name
from offsite.oci.reference import DIGEST, GHCR, TAG, parse

PER_PAGE = 100
MAX_PAGES = 50  # of one package's versions: 5,000, newest first


@dataclass(frozen=True)
class ImageChoice:
    patterns: tuple[str, ...] = ()  # package names (all when none)
    tags: tuple[str, ...] = ()  # tags (all when none)
    newest: int = 1  # tagged versions of each package, newest first
    include: bool = False  # github://OWNER: the owner's images too (--include-images)


@dataclass(frozen=True)
class Version:
    digest: str
    tags: tuple[str, ...]
    updated: str  # ISO 8601, as GitHub gives it


@dataclass(frozen=True)
class Image:
    name: str  # the entry's name
    url: str  # oci://ghcr.io/OWNER/PACKAGE:TAG@sha256:…


def pick(
    package: str, owner: str, versions: list[Version], choice: ImageChoice,
    base: str = f"oci://{GHCR}",
) -> list[Image]:  # fmt: skip
    """The newest ``choice.newest`` versions with a tag ``choice.tags`` matches, each under
    its first such tag (sorted, so a run names it the same way every time), as images of
    the registry at ``base``."""
    chosen = []
    for v in sorted(versions, key=lambda v: v.updated, reverse=True):
        tags = sorted(
            t for t in v.tags if not choice.tags or any(fnmatch.fnmatch(t, p) for p in choice.tags)
        )
        if not tags:
            continue
        url = f"{base}/{owner.lower()}/{package}:{tags[0]}@{v.digest}"
        chosen.append(Image(safe_name(f"{package.replace('/', '-')}-{tags[0]}", "image"), url))
        if len(chosen) == choice.newest:
            break
    return chosen


def unique(found: list[Image]) -> list[Image]:
    """Each image under a name of its own: ``api/server:1`` and ``api-server:1`` would both
    be ``api-server-1``; a later one takes its digest's first 12 hex digits on top."""
    taken: set[str] = set()
    named = []
    for image in found:
        name = image.name
        if name in taken:
            name = safe_name(f"{name[:80]}-{image.url.rsplit(':', 1)[-1][:12]}", "image")
        taken.add(name)
        named.append(Image(name, image.url))
    return named


def _pages(http: Any, url: str, what: str, limit: int = MAX_PAGES) -> Iterator[list[Any]]:
    """Each page of a listing; ``Link: rel=next`` is followed on the API's own host only
    (it carries the token)."""
    import requests

    api = urlsplit(url)
    pages = 0
    while url:
        if pages == limit:
            gha.warn(f"{what}: more than {limit * PER_PAGE} items; the rest are left out")
            return
        if urlsplit(url)[:2] != api[:2]:
            raise OperationFailed(f"{what}: GitHub's next page is on another host: {url[:100]}")
        try:
            answer = http.get(url, timeout=30)
            body = answer.json() if answer.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            raise OperationFailed(f"{what}: GitHub API unreachable: {exc}") from None
        if answer.status_code == 401:
            raise BadInput(f"{what}: GitHub refused the token (401): check GITHUB_TOKEN")
        if answer.status_code == 404 or (
            answer.status_code == 403 and answer.headers.get("X-RateLimit-Remaining") != "0"
        ):
            raise BadInput(
                f"{what}: GitHub answered {answer.status_code}: the owner is unknown, or the "
                "token lacks read:packages (in Actions: permissions: packages: read)"
            )
        if answer.status_code != 200:
            raise OperationFailed(f"{what}: GitHub answered {answer.status_code}")
        if not isinstance(body, list):
            raise OperationFailed(f"{what}: GitHub's answer is not a list")
        yield body
        url = answer.links.get("next", {}).get("url", "")
        pages += 1


def images(owner: str, choice: ImageChoice) -> list[Image]:
    """Every image of ``owner``'s container packages that ``choice`` keeps, by name."""
    import requests

    token = github_env.api_token()
    if not token:
        raise BadInput(f"oci://{GHCR}/{owner}: set GITHUB_TOKEN (read:packages) to list packages")
    api = github_env.api_url()
    http = requests.Session()
    http.headers.update({
        "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    })  # fmt: skip
    what = f"oci://{GHCR}/{owner}"
    secure, registry = github_env.container_registry()
    image_base = f"{'oci' if secure else 'oci+http'}://{registry}"
    try:
        kind = "orgs" if _is_org(http, api, owner) else "users"
        base = f"{api}/{kind}/{quote(owner)}/packages"
        names = sorted(
            p["name"]
            for page in _pages(http, f"{base}?package_type=container&per_page={PER_PAGE}", what)
            for p in page
            if isinstance(p, dict) and isinstance(p.get("name"), str) and p["name"]
        )
        found: list[Image] = []
        for name in names:
            if choice.patterns and not any(fnmatch.fnmatch(name, p) for p in choice.patterns):
                continue
            found += _images_of(http, base, image_base, owner, name, choice)
        return unique(found)
    finally:
        http.close()


def _is_org(http: Any, api: str, owner: str) -> bool:
    import requests

    what = f"oci://{GHCR}/{owner}"
    try:
        answer = http.get(f"{api}/users/{quote(owner)}", timeout=30)
        body = answer.json() if answer.status_code == 200 else None
    except (requests.RequestException, ValueError) as exc:
        raise OperationFailed(f"{what}: GitHub API unreachable: {exc}") from None
    if answer.status_code == 404:
        raise BadInput(f"{what}: GitHub knows no user or organisation {owner}")
    if answer.status_code == 401:
        raise BadInput(f"{what}: GitHub refused the token (401): check GITHUB_TOKEN")
    if not isinstance(body, dict):
        raise OperationFailed(f"{what}: GitHub answered {answer.status_code} for the owner")
    return body.get("type") == "Organization"


def _images_of(
    http: Any, api: str, image_base: str, owner: str, name: str, choice: ImageChoice
) -> list[Image]:
    """The images ``choice`` keeps of one package; none, with a warning, for a package
    whose name is no image reference offsite can use."""
    try:
        parse(f"{image_base}/{owner.lower()}/{name}:latest")
    except BadInput:
        gha.warn(f"{image_base}/{owner}/{name[:100]}: not an image reference offsite can use")
        return []
    url = f"{api}/container/{quote(name, safe='')}/versions?per_page={PER_PAGE}"
    versions: list[Version] = []
    for page in _pages(http, url, f"oci://{GHCR}/{owner}/{name}"):
        versions += [found for v in page if (found := _version(v)) is not None]
        chosen = pick(name, owner, versions, choice, image_base)
        if len(chosen) == choice.newest:  # newest first: no need to read further
            return chosen
    return pick(name, owner, versions, choice, image_base)


def _version(v: Any) -> Version | None:
    """A package version from GitHub's answer; None for one offsite cannot use."""
    if not isinstance(v, dict):
        return None
    meta = v.get("metadata")
    container = meta.get("container") if isinstance(meta, dict) else None
    tags = container.get("tags") if isinstance(container, dict) else None
    digest, updated = v.get("name"), v.get("updated_at")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest) or not isinstance(tags, list):
        return None
    usable = tuple(t for t in tags if isinstance(t, str) and TAG.fullmatch(t))
    return Version(digest, usable, str(updated or ""))
