"""offsite mirror SOURCE... --push-to URL_TEMPLATE"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from offsite.cli.options import Lines, emit_json, json_option, option, repo_options
from offsite.errors import BadInput
from offsite.github.repos import RepoChoice, owner_of, repositories
from offsite.mirror import push_all, raise_failures, target_for
from offsite.shards import parse_shard, share
from offsite.sources import SourceOptions
from offsite.sources.git import GitSource
from offsite.table import human_duration, render


def _sources(urls: tuple[str, ...], choice: RepoChoice, options: SourceOptions) -> list[GitSource]:
    found: list[GitSource] = []
    for url in urls:
        login = owner_of(url)
        if login:
            found += [GitSource(r.name, f"git+{r.clone_url}", options)
                      for r in repositories(login, choice)]  # fmt: skip
        elif url.startswith(("git+", "github://")):
            found.append(GitSource(GitSource.default_name(url), url, options))
        else:
            raise BadInput(
                f"mirror takes git+URL, github://OWNER/REPO or github://OWNER, not {url!r}"
            )
    names = [s.name for s in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BadInput(f"two repositories are named {twice[0]!r}: mirror them in separate runs")
    return found


@click.command("mirror", short_help="Push every ref of repositories to a second remote.")
@click.argument("urls", nargs=-1, metavar="SOURCE...", envvar="OFFSITE_SOURCE", type=Lines())
@option(
    "--push-to",
    required=True,
    metavar="URL_TEMPLATE",
    help="Where each repository goes; {repo} is its name, e.g. "
    "https://gitlab.example.com/backup/{repo}.git. Token: OFFSITE_PUSH_TOKEN.",
)
@option("--prune", is_flag=True, help="Delete refs on the target that the source no longer has.")
@option("--mirror-cache", metavar="DIR", help="Keep the source mirrors here between runs.")
@option("--jobs", type=click.IntRange(min=1), default=4, show_default=True,
        help="Repositories mirrored at once.")  # fmt: skip
@option("--shard", metavar="I/N", help="The I-th of N shares of the repositories.")
@repo_options
@json_option
def command(
    urls: tuple[str, ...],
    push_to: str,
    prune: bool,
    mirror_cache: str | None,
    jobs: int,
    shard: str | None,
    choice: RepoChoice,
    as_json: bool,
) -> int:
    """Push every ref (branches, tags, notes) of each SOURCE repository to a second remote.

    SOURCE: git+URL, github://OWNER/REPO, or github://OWNER for all its repositories.
    Credentials come from the environment only: OFFSITE_GIT_TOKEN (or GITHUB_TOKEN) to
    read, OFFSITE_PUSH_TOKEN to push, through an askpass helper. The target repositories
    must exist (or be created on push, as GitLab can). A failing repository fails the run
    (exit 3) after the others were pushed, and is named.
    """
    if not urls:
        raise BadInput("name at least one SOURCE repository")
    cache = Path(mirror_cache).expanduser() if mirror_cache else None
    sources = _sources(urls, choice, SourceOptions(mirror_cache=cache))
    if shard:
        picked = set(share([s.name for s in sources], *parse_shard(shard)))
        sources = [s for s in sources if s.name in picked]
    for source in sources:
        target_for(push_to, source)  # a template without {repo} fails before any push
    done = push_all(sources, push_to, prune, jobs)
    if as_json:
        emit_json({"pushed": [asdict(p) for p in done]})
    else:
        rows = [(p.name, p.target, str(p.refs), human_duration(p.seconds),
                 "FAILED" if p.error else "ok") for p in done]  # fmt: skip
        click.echo(render(("repository", "pushed to", "refs", "time", "result"), rows))
    raise_failures(done)
    return 0
