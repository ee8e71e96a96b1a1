"""Source kinds, chosen by URL scheme for dumping and by manifest kind for restoring."""

from __future__ import annotations

from offsite.errors import BadInput, UnknownKind, UnknownScheme
from offsite.sources.base import Kind, Source, SourceOptions
from offsite.sources.command import CommandSource
from offsite.sources.files import FilesSource
from offsite.sources.git import GitSource
from offsite.sources.git_lfs import GitLfsKind
from offsite.sources.github_metadata import GitHubMetadataSource
from offsite.sources.mongodb import MongoSource
from offsite.sources.mysql import MysqlSource
from offsite.sources.oci_image import OciImageSource
from offsite.sources.postgres import PgBaseSource, PgGlobalsSource, PostgresSource
from offsite.sources.redis import RedisSource
from offsite.sources.sqlite import SqliteSource
from offsite.urls import redact, scheme_of

_BY_SCHEME: dict[str, type[Source]] = {
    "sqlite": SqliteSource,
    "file": FilesSource,
    "postgresql": PostgresSource,
    "postgres": PostgresSource,
    "mysql": MysqlSource,
    "mariadb": MysqlSource,
    "redis": RedisSource,
    "rediss": RedisSource,
    "mongodb": MongoSource,
    "mongodb+srv": MongoSource,
    "oci": OciImageSource,
    "oci+http": OciImageSource,
}
_KINDS: tuple[type[Kind], ...] = (
    SqliteSource,
    FilesSource,
    CommandSource,
    PostgresSource,
    PgGlobalsSource,
    PgBaseSource,
    MysqlSource,
    RedisSource,
    MongoSource,
    GitSource,
    GitLfsKind,
    GitHubMetadataSource,
    OciImageSource,
)
_BY_KIND: dict[str, type[Kind]] = {cls.kind: cls for cls in _KINDS}


def from_url(url: str, name: str | None = None, options: SourceOptions | None = None) -> Source:
    """The source ``url`` names, complete: ``options`` are all it will ever know of the run."""
    scheme = scheme_of(url)
    cls = _BY_SCHEME.get(scheme)
    if cls is None and (scheme == "github" or scheme.startswith("git+")):
        cls = GitSource
    if cls is PostgresSource and options is not None and options.physical:
        cls = PgBaseSource
    elif options is not None and options.physical:
        raise BadInput(f"--physical is for a postgresql:// source, not {redact(url)}")
    if cls is None:
        known = ", ".join(sorted([*_BY_SCHEME, "git+<git URL>", "github"]))
        raise UnknownScheme("source", scheme, redact(url), known)
    return cls(name or cls.default_name(url), url, options)


def from_exec(name: str, command: str) -> Source:
    return CommandSource(name, command)


def kind_class(kind: str) -> type[Kind]:
    cls = _BY_KIND.get(kind)
    if cls is None:
        raise UnknownKind(kind, ", ".join(sorted(_BY_KIND)))
    return cls
