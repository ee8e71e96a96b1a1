"""The configuration file: parsing, ${ENV} expansion, selection by group."""

from __future__ import annotations

import pytest

from offsite.config import parse
from offsite.errors import BadInput

FILE = """
destinations: [github-artifacts, "s3://backups/${APP}"]
encryption: {passphrase-env: BACKUP_PASS}
compress: gzip
level: 6
labels: {env: production}
retention: {keep-daily: 7, keep-weekly: 4, keep-monthly: 12}
sources:
  - {name: shop, url: "${DATABASE_URL}", groups: [database]}
  - {name: analytics, url: "postgresql://ro@db/analytics", group: database, pg-globals: true}
  - {name: uploads, path: /srv/uploads, exclude: ["*.tmp"], groups: [files]}
  - {name: settings, exec: "cat /etc/app.conf", groups: [files, small]}
"""


def test_a_full_file_is_read_into_typed_values() -> None:
    config = parse(FILE, "offsite.yml")
    assert [s.name for s in config.sources] == ["shop", "analytics", "uploads", "settings"]
    assert config.groups == ("database", "files", "small")
    assert config.sources[1].pg_globals and config.sources[1].groups == ("database",)
    assert config.sources[2].exclude == ("*.tmp",)
    assert config.sources[3].command == "cat /etc/app.conf" and config.sources[3].url is None
    assert config.encryption is not None and config.encryption.passphrase_env == "BACKUP_PASS"
    assert (config.compress, config.level) == ("gzip", 6)
    assert config.retention == {"keep-daily": "7", "keep-weekly": "4", "keep-monthly": "12"}


def test_selection_by_group_or_name_expands_only_what_it_selects() -> None:
    config = parse(FILE, "offsite.yml")
    env = {"APP": "shop", "DATABASE_URL": "postgresql://u:secret@db/shop"}
    files = config.expanded({"APP": "shop"}, ("files",))  # no DATABASE_URL needed
    assert [s.name for s in files.sources] == ["uploads", "settings"]
    assert files.destinations == ("github-artifacts", "s3://backups/shop")
    both = config.expanded(env, ("shop,settings",))
    assert [s.name for s in both.sources] == ["shop", "settings"]
    assert both.sources[0].url == "postgresql://u:secret@db/shop"
    assert [s.name for s in config.expanded(env).sources] == [
        "shop",
        "analytics",
        "uploads",
        "settings",
    ]


def test_an_unset_variable_names_itself_and_never_a_value() -> None:
    config = parse(FILE, "offsite.yml")
    with pytest.raises(BadInput) as err:
        config.expanded({"APP": "x"}, ("database",))
    assert err.value.message() == (
        "offsite.yml: sources.shop.url: ${DATABASE_URL} is not set in the environment"
    )


def test_a_doubled_dollar_is_a_literal() -> None:
    config = parse("sources: [{name: a, exec: 'echo $${HOME}'}]", "c.yml")
    assert config.expanded({}).sources[0].command == "echo ${HOME}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sources: [{name: a, url: x, path: y}]",
            "c.yml: sources[0]: give exactly one of url, path and exec",
        ),
        ("sources: [{url: x}]", "c.yml: sources[0]: every source needs a name (its entry's name)"),
        ("sources: [{name: a, url: x, grups: [b]}]", "c.yml: sources[0]: unknown key 'grups'"),
        ("sources: [{name: 'a b', url: x}]", "c.yml: sources[0].name: entry name 'a b' must start"),
        (
            "sources: [{name: a, url: x}, {name: a, exec: y}]",
            "c.yml: sources: two sources are named 'a'",
        ),
        ("destination: [x]", "c.yml: unknown key 'destination'"),
        ("level: high", "c.yml: level: expected a whole number"),
        ("retention: {keep-dayly: 7}", "c.yml: retention: unknown key 'keep-dayly'"),
        ("encryption: {passphrase-env: A, recipients: [B]}", "c.yml: encryption: choose one of"),
        ("sources: {name: a}", "c.yml: sources: expected a list of sources"),
        ("sources: [{name: a, url: '${}'}]", "c.yml: sources[0].url: a ${ without a variable name"),
        ("sources:\n  - {name: a\n  - b", "c.yml: line 3: "),
    ],
)
def test_bad_files_get_one_line_naming_file_and_key(text: str, message: str) -> None:
    with pytest.raises(BadInput) as err:
        parse(text, "c.yml")
    assert err.value.message().startswith(message)
    assert "\n" not in err.value.message()


def test_unknown_group_lists_the_known_ones() -> None:
    with pytest.raises(BadInput) as err:
        parse(FILE, "offsite.yml").select(("databse",))
    assert err.value.message() == (
        "offsite.yml: --only databse: no such group or source (groups: database, files, small; "
        "sources: shop, analytics, uploads, settings)"
    )


def test_encryption_none_and_recipients() -> None:
    assert parse("encryption: none", "c").encryption.mode == "none"  # type: ignore[union-attr]
    config = parse("encryption: {recipients: [ABCD, keys/ops.asc]}", "c")
    assert config.encryption is not None and config.encryption.recipients == (
        "ABCD",
        "keys/ops.asc",
    )
