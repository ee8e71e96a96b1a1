from __future__ import annotations

import pytest

from offsite.urls import local_path, redact, scheme_of


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("sqlite:///a.db", "sqlite"), ("./dir", "file"), ("/abs", "file"), ("file:///x", "file"),
     ("S3://b/p", "s3"), ("C:\\x", "file"), ("git+https://h/r.git", "git+https")],
)  # fmt: skip
def test_scheme_of(url: str, scheme: str) -> None:
    assert scheme_of(url) == scheme


@pytest.mark.parametrize(
    ("url", "safe"),
    [("postgresql://u:hunter2@h:5432/db", "postgresql://u:***@h:5432/db"),
     ("redis://:hunter2@h/0", "redis://:***@h/0"),
     ("mysql://u@h/db", "mysql://u@h/db"),
     ("/plain/path", "/plain/path")],
)  # fmt: skip
def test_redact(url: str, safe: str) -> None:
    assert redact(url) == safe
    assert "hunter2" not in redact(url)


def test_local_path() -> None:
    assert local_path("file:///tmp/a%20b") == "/tmp/a b"
    assert local_path("rel/x") == "rel/x"
