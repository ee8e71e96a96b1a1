"""The repository guides' commands, run as written (issue 34), against the fake GitHub and
local remotes: the addresses the guides write as examples are replaced by the test's own
(each must still be on the page)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.docs.pages import run_page
from tests.fakegithub import FakeGitHub
from tests.git.conftest import OWNER, git, make_repo


def test_repositories(tmp_path: Path, github: FakeGitHub) -> None:
    for name in ("api", "web", "docs"):  # an owner of four, so that shard 2 of 4 holds one
        make_repo(tmp_path / "server" / OWNER, name, commits=1)
    github.org_repos[OWNER] = ["app", "api", "web", "docs"]
    for name in ("api", "web", "docs"):
        github.repo_attrs[f"{OWNER}/{name}"] = {
            "clone_url": f"file://{tmp_path}/server/{OWNER}/{name}.git"
        }
    gitlab = tmp_path / "gitlab"  # a second remote, its repositories made empty
    for name in github.org_repos[OWNER]:
        git("init", "-q", "--bare", str(gitlab / f"{name}.git"))
    work = tmp_path / "guide"
    work.mkdir()
    run_page("guides/repositories.md", work, replace={
        "git+https://github.com/octo-org/app.git": f"git+file://{tmp_path}/server/{OWNER}/app.git",
        "s3://backups/git": str(tmp_path / "object-store"),
        "~/.cache/offsite-mirrors": str(tmp_path / "mirrors"),
        "/backups": str(tmp_path / "sets"),
        "/srv/git/app.git": str(tmp_path / "restored" / "app.git"),
        "https://gitlab.example.com/backup/": f"file://{gitlab}/",
    })  # fmt: skip

    def refs(repo: Path) -> str:
        return subprocess.run(["git", "-C", str(repo), "show-ref"], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip

    source = tmp_path / "server" / OWNER / "app.git"
    assert refs(tmp_path / "restored" / "app.git") == refs(source)
    assert refs(gitlab / "app.git") == refs(source)  # restored there, then mirrored
    assert refs(gitlab / "web.git") == refs(tmp_path / "server" / OWNER / "web.git")
    sets = sorted((tmp_path / "sets").iterdir())
    last = (sets[-1] / "manifest.json").read_text()
    assert '"app-metadata"' in last and '"app-lfs"' in last


def test_restore_into_github(cli, tmp_path: Path, github: FakeGitHub, passphrase: str) -> None:
    """The fixture's octo-org/app backed up with its metadata and deleted; the guide's dry
    run, then its rebuild (unpaced: OFFSITE_PACE is --pace)."""
    sets = tmp_path / "sets"
    r = cli("backup", f"github://{OWNER}/app", "--include-metadata", "--to", sets)
    assert r.code == 0, r.err
    github.target.git_root = tmp_path / "server"
    github.target.delete(f"{OWNER}/app")
    done = run_page("guides/restore-into-github.md", tmp_path, {
        "OFFSITE_PASSPHRASE": passphrase, "OFFSITE_PACE": "0",
    }, replace={"s3://backups": str(sets)})  # fmt: skip
    made = github.target.made[f"{OWNER}/app"]
    assert made.fields["private"] is True
    numbers = [item["number"] for item in made.numbered]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 8  # in place
    assert "would make" in done.stdout  # the dry run's table, before the rebuild
