"""The composite actions, run step by step as the runner runs them: backup → GitHub
Artifacts → a `gh run download` folder → restore, for SQLite and PostgreSQL, with the
secrets never printed, never in an output and never in the summary."""

from __future__ import annotations

import json
import shutil
import uuid
import zipfile
from pathlib import Path

from tests.actions.harness import Result, gh_run_download
from tests.conftest import example, sqlite_content, tree_content
from tests.servers import PG_PASSWORD, Postgres

PASSPHRASE = "harness-Secret-passphrase-7f3a9c"


def assert_never_shown(result: Result, *secrets: str) -> None:
    """Not in the raw log (before the runner's masking), but for the ::add-mask:: lines
    that hide it; not in any output, nor in the summary."""
    for secret in secrets:
        shown = [
            line for line in result.log.splitlines()
            if secret in line and not line.startswith("::add-mask::")
        ]  # fmt: skip
        assert not shown, shown
        assert secret not in result.output_files
        assert secret not in json.dumps(result.outputs)
        assert secret not in result.summary


def assert_masked(result: Result, secret: str) -> None:
    assert f"::add-mask::{secret}" in result.log.splitlines()


def test_sqlite_and_folder_backup_to_artifacts_then_restore(job, tmp_path: Path) -> None:
    db = example.make_sqlite(tmp_path / "data" / "app.db", rows=500)
    files = example.make_tree(tmp_path / "data" / "uploads")
    runner = job()
    dumped = runner.run(
        "actions/dump-database",
        {"database-url": f"sqlite://{db}", "to": "github-artifacts", "passphrase": PASSPHRASE,
         "labels": "env=test\nteam=ops\n", "retention-days": "30"},
    )  # fmt: skip
    assert dumped.outcome == "success", dumped.log
    set_id = dumped.outputs["backup-id"]
    assert dumped.outputs["artifact-name"] == f"backup-{set_id}"
    assert int(dumped.outputs["size-bytes"]) > 0
    manifest = json.loads(Path(dumped.outputs["manifest"]).read_text())
    assert manifest["labels"] == {"env": "test", "team": "ops"}
    assert manifest["origin"]["run_id"] == runner.run_id
    assert (runner.artifacts / f"backup-{set_id}.zip").exists()
    # the summary lists the set and the exact commands that bring it back
    entry = manifest["entries"][0]
    assert entry["sha256"] in dumped.summary
    assert (
        f"gh run download {runner.run_id} --repo octo-org/app -n backup-{set_id} -D restore/"
        in dumped.summary
    )
    assert_masked(dumped, PASSPHRASE)
    assert_never_shown(dumped, PASSPHRASE)

    # the files go through encrypt → upload, in a second artifact
    archived = runner.run("actions/encrypt", {"path": str(files), "passphrase": PASSPHRASE})
    assert archived.outcome == "success", archived.log
    assert archived.step("Upload the set to GitHub Artifacts").outcome == "skipped"
    uploaded = runner.run("actions/upload", {"backup-path": archived.outputs["backup-path"]})
    assert uploaded.outcome == "success", uploaded.log
    assert uploaded.outputs["backup-id"] == archived.outputs["backup-id"]
    assert "already installed" in uploaded.log  # one install per job

    # a user's `gh run download <run> -n backup-<id> -D restore/`, then restore
    downloaded = gh_run_download(runner, tmp_path / "restore", f"backup-{set_id}")
    assert (downloaded / "manifest.json").exists()
    out = tmp_path / "restored.db"
    restored = runner.run(
        "actions/restore",
        {"from": str(downloaded), "into": f"sqlite://{out}", "passphrase": PASSPHRASE},
    )
    assert restored.outcome == "success", restored.log
    assert sqlite_content(out) == sqlite_content(db)
    assert json.loads(restored.outputs["report"])["restored"]
    assert_never_shown(restored, PASSPHRASE)

    # the run's artifacts, fetched by the restore action itself with gh run download
    files_id = uploaded.outputs["backup-id"]
    again = runner.run(
        "actions/restore",
        {"run-id": runner.run_id, "id": files_id, "into": str(tmp_path / "files-back"),
         "passphrase": PASSPHRASE},
    )  # fmt: skip
    assert again.outcome == "success", again.log
    assert tree_content(tmp_path / "files-back") == tree_content(files)
    # verify fetches the run's artifacts the same way, their digests checked
    checked = runner.run("actions/verify", {"run-id": runner.run_id, "read-data": "true",
                                            "passphrase": PASSPHRASE})  # fmt: skip
    assert checked.outcome == "success", checked.log
    assert (
        checked.step("Fetch the run's backup artifacts, their digests checked").outcome == "success"
    )

    # another repository's run (its artifacts, read with a token that can): there, not here
    other = {"run-id": runner.run_id, "id": files_id, "repository": "octo-org/other",
             "into": str(tmp_path / "files-other"), "passphrase": PASSPHRASE}  # fmt: skip
    missing = runner.run("actions/restore", other)
    assert missing.outcome == "failure" and "Artifact not found" in missing.log
    theirs = runner.artifacts.parent / "octo-org__other" / runner.run_id
    shutil.copytree(runner.artifacts, theirs)
    found = runner.run("actions/restore", other)
    assert found.outcome == "success", found.log
    assert tree_content(tmp_path / "files-other") == tree_content(files)

    # an artifact that is not what was uploaded (its digest differs) is never read
    (zipped,) = theirs.glob(f"backup-{files_id}.zip")
    with zipfile.ZipFile(zipped, "a") as zf:
        zf.writestr("planted.txt", "not what was uploaded")
    shutil.rmtree(tmp_path / "files-other")
    tampered = runner.run("actions/restore", other)
    assert tampered.outcome == "failure" and "Digest validation failed" in tampered.log
    assert not (tmp_path / "files-other").exists()


def test_postgres_through_the_root_action(job, tmp_path: Path, pg: Postgres) -> None:
    source = f"shop_{uuid.uuid4().hex[:8]}"
    pg.sql("postgres", f"CREATE DATABASE {source};")
    pg.sql(
        source,
        "CREATE TABLE orders (id int PRIMARY KEY, total numeric);"
        "INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 3000) g;",
    )
    runner = job()
    url = pg.url(source)
    backed_up = runner.run(
        ".",
        {"command": "backup", "source": url, "to": "github-artifacts", "passphrase": PASSPHRASE},
    )
    assert backed_up.outcome == "success", backed_up.log
    set_id = backed_up.outputs["backup-id"]
    assert_masked(backed_up, PG_PASSWORD)
    assert_never_shown(backed_up, PASSPHRASE, PG_PASSWORD, url)

    downloaded = gh_run_download(runner, tmp_path / "restore", f"backup-{set_id}")
    target = f"restored_{uuid.uuid4().hex[:8]}"
    restored = runner.run(
        ".",
        {"command": "restore", "from": str(downloaded), "entry": source,
         "into": pg.url(target), "passphrase": PASSPHRASE},
    )  # fmt: skip
    assert restored.outcome == "success", restored.log
    assert_never_shown(restored, PASSPHRASE, PG_PASSWORD)
    query = "SELECT count(*), sum(total) FROM orders;"
    assert pg.sql(target, query) == pg.sql(source, query) == "3000|6752250.0\n"

    verified = runner.run(
        ".",
        {"command": "verify", "from": str(downloaded), "read-data": "true",
         "passphrase": PASSPHRASE},
    )  # fmt: skip
    assert verified.outcome == "success", verified.log
    assert verified.outputs["healthy"] == "true"
