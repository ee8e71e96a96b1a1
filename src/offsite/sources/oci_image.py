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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from offsite.errors import BadInput, OffsiteError, RestoreFailed, SourceFailed, TargetNotEmpty
from offsite.names import safe_name
from offsite.oci.answers import RegistryError
from offsite.oci.layout import (
    INDEX_FILE,
    LAYOUT,
    LAYOUT_FILE,
    MAX_MANIFEST,
    Descriptor,
    LayoutError,
    Tree,
    check_folder,
    children,
    count_manifests,
    digest_of,
    index_json,
    media_type_of,
    parse_manifest,
    read_index,
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
from offsite.sources.files import FolderRestorer
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CHUNK, Readable
from offsite.urls import scheme_of

_BLOB = re.compile(r"blobs/sha256/([a-f0-9]{64})")


def _member(name: str, size: int = 0, folder: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o755 if folder else 0o644
    info.type = tarfile.DIRTYPE if folder else tarfile.REGTYPE
    return info


INDEX_HEADER = "offsite-oci-index/1"
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class BaseImage:
    """What an incremental image's base entry held (SPEC §10): its ``index.json``'s
    SHA-256 and the digest of every manifest and blob."""

    index_sha256: str
    digests: frozenset[str]

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
        if self.name not in baseline.raw_sizes:
            return None
        try:
            return BaseImage.loads(baseline.read(self.name, "index"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FullNeeded(f"the index of {self.name} in set {baseline.set_id} is not "
                             f"readable ({exc})") from None  # fmt: skip

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
            return _inspect_registry(target, stats)
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


def _inspect_registry(target: str, stats: Mapping[str, Any]) -> Inspection:
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
        self.ref = ref
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
