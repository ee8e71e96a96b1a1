"""The container images guide's commands, run as written (issue 34), against the registry
the tests start: its address where the guide writes 127.0.0.1:5000."""

from __future__ import annotations

import json
from pathlib import Path

from tests.docs.pages import run_page
from tests.oci.images import Image, remote_digest
from tests.servers import OciRegistry


def test_images(tmp_path: Path, registry: OciRegistry, image: Image) -> None:
    run_page("guides/images.md", tmp_path, replace={"127.0.0.1:5000": registry.host})
    assert remote_digest(registry, "copies/app:1.0") == image.index_digest  # every digest kept
    index = json.loads((tmp_path / "app-layout" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.index_digest
    sets = sorted((tmp_path / "backups").iterdir())
    arm = json.loads((sets[-1] / "manifest.json").read_text())["entries"][0]
    assert (arm["name"], arm["stats"]["manifests"]) == ("app-arm", 1)  # the arm64 image alone
