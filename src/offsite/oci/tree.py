"""Which manifests and blobs make an image: fetched from a registry top-down, each manifest
checked by digest and size, every platform of an index or the one ``--platform`` picks."""

from __future__ import annotations

from typing import Any

from offsite.oci.answers import RegistryError
from offsite.oci.layout import (
    INDEXES,
    MAX_MANIFEST,
    Descriptor,
    LayoutError,
    Tree,
    children,
    count_manifests,
    media_type_of,
    parse_manifest,
)
from offsite.oci.reference import Reference
from offsite.oci.registry import Registry


def platform_matches(found: str | None, wanted: str) -> bool:
    """``linux/arm64`` picks ``linux/arm64`` and ``linux/arm64/v8``; a variant picks itself."""
    if found is None:
        return False
    return found == wanted or (wanted.count("/") == 1 and found.startswith(wanted + "/"))


def resolve(registry: Registry, ref: Reference, platform: str | None) -> Tree:
    """Every manifest of the image (fetched and checked by digest and size), and its other
    blobs; at most ``MAX_MANIFESTS`` manifests."""
    repo = ref.repository
    body, media, digest = registry.manifest(repo, ref.ref)
    where = f"{ref.url()}"
    doc = parse_manifest(body, where)
    top = Descriptor(media_type_of(doc, media), digest, len(body))
    if platform and top.media_type in INDEXES:
        subs, _ = children(top.media_type, doc, where)
        chosen = [d for d in subs if platform_matches(d.platform_name, platform)]
        if not chosen:
            have = ", ".join(sorted({d.platform_name or "?" for d in subs}))
            raise RegistryError(f"{where}: no platform {platform} (it has {have})")
        body, media, digest = registry.manifest(repo, chosen[0].digest)
        doc = parse_manifest(body, chosen[0].digest)
        top = Descriptor(media_type_of(doc, chosen[0].media_type), digest, len(body))
    elif platform:
        _check_platform(registry, ref, top, doc, platform)
    tree = Tree(top)
    todo: list[tuple[Descriptor, bytes, dict[str, Any]]] = [(top, body, doc)]
    size = len(body)
    while todo:
        d, body, doc = todo.pop(0)
        tree.manifests[d.digest] = body
        manifests, blobs = children(d.media_type, doc, d.digest)
        for child in manifests:
            if d is top and child.platform_name and child.platform_name != "unknown/unknown":
                tree.platforms.append(child.platform_name)
            if child.digest in tree.manifests or any(t[0].digest == child.digest for t in todo):
                continue
            count_manifests(len(tree.manifests) + len(todo) + 1, size + child.size, where)
            got, media, digest = registry.manifest(repo, child.digest)
            if len(got) != child.size:
                raise LayoutError(f"{where}: manifest {child.digest} is not the size named")
            size += len(got)
            child_doc = parse_manifest(got, child.digest)
            kind = media_type_of(child_doc, child.media_type)
            todo.append((Descriptor(kind, digest, len(got), child.platform), got, child_doc))
        for blob in blobs:
            tree.blobs.setdefault(blob.digest, blob)
    return tree


def _check_platform(
    registry: Registry, ref: Reference, top: Descriptor, doc: dict[str, Any], platform: str
) -> None:
    """``--platform`` for an image of one platform: its config must say that platform."""
    _, blobs = children(top.media_type, doc, ref.url())
    config = blobs[0]
    if config.size > MAX_MANIFEST:
        raise LayoutError(f"{ref.url()}: a config larger than 4 MiB")
    with registry.blob(ref.repository, config.digest, config.size) as blob:
        data = b""
        while len(data) < config.size and (chunk := blob.read(config.size - len(data))):
            data += chunk
        blob.finish()
    found = parse_manifest(data, config.digest)
    named = Descriptor("", config.digest, 0, found).platform_name
    if not platform_matches(named, platform):
        raise RegistryError(f"{ref.url()}: an image for {named or 'no platform'}, not {platform}")
