"""The one selection path: what backup, requirements and plan each cover, from the same
request; sources built once, complete, and immutable."""

from __future__ import annotations

from pathlib import Path

import pytest

from offsite.config import parse
from offsite.errors import BadInput
from offsite.selection import Request, select, units
from offsite.shards import share
from offsite.sources import Prepared, SourceOptions, from_url
from offsite.sources.files import FilesSource
from offsite.sources.git import GitSource
from offsite.sources.postgres import PgGlobalsSource, PostgresSource
from offsite.sources.repo_extras import RepoExtras

FILE = """
sources:
  - {name: shop, url: "${DATABASE_URL}", groups: [database], pg-globals: true}
  - {name: uploads, path: /srv/uploads, exclude: ["*.tmp"], groups: [files]}
  - {name: settings, exec: "cat /etc/app.conf", groups: [files]}
  - {name: app, url: "git+https://git.example.com/app.git", groups: [code]}
"""
ENV = {"DATABASE_URL": "postgresql://u:secret@db/shop"}


def names(request: Request, env: dict[str, str] | None = None) -> list[str]:
    return [n for s in select(request, ENV if env is None else env) for n in s.entry_names()]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(Request(urls=("/srv/a",)), ["a"], id="a plain path"),
        pytest.param(Request(names=(("db", "sqlite:///x.db"),)), ["db"], id="--name"),
        pytest.param(Request(execs=(("out", "echo hi"),)), ["out"], id="--exec"),
        pytest.param(
            Request(urls=("postgresql://u@h/shop",), pg_globals=True),
            ["shop", "shop-globals"],
            id="--pg-globals",
        ),
        pytest.param(
            Request(urls=("git+https://h/app.git",), extras=RepoExtras(lfs=True)),
            ["app", "app-lfs"],
            id="--include-lfs: the repository's second entry",
        ),
        pytest.param(
            Request(urls=("git+https://h/app.git",), extras=RepoExtras(wiki=True)),
            ["app", "app-wiki"],
            id="--include-wiki",
        ),
        pytest.param(
            Request(config=parse(FILE, "offsite.yml")),
            ["shop", "shop-globals", "uploads", "settings", "app"],
            id="a whole file, its pg-globals and exec included",
        ),
        pytest.param(
            Request(config=parse(FILE, "offsite.yml"), only=("files",)),
            ["uploads", "settings"],
            id="--only a group",
        ),
        pytest.param(
            Request(urls=("/srv/a",), config=parse(FILE, "offsite.yml"), only=("code",)),
            ["a", "app"],
            id="arguments first, then the file's",
        ),
    ],
)
def test_what_a_request_covers(request_: Request, expected: list[str]) -> None:
    assert names(request_) == expected


def test_shards_are_disjoint_complete_and_need_only_their_own_secrets() -> None:
    config = parse(FILE, "offsite.yml")
    everything = units(Request(config=config)).names
    seen: list[str] = []
    for i in (1, 2, 3):
        request = Request(config=config, shard=(i, 3))
        mine = share(everything, i, 3)
        env = ENV if "shop" in mine else {}  # a share without shop needs no DATABASE_URL
        got = [s.name for s in select(request, env) if not s.name.endswith("-globals")]
        assert got == [n for n in everything if n in mine]
        seen += got
    assert sorted(seen) == sorted(everything)


def test_a_missing_secret_of_a_selected_source_is_one_clear_error() -> None:
    with pytest.raises(BadInput, match=r"DATABASE_URL\} is not set"):
        select(Request(config=parse(FILE, "offsite.yml"), only=("database",)), {})


def test_options_reach_every_source_and_the_files_own_excludes_add_to_them() -> None:
    request = Request(
        config=parse(FILE, "offsite.yml"),
        excludes=("*.log",),
        mirror_cache=Path("/cache"),
        extras=RepoExtras(lfs=True),
    )
    built = {s.name: s for s in select(request, ENV)}
    assert isinstance(built["uploads"], FilesSource)
    assert built["uploads"].options.excludes == ("*.log", "*.tmp")
    app = built["app"]
    assert isinstance(app, GitSource)
    assert app.options.mirror_cache == Path("/cache") and app.options.lfs
    wiki = app.wiki()
    assert wiki.options.mirror_cache == Path("/cache") and wiki.options.optional
    assert not wiki.options.lfs
    assert isinstance(built["shop"], PostgresSource)
    assert isinstance(built["shop-globals"], PgGlobalsSource)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (Request(only=("x",)), "--only selects sources of a --config file"),
        (Request(urls=("/a",), shard=(1, 2)), "--shard takes a share"),
        (Request(urls=("/a",), pg_globals=True), "--pg-globals needs a postgresql://"),
        (Request(urls=("/a",), extras=RepoExtras(wiki=True)), "need a repository source"),
        (Request(config=parse(FILE, "offsite.yml"), only=("nope",)), "no such group or source"),
    ],
)
def test_bad_requests_are_one_clear_line(request_: Request, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        select(request_, ENV)


def test_a_source_cannot_change_once_built() -> None:
    source = from_url("/srv/a", None, SourceOptions(excludes=("*.tmp",)))
    with pytest.raises(AttributeError, match="immutable"):
        source.options = SourceOptions()  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        source.skip = ()  # type: ignore[attr-defined]
    repo = from_url("git+https://h/app.git")
    with pytest.raises(AttributeError, match="immutable"):
        repo.mirror_cache = Path("/x")  # type: ignore[attr-defined]


def test_prepared_release_removes_what_prepare_made(tmp_path: Path) -> None:
    folder, file = tmp_path / "staged", tmp_path / "bundle"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "x").write_bytes(b"x")
    file.write_bytes(b"y")
    prepared = Prepared(made=(folder, file))
    prepared.release()
    prepared.release()  # twice: nothing left, no error
    assert not folder.exists() and not file.exists()
