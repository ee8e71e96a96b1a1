"""The OCI image layout a stored ``oci-image`` entry holds, and the manifests it walks.

A layout tar is ``oci-layout``, ``index.json`` (one descriptor: the image or index backed
up, annotated with its tag), then ``blobs/sha256/<hex>``: every manifest first, top down,
then configs and layers once each. That order lets a restore into a registry keep the few
small manifests in memory and stream every other blob straight to the registry.

Everything here reads what a registry or a stored entry says, so every descriptor is
checked before it names a file: a digest is ``sha256:`` and 64 hex digits, a size is a
non-negative integer, a manifest is at most 4 MiB of JSON (distribution's own limit).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offsite.oci.reference import DIGEST
from offsite.stream.digest import file_sha256

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (*INDEXES, OCI_MANIFEST, DOCKER_MANIFEST)
MAX_MANIFEST = 4 << 20
MAX_MANIFESTS = 1000  # in one image: an index of indexes cannot hold the run's memory
MAX_MANIFEST_BYTES = 64 << 20
LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
REF_NAME = "org.opencontainers.image.ref.name"


class LayoutError(ValueError):
    """What is wrong with a manifest or a layout, in one line."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        return f"blobs/sha256/{self.digest.split(':', 1)[1]}"

    @property
    def platform_name(self) -> str | None:
        p = self.platform or {}
        if not isinstance(p.get("os"), str) or not isinstance(p.get("architecture"), str):
            return None
        variant = p.get("variant")
        tail = f"/{variant}" if isinstance(variant, str) and variant else ""
        return f"{p['os']}/{p['architecture']}{tail}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        out["size"] = self.size
        return out


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(obj: Any, where: str) -> Descriptor:
    """A descriptor from untrusted JSON, checked."""
    if not isinstance(obj, dict):
        raise LayoutError(f"{where}: a descriptor is not an object")
    media, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise LayoutError(f"{where}: digest {str(digest)[:80]!r} is not sha256: and 64 hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise LayoutError(f"{where}: blob {digest} has no valid size")
    if not isinstance(media, str):
        media = ""
    platform = obj.get("platform")
    return Descriptor(media, digest, size, platform if isinstance(platform, dict) else None)


def parse_manifest(body: bytes, where: str) -> dict[str, Any]:
    if len(body) > MAX_MANIFEST:
        raise LayoutError(f"{where}: a manifest larger than 4 MiB")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise LayoutError(f"{where}: a manifest that is not JSON") from None
    if not isinstance(doc, dict):
        raise LayoutError(f"{where}: a manifest that is not a JSON object")
    return doc


def media_type_of(doc: dict[str, Any], given: str) -> str:
    """The manifest's media type: its own field, else what it was served or described as."""
    own = doc.get("mediaType")
    if isinstance(own, str) and own:
        return own
    if doc.get("schemaVersion") == 1:
        return "application/vnd.docker.distribution.manifest.v1+json"
    if given in MANIFESTS:
        return given
    return OCI_INDEX if "manifests" in doc else OCI_MANIFEST


def children(
    media_type: str, doc: dict[str, Any], where: str
) -> tuple[list[Descriptor], list[Descriptor]]:
    """What a manifest refers to, as (manifests, other blobs): an index's manifests; an
    image's config, then its layers."""
    if media_type in INDEXES:
        found = doc.get("manifests")
        if not isinstance(found, list):
            raise LayoutError(f"{where}: an index without manifests")
        return [descriptor(d, where) for d in found], []
    if media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise LayoutError(f"{where}: an image manifest without layers")
        return [], [descriptor(doc.get("config"), where), *(descriptor(d, where) for d in layers)]
    if "manifest.v1" in media_type:
        raise LayoutError(
            f"{where}: a Docker schema 1 manifest (deprecated, unsigned content): "
            "push the image again with a current client"
        )
    raise LayoutError(f"{where}: media type {media_type[:80]!r} is not an image or an index")


@dataclass
class Tree:
    """An image's manifests (held whole: they are small) and its other blobs, in order."""

    top: Descriptor
    manifests: dict[str, bytes] = field(default_factory=dict)  # digest → body, top down
    blobs: dict[str, Descriptor] = field(default_factory=dict)  # configs and layers, once
    platforms: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.manifests.values()) + sum(
            d.size for d in self.blobs.values()
        )


def count_manifests(count: int, size: int, where: str) -> None:
    """Refuse an image of more manifests, or more manifest bytes, than any image has."""
    if count > MAX_MANIFESTS or size > MAX_MANIFEST_BYTES:
        raise LayoutError(
            f"{where}: more than {MAX_MANIFESTS} manifests or 64 MiB of them: not an image "
            "offsite keeps"
        )


def index_json(top: Descriptor, tag: str | None) -> bytes:
    entry = top.to_json()
    if tag:
        entry["annotations"] = {REF_NAME: tag}
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    return json.dumps(doc, indent=2).encode()


def read_index(body: bytes) -> tuple[Descriptor, str | None]:
    """The one image an ``index.json`` of offsite's names, and its tag."""
    doc = parse_manifest(body, INDEX_FILE)
    found = doc.get("manifests")
    if not isinstance(found, list) or len(found) != 1:
        count = len(found) if isinstance(found, list) else 0
        raise LayoutError(f"{INDEX_FILE}: names {count} images, not one")
    top = descriptor(found[0], INDEX_FILE)
    notes = found[0].get("annotations") if isinstance(found[0], dict) else None
    tag = notes.get(REF_NAME) if isinstance(notes, dict) else None
    return top, tag if isinstance(tag, str) else None


def check_folder(folder: Path) -> tuple[list[str], dict[str, int]]:
    """Problems in a layout folder (every blob's digest and size, every reference of the
    image present), and what it holds: manifests, blobs and bytes."""
    problems: list[str] = []
    counts = {"manifests": 0, "blobs": 0, "bytes": 0}
    try:
        if (folder / LAYOUT_FILE).read_bytes().strip() != LAYOUT:
            problems.append(f"{LAYOUT_FILE}: not version 1.0.0")
        top, _tag = read_index((folder / INDEX_FILE).read_bytes())
    except (OSError, LayoutError) as exc:
        return [str(exc)], counts
    seen: set[str] = set()
    todo = [(top, True)]
    while todo:
        d, manifest = todo.pop(0)
        if d.digest in seen:
            continue
        seen.add(d.digest)
        path = folder / d.path
        if not path.is_file() or path.is_symlink():
            problems.append(f"blob {d.digest} is missing")
            continue
        hexa, size = file_sha256(str(path))
        digest = f"sha256:{hexa}"
        if digest != d.digest or size != d.size:
            problems.append(f"blob {d.digest} does not match its digest or size")
            continue
        counts["blobs"] += 1
        counts["bytes"] += size
        if manifest:
            counts["manifests"] += 1
            try:
                if size > MAX_MANIFEST:  # its size is checked: refused before it is read
                    raise LayoutError(f"{d.digest}: a manifest larger than 4 MiB")
                doc = parse_manifest(path.read_bytes(), d.digest)
                more, blobs = children(media_type_of(doc, d.media_type), doc, d.digest)
            except LayoutError as exc:
                problems.append(str(exc))
                continue
            todo += [(m, True) for m in more] + [(b, False) for b in blobs]
    stray = (
        {f"sha256:{name}" for name in os.listdir(folder / "blobs" / "sha256")} - seen
        if (folder / "blobs" / "sha256").is_dir()
        else set()
    )
    problems += [f"blob {d} is in no manifest" for d in sorted(stray)]
    return problems, counts


INDEX_HEADER = "offsite-oci-index/1"
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class BaseImage:
    """What an incremental image's entry keeps as its index (SPEC §10), read back from its
    base: the SHA-256 of its ``index.json`` and the digest of every manifest and blob."""

    index_sha256: str
    digests: frozenset[str]
    limit: float = float("inf")  # the most a diff of it may hold (--full-when-over)

    @classmethod
    def loads(cls, data: bytes) -> BaseImage:
        lines = data.decode("ascii").splitlines()
        if len(lines) < 2 or lines[0] != INDEX_HEADER or not lines[1].startswith("index "):
            raise ValueError(f"not an {INDEX_HEADER} index")
        if not all(_DIGEST.match(d) for d in lines[2:]):
            raise ValueError("a line that is not a sha256 digest")
        return cls(lines[1][len("index ") :], frozenset(lines[2:]))

    @staticmethod
    def dumps(index: bytes, tree: Tree) -> bytes:
        digests = sorted({*tree.manifests, *tree.blobs})
        lines = [INDEX_HEADER, f"index {hashlib.sha256(index).hexdigest()}", *digests]
        return ("\n".join(lines) + "\n").encode()
