"""az:// without a key: azure-identity's chain (workload identity from azure/login with
OIDC, a managed identity, az login), so Actions need no stored Azure secret (issue 21).
No Entra ID runs here, so the chain is shown failing as a user would meet it: one line
saying what to give, never a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

OTHERS = ("AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING",
          "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
          "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT")  # fmt: skip


@pytest.fixture
def signed_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("azure.identity")
    for name in OTHERS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no az login's token cache
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "offsiteaccount")


def test_no_key_and_no_sign_in_is_one_line_saying_what_to_give(
    cli, tree: Path, signed_out: None, monkeypatch: pytest.MonkeyPatch, passphrase: str
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", "https://127.0.0.1:9/offsiteaccount")
    started = time.monotonic()
    r = cli("backup", tree, "--to", "az://backups/app")
    assert r.code == 3 and "Traceback" not in r.err, r.err
    (line,) = [ln for ln in r.err.splitlines() if ln.startswith("offsite:")]
    assert "no Azure credential" in line and "azure/login" in line
    assert time.monotonic() - started < 60


def test_signing_in_over_plain_http_is_refused(
    cli, tree: Path, signed_out: None, monkeypatch: pytest.MonkeyPatch, passphrase: str
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", "http://127.0.0.1:9/offsiteaccount")
    r = cli("backup", tree, "--to", "az://backups/app")
    assert r.code == 2 and "needs an https endpoint" in r.err
