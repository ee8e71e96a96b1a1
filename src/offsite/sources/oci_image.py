"""Container images from a registry (``oci://``, ``oci+http://``), kept as an OCI image
layout tar: every platform of a multi-platform index (or the one ``--platform`` picks),
every blob checked against its digest as it streams into the set.

Restoring writes the layout into a folder (each blob checked again), or pushes blobs and
manifests back into a registry under the tag the target names (the backed-up tag when
it names none): the same bytes, so the same digests. By hand: ``skopeo copy --all
--preserve-digests oci-archive:NAME.tar docker://…``, or ``docker load`` (Docker 25+).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from offsite.errors import OffsiteError, SourceFailed
from offsite.names import safe_name
from offsite.oci.answers import RegistryError
from offsite.oci.layout import (
    INDEX_FILE,
    LAYOUT,
    LAYOUT_FILE,
    BaseImage,
    Descriptor,
    LayoutError,
    Tree,
    check_folder,
    index_json,
)
from offsite.oci.reference import parse
from offsite.oci.registry import Registry
from offsite.oci.tree import resolve
from offsite.sources.base import (
    Dump,
    FullNeeded,
    Inspection,
    Part,
    Prepared,
    RestoreOptions,
    RunContext,
    Source,
    SourceOptions,
    tar_dump,
)
from offsite.sources.oci_restore import LayoutRestorer, RegistryRestorer, inspect_registry
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CHUNK
from offsite.urls import scheme_of

_BLOB = re.compile(r"blobs/sha256/([a-f0-9]{64})")


def _member(name: str, size: int = 0, folder: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o755 if folder else 0o644
    info.type = tarfile.DIRTYPE if folder else tarfile.REGTYPE
    return info


class OciImageSource(Source):
    kind = "oci-image"
    suffix = ".tar"
    diffs = True
    target_suffix = ""  # a whole-set restore writes the layout into a folder
    target_schemes = ("file", "oci", "oci+http")
    target_hint = "a folder (an OCI image layout) or oci://REGISTRY/REPOSITORY:TAG"

    def __init__(self, name: str, url: str, options: SourceOptions | None = None) -> None:
        super().__init__(name, url, options)
        self.ref = parse(url)

    @classmethod
    def default_name(cls, url: str) -> str:
        ref = parse(url)
        last = ref.repository.rsplit("/", 1)[-1]
        tail = ref.tag or (ref.digest or "")[7:19]
        return safe_name(f"{last}-{tail}", "image")

    @property
    def display(self) -> str:
        return self.ref.url()

    def _fail(self, exc: OffsiteError | LayoutError) -> SourceFailed:
        text = exc.message() if isinstance(exc, OffsiteError) else str(exc)
        return SourceFailed(self.name, text)

    def prepare(self, context: RunContext) -> Prepared:
        registry = Registry(self.ref)
        try:
            tree = resolve(registry, self.ref, self.options.platform)
        except (RegistryError, LayoutError) as exc:
            registry.close()
            raise self._fail(exc) from None
        try:
            base = self._base(context)
        except BaseException:
            registry.close()
            raise
        part = Part(self.name, type(self), lambda p: self._dump(p, registry, tree, base))
        return Prepared(parts=(part,))

    def _base(self, context: RunContext) -> BaseImage | None:
        baseline = context.baseline
        if not self.options.incremental or baseline is None:
            return None
        base = baseline.load(self.name, BaseImage.loads)
        limit = baseline.full_when_over * baseline.raw_sizes.get(self.name, 0)
        return replace(base, limit=limit) if base is not None else None

    def dump(
        self, pipeline: Pipeline, context: RunContext
    ) -> contextlib.AbstractContextManager[Dump]:
        return self.dump_prepared(pipeline, context)

    @contextlib.contextmanager
    def _dump(
        self, pipeline: Pipeline, registry: Registry, tree: Tree, base: BaseImage | None
    ) -> Iterator[Dump]:
        """The layout as a tar; against a base, its manifests and the blobs the base lacks
        (SPEC §10), with what the base holds and the image no longer names as deleted."""
        repo = self.ref.repository
        stats = {  # numbers only (SPEC §2): the digest and tag are the layout's index.json
            "platforms": len(tree.platforms), "manifests": len(tree.manifests),
            "blobs": len(tree.manifests) + len(tree.blobs), "bytes": tree.size,
        }  # fmt: skip
        index = index_json(tree.top, self.ref.tag)
        delta, extra = self._delta(tree, index, base, stats)
        if delta == "unchanged":
            registry.close()
            yield Dump(stats=lambda: dict(stats), delta=delta)
            return
        have = base.digests if base is not None else frozenset()

        def write_tar(dst: BinaryIO) -> None:
            try:
                with tarfile.open(
                    fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK
                ) as tar:
                    tar.copybufsize = CHUNK  # type: ignore[attr-defined]
                    _add(tar, LAYOUT_FILE, LAYOUT)
                    _add(tar, INDEX_FILE, index)
                    tar.addfile(_member("blobs", folder=True))
                    tar.addfile(_member("blobs/sha256", folder=True))
                    for digest, body in tree.manifests.items():
                        _add(tar, Descriptor("", digest, len(body)).path, body)
                    for d in tree.blobs.values():
                        if d.digest in have:
                            continue
                        with registry.blob(repo, d.digest, d.size) as blob:
                            try:
                                tar.addfile(_member(d.path, d.size), blob)
                            except OSError:
                                if blob.count < d.size:
                                    blob.finish()  # says it is short, and what it is
                                raise
                            blob.finish()
            except RegistryError as exc:
                raise self._fail(exc) from None
            finally:
                registry.close()

        with tar_dump(pipeline, self.name, write_tar, lambda: dict(stats), delta,
                      lambda: dict(extra)) as dump:  # fmt: skip
            yield dump

    def _delta(
        self, tree: Tree, index: bytes, base: BaseImage | None, stats: dict[str, Any]
    ) -> tuple[str, dict[str, bytes]]:
        """An incremental image: full with its index; unchanged where its ``index.json``
        is the base's; else a diff, counted in ``stats``."""
        if not self.options.incremental:
            return "", {}
        if base is None:
            return "full", {"index": BaseImage.dumps(index, tree)}
        if hashlib.sha256(index).hexdigest() == base.index_sha256:
            return "unchanged", {}
        new = [d for d in tree.blobs.values() if d.digest not in base.digests]
        stats.update(new_blobs=len(new), new_bytes=sum(d.size for d in new))
        if stats["new_bytes"] > base.limit:
            raise FullNeeded(f"the diff of {self.name} would hold {stats['new_bytes']} bytes "
                             "of new blobs, over --full-when-over of its base")  # fmt: skip
        gone = sorted(base.digests - {*tree.manifests, *tree.blobs})
        listed = "\0".join(f"blobs/sha256/{d[len('sha256:') :]}" for d in gone).encode()
        return "diff", ({"deleted": listed} if gone else {})

    # -- restoring ---------------------------------------------------------------------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        if scheme_of(target) in ("oci", "oci+http"):
            return RegistryRestorer(target, options)
        return LayoutRestorer(Path(cls.local_target(target)).expanduser(), options.force)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return (
            f"> {name}.tar && skopeo copy --all --preserve-digests oci-archive:{name}.tar "
            "docker://REGISTRY/REPOSITORY:TAG"
        )

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        if scheme_of(target) in ("oci", "oci+http"):
            return inspect_registry(target, stats)
        problems, counts = check_folder(Path(cls.local_target(target)).expanduser())
        problems += [
            f"{key}: manifest says {stats[key]}, the restored layout holds {counts[key]}"
            for key in ("manifests", "blobs", "bytes")
            if key in stats and stats[key] != counts[key] and not problems
        ]
        return Inspection(problems=problems, checks=["every blob's digest", "blobs and bytes"])


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    tar.addfile(_member(name, len(data)), io.BytesIO(data))
