"""Example data for the demo and the tests: a SQLite database and a folder tree with the
awkward cases a backup must keep (blobs, NULLs, unicode, symlinks, modes, odd names)."""

from __future__ import annotations

import os
import random
import sqlite3
import sys
from pathlib import Path


def make_sqlite(path: Path, rows: int = 5000, seed: int = 7) -> Path:
    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT,
                                avatar BLOB, score REAL, created TEXT);
            CREATE TABLE "order items" (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users,
                                        note TEXT, qty INTEGER);
            CREATE INDEX users_email ON users(email);
            CREATE VIEW big_spenders AS SELECT user_id, sum(qty) AS n FROM "order items"
                GROUP BY user_id HAVING n > 10;
            """
        )
        names = ["Zoë", "Łukasz", "Ã…sa", "李雷", "O'Brien", "Dvořák", "Ñandú", "🙂 smile"]
        db.executemany(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    f"{rnd.choice(names)} {i}",
                    None if i % 7 == 0 else f"user{i}@example.com",
                    None if i % 5 == 0 else rnd.randbytes(rnd.randint(0, 300)),
                    None if i % 11 == 0 else rnd.random() * 1000,
                    f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00Z",
                )
                for i in range(1, rows + 1)
            ],
        )
        db.executemany(
            'INSERT INTO "order items" VALUES (?, ?, ?, ?)',
            [(i, rnd.randint(1, rows), "x\n\ty" * (i % 4), rnd.randint(0, 9)) for i in range(rows)],
        )
    return path


def make_tree(root: Path, seed: int = 7) -> Path:
    rnd = random.Random(seed)
    (root / "nested" / "deeper" / "deepest").mkdir(parents=True, exist_ok=True)
    (root / "empty-folder").mkdir(exist_ok=True)
    (root / "empty-file").write_bytes(b"")
    (root / "nested" / "deeper" / "deepest" / "data.bin").write_bytes(rnd.randbytes(200_000))
    (root / "nested" / "notes.txt").write_text("line one\nline two\n" * 500, encoding="utf-8")
    (root / "file with spaces and ünïcödé ✓.txt").write_text("unicode name\n", encoding="utf-8")
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    private = root / "nested" / "private.key"
    private.write_text("not really a key\n")
    private.chmod(0o600)
    link = root / "link-to-notes"
    if not link.is_symlink():
        os.symlink("nested/notes.txt", link)
    return root


if __name__ == "__main__":
    target = Path(sys.argv[1])
    make_sqlite(target / "app.db")
    make_tree(target / "files")
    print(target)
