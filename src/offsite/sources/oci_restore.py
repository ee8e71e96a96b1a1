"""Restoring a container image (``oci_image``'s entries): into a folder as an OCI image
layout, each blob checked (``LayoutRestorer``), or into a registry under a tag
(``RegistryRestorer``: blobs pushed as they stream, manifests held and put on commit, the
tag last); a diff over its base either way (SPEC §10). ``inspect_registry`` is a drill's
look at what a registry holds."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Mapping
from typing import Any

from offsite.errors import BadInput, RestoreFailed, TargetNotEmpty
from offsite.oci.answers import RegistryError
from offsite.oci.layout import (
    INDEX_FILE,
    LAYOUT,
    LAYOUT_FILE,
    MAX_MANIFEST,
    Descriptor,
    LayoutError,
    check_folder,
    children,
    count_manifests,
    digest_of,
    media_type_of,
    parse_manifest,
    read_index,
)
from offsite.oci.reference import parse
from offsite.oci.registry import Registry
from offsite.oci.tree import resolve
from offsite.sources.base import Inspection, RestoreOptions
from offsite.sources.files import FolderRestorer
from offsite.sources.restorer import Restorer
from offsite.stream.readers import CHUNK, Readable

_BLOB = re.compile(r"blobs/sha256/([a-f0-9]{64})")


def inspect_registry(target: str, stats: Mapping[str, Any]) -> Inspection:
    ref = parse(target, default_tag=None)
    if ref.tag is None:
        problem = f"a drill into a registry checks a tag: name it ({ref.url()}:TAG)"
        return Inspection(problems=[problem], checks=["the image in the registry"])
    registry = Registry(ref)
    try:
        tree = resolve(registry, ref, None)
        missing = [
            d for d in tree.blobs.values() if not registry.has_blob(ref.repository, d.digest)
        ]
    except (RegistryError, LayoutError) as exc:
        text = exc.message() if isinstance(exc, RegistryError) else str(exc)
        return Inspection(problems=[text], checks=["the image in the registry"])
    finally:
        registry.close()
    problems = [f"blob {d.digest} is missing from the registry" for d in missing]
    found = {"manifests": len(tree.manifests), "blobs": len(tree.manifests) + len(tree.blobs),
             "bytes": tree.size}  # fmt: skip
    problems += [
        f"{key}: manifest says {stats[key]}, the registry holds {found[key]}"
        for key in found
        if key in stats and stats[key] != found[key]
    ]
    return Inspection(problems=problems, checks=["manifest digests", "every blob present"])


class LayoutRestorer(FolderRestorer):
    """The layout into a folder (``safetar``'s rules), every blob checked before commit."""

    def write(self, stream: Readable) -> None:
        super().write(stream)
        self._check()

    def overlay(self, stream: Readable | None, companions: dict[str, bytes]) -> None:
        """A diff's manifests and new blobs over its base's layout (SPEC §10)."""
        super().overlay(stream, companions)
        self._check()

    def _check(self) -> None:
        assert self._staged is not None
        problems, _ = check_folder(self._staged)
        if problems:
            raise RestoreFailed(self.target.name, f"the image layout is damaged: {problems[0]}")


class RegistryRestorer(Restorer):
    """Pushes the layout's blobs as they stream (the registry checks each digest; nothing
    refers to them yet), holds its manifests, and puts them on ``commit``: the children
    by digest first, the tag last, so the tag never names a half-pushed image."""

    def __init__(self, target: str, options: RestoreOptions) -> None:
        ref = parse(target, default_tag=None)
        if ref.digest:
            raise BadInput(
                f"restore an image into a tag (oci://REGISTRY/REPOSITORY:TAG), not {target}"
            )
        self.ref = self.asked = ref
        self.force = options.force
        self.location = ref.url()
        self.registry = Registry(ref)
        self.existing = self.registry.has_manifest(ref.repository, ref.tag) if ref.tag else None
        self.top: Descriptor | None = None
        self.wanted: dict[str, str] = {}  # manifest digest → media type, as described
        self.needed: dict[str, int] = {}  # other blobs → size
        self.manifests: dict[str, tuple[bytes, str]] = {}  # in arrival order, top down

    def _fail(self, why: str) -> RestoreFailed:
        return RestoreFailed(self.ref.repository, why)

    def write(self, stream: Readable) -> None:
        try:
            with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK) as tar:  # type: ignore[call-overload]
                for member in tar:
                    self._member(tar, member)
        except tarfile.TarError as exc:
            raise self._fail(f"not a readable image layout: {exc}") from None
        except LayoutError as exc:
            raise self._fail(str(exc)) from None
        except RegistryError as exc:
            raise self._fail(exc.message()) from None
        if self.top is None or set(self.wanted) - set(self.manifests):
            raise self._fail("the layout lacks its index or a manifest")
        missing = [d for d in self.needed if not self.registry.has_blob(self.ref.repository, d)]
        if missing:
            raise self._fail(f"blob {missing[0]} is in neither the backup nor the registry")

    def overlay(self, stream: Readable | None, companions: dict[str, bytes]) -> None:
        """A diff over its base (SPEC §10): the base's blobs are pushed already; the diff
        names the image (its index and every manifest) and pushes the blobs it adds."""
        self.top, self.wanted, self.needed, self.manifests = None, {}, {}, {}
        if stream is None:
            raise self._fail("an image diff without its layout")
        self.overlaid = False  # the diff's image: the tag check holds for it, and its tag
        self.ref, self.location = self.asked, self.asked.url()
        if self.ref.tag:
            self.existing = self.registry.has_manifest(self.ref.repository, self.ref.tag)
        self.write(stream)

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name[2:] if member.name.startswith("./") else member.name
        if member.isdir() and name.rstrip("/") in ("blobs", "blobs/sha256"):
            return
        if not member.isreg():
            raise self._fail(f"unexpected member {name[:80]!r} in the layout")
        data = tar.extractfile(member)
        assert data is not None
        if name == LAYOUT_FILE:
            if data.read(1024).strip() != LAYOUT:
                raise self._fail("not an OCI image layout 1.0.0")
            return
        if name == INDEX_FILE:
            self.top, tag = read_index(data.read(MAX_MANIFEST + 1))
            self._tagged(tag)
            self.wanted[self.top.digest] = self.top.media_type
            return
        found = _BLOB.fullmatch(name)
        if found is None:
            raise self._fail(f"unexpected member {name[:80]!r} in the layout")
        digest = f"sha256:{found.group(1)}"
        if digest in self.wanted:
            body = data.read(MAX_MANIFEST + 1)
            if digest_of(body) != digest:
                raise self._fail(f"manifest {digest} does not match its digest")
            doc = parse_manifest(body, digest)
            media = media_type_of(doc, self.wanted[digest])
            manifests, blobs = children(media, doc, digest)
            for d in manifests:
                self.wanted.setdefault(d.digest, d.media_type)
            held = sum(len(b) for b, _ in self.manifests.values()) + len(body)
            count_manifests(len(self.wanted), held, digest)
            for d in blobs:
                self.needed[d.digest] = d.size
            self.manifests[digest] = (body, media)
        elif digest in self.needed:
            size = self.needed[digest]
            if member.size != size:
                raise self._fail(f"blob {digest} has {member.size} bytes, not {size}")
            if not self.registry.has_blob(self.ref.repository, digest):
                self.registry.push_blob(self.ref.repository, digest, member.size, data)
        else:
            raise self._fail(f"blob {digest} is in no manifest the layout named before it")

    def _tagged(self, tag: str | None) -> None:
        """The tag to restore into (the target's, else the one backed up), refused when it
        names another image, unless ``--force``: before any blob is pushed."""
        assert self.top is not None
        if self.ref.tag is None:
            if not tag:
                raise BadInput(
                    f"the image was backed up by digest: name a tag, {self.location}:TAG"
                )
            self.ref = self.ref.with_tag(parse(f"oci://x/y:{tag}").tag)
            self.location = self.ref.url()
            self.existing = self.registry.has_manifest(self.ref.repository, self.ref.tag or "")
        if self.existing and self.existing != self.top.digest and not self.force:
            if self.overlaid:  # a diff's base: the diff's own image is what the tag takes
                return
            raise TargetNotEmpty(self.location)

    def commit(self) -> None:
        assert self.top is not None
        repo, tag = self.ref.repository, self.ref.tag or ""
        try:
            for digest, (body, media) in reversed(list(self.manifests.items())):
                put = self.registry.put_manifest(
                    repo, tag if digest == self.top.digest else digest, body, media
                )
                if put != digest:
                    raise self._fail(f"the registry stored manifest {digest} as {put}")
        except RegistryError as exc:
            raise self._fail(exc.message()) from None
        finally:
            self.registry.close()

    def discard(self) -> None:
        self.registry.close()  # pushed blobs are unreferenced: the registry's GC takes them
