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
     ("/plain/path", "/plain/path"),
     # passwords that were not percent-encoded: urlsplit fails or cuts them
     ("postgresql://bob:hunter2[x@127.0.0.1/db", "postgresql://bob:***@127.0.0.1/db"),
     ("postgresql://bob:hun/ter2@h/db", "postgresql://bob:***@h/db"),
     ("mysql://u:hunter2#x@h:3306/d", "mysql://u:***@h:3306/d"),
     ("mysql://u:hunter2@x@h/d", "mysql://u:***@h/d"),
     ("git+ssh://git@github.com:o/r.git", "git+ssh://git@github.com:o/r.git"),
     ("https://x.com/a:b@c", "https://x.com/a:b@c")],
)  # fmt: skip
def test_redact(url: str, safe: str) -> None:
    assert redact(url) == safe
    assert "hunter2" not in redact(url)


def test_local_path() -> None:
    assert local_path("file:///tmp/a%20b") == "/tmp/a b"
    assert local_path("rel/x") == "rel/x"
