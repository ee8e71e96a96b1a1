"""Push mirrors: every ref to a second remote; --prune deletes what the source deleted;
one failing target fails the run after the others, naming it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.git.conftest import git, make_repo, refs


def _targets(root: Path, *names: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        git("init", "-q", "--bare", str(root / f"{name}.git"))


def test_every_ref_reaches_the_push_mirror_and_prune_follows_deletions(cli, tmp_path: Path) -> None:
    app = make_repo(tmp_path / "remotes", "app")
    lib = make_repo(tmp_path / "remotes", "lib")
    _targets(tmp_path / "mirror", "app", "lib")
    template = f"file://{tmp_path}/mirror/{{repo}}.git"
    r = cli("mirror", f"git+file://{app}", f"git+file://{lib}", "--push-to", template, "--json")
    assert r.code == 0, r.err
    assert [p["refs"] for p in json.loads(r.out)["pushed"]] == [6, 6]
    assert refs(tmp_path / "mirror" / "app.git") == refs(app)
    assert refs(tmp_path / "mirror" / "lib.git") == refs(lib)

    git("branch", "-D", "feature", cwd=app)
    git("tag", "-d", "light-1", cwd=app)
    r = cli("mirror", f"git+file://{app}", "--push-to", template)
    assert r.code == 0, r.err
    assert "refs/heads/feature" in refs(tmp_path / "mirror" / "app.git")  # kept without --prune
    r = cli("mirror", f"git+file://{app}", "--push-to", template, "--prune")
    assert r.code == 0, r.err
    assert refs(tmp_path / "mirror" / "app.git") == refs(app)


def test_a_failing_target_is_named_after_the_others_were_pushed(cli, tmp_path: Path) -> None:
    app = make_repo(tmp_path / "remotes", "app")
    lib = make_repo(tmp_path / "remotes", "lib")
    _targets(tmp_path / "mirror", "lib")  # app's target does not exist
    template = f"file://{tmp_path}/mirror/{{repo}}.git"
    r = cli("mirror", f"git+file://{app}", f"git+file://{lib}", "--push-to", template)
    assert r.code == 3 and "entry 'app'" in r.err
    assert refs(tmp_path / "mirror" / "lib.git") == refs(lib)


def test_a_template_without_repo_is_bad_input(cli, tmp_path: Path) -> None:
    app = make_repo(tmp_path / "remotes", "app")
    r = cli("mirror", f"git+file://{app}", "--push-to", "https://gitlab.example.com/backup.git")
    assert r.code == 2 and "{repo}" in r.err
