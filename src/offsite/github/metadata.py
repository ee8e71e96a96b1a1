"""A repository's GitHub metadata exported item by item (SPEC §10; the layout and its
index: ``metadata_index``).

Against a base's index (an incremental run), only what changed is written: each list is
read page by page with the base's ``ETag`` as ``If-None-Match`` (a page GitHub answers 304
is the base's page again, and costs nothing against the rate limit), an item whose bytes
hash as in the base is not written again, each pull request's reviews are asked with
their own ETag, a release asset downloaded again only where its id, size or time
changed. A list in which an item of the base is not found is read once more before it
counts deleted. ``index.json`` always lists everything, so what the base holds and the
index does not is what went away (``Export.deleted``).

Read through PyGithub's requester: its ``GithubRetry`` waits out a ``Retry-After`` and the
reset of an exhausted rate limit, ``GITHUB_API_URL`` points it at GitHub Enterprise Server.
Pages are written as they come, so a repository with many issues never sits in memory
whole.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offsite.github.metadata_index import (
    INDEX,
    LISTINGS,
    NESTED,
    SETTING_LISTS,
    Index,
    Unreadable,
    item_bytes,
    next_page,
    safe_name,
)
from offsite.github.metadata_settings import capture

PER_PAGE = 100
CHUNK = 1 << 20
_QUERY = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")


def _header(headers: dict[str, Any], name: str) -> str:
    return str(next((v for k, v in headers.items() if k.lower() == name), "") or "")


class Export:
    """One repository's export into ``folder``; against ``base`` (an incremental run's
    base index) only what changed is written. ``fail(reason)`` makes the error to raise."""

    def __init__(
        self,
        requester: Any,
        repo: str,
        folder: Path,
        fail: Callable[[str], Exception],
        base: Index | None = None,
    ) -> None:
        self.requester = requester
        self.root = f"/repos/{repo}"
        self.folder = folder
        self.fail = fail
        self.base = base or Index()
        self.index = Index(repository=repo)
        self.requests = 0
        self.not_modified = 0  # pages GitHub answered 304
        self.written = 0  # bytes of the files written
        self.changed = 0  # items written (all of them in a full export)
        self.asset_bytes = 0

    # -- asking ----------------------------------------------------------------------------
    def get(
        self, url: str, params: dict[str, Any] | None, etag: str = "", first: bool = True,
        optional: bool = False,
    ) -> tuple[dict[str, Any], Any]:  # fmt: skip
        """GitHub's answer; the data is None where ``etag`` still holds (304). A 410 on a
        list's first page (the feature is switched off: issues disabled) is an empty list;
        on a later one the list went away while it was read: the run fails. ``optional``:
        a 403 or 404 (what the token may not read) raises ``Unreadable``."""
        from github import GithubException

        from offsite.github.repos import reason

        self.requests += 1
        where = url.split("?")[0]
        headers = {"If-None-Match": etag} if etag else None
        try:
            status, answer, output = self.requester.requestJson(
                "GET", url, parameters=params, headers=headers
            )
            if status == 304 and etag:
                return answer, None
            data = json.loads(output) if output else None
            if status >= 400:
                raise self.requester.createException(status, answer, data)
        except GithubException as exc:
            if exc.status == 410 and first:
                return {}, []
            if optional and exc.status in (403, 404):
                raise Unreadable(reason(exc), exc.status) from None
            raise self.fail(f"{where}: {reason(exc)}") from None
        except ValueError:
            raise self.fail(f"{where}: GitHub answered what is not JSON") from None
        except OSError as exc:
            raise self.fail(reason(exc)) from None
        if data is None or status != 200:
            raise self.fail(f"{where}: GitHub answered {status} with no body")
        return answer, data

    # -- keeping ---------------------------------------------------------------------------
    def store(self, kind: str, key: str, data: bytes, fingerprint: str = "") -> bool:
        """Record an item; write it where the base does not hold it as it is now."""
        fingerprint = fingerprint or hashlib.sha256(data).hexdigest()
        self.index.items.setdefault(kind, {})[key] = fingerprint
        if self.base.items.get(kind, {}).get(key) == fingerprint:
            return False
        path = self.folder / kind / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.changed += 1
        self.written += len(data)
        return True

    def carry(self, kind: str, prefix: str) -> None:
        """The base's items of ``kind`` under ``prefix`` (a parent that did not change)."""
        kept = self.index.items.setdefault(kind, {})
        base = self.base.items.get(kind, {})
        kept.update((k, v) for k, v in base.items() if k.startswith(prefix))

    def key(self, item: Any, field_name: str, what: str) -> str:
        value = item.get(field_name) if isinstance(item, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(f"{what}: GitHub answered an item without a numeric {field_name}")
        return f"{value}.json"

    def listing(
        self, kind: str, path: str, params: dict[str, str], field_name: str,
        prefix: str, old: tuple[list[dict[str, Any]], dict[str, str]],
    ) -> dict[str, tuple[Any, bool]]:  # fmt: skip
        """Every item of a list by file: (the item, or None where its page was answered
        304 and is ``old``'s; whether it was written). ``old``: the pages and items an
        earlier reading left (the base's), whose ETags are asked with."""
        old_pages, old_items = old
        kept = self.index.items.setdefault(kind, {})
        found: dict[str, tuple[Any, bool]] = {}
        pages: list[dict[str, Any]] = []
        page = 1
        while True:
            before = old_pages[page - 1] if page <= len(old_pages) else None
            query = {**params, "per_page": PER_PAGE, "page": page}
            headers, data = self.get(f"{self.root}/{path}", query,
                                     before["etag"] if before else "", page == 1)  # fmt: skip
            if data is None and before is not None:  # 304: the page as it was
                self.not_modified += 1
                for key in before["keys"]:
                    kept[key] = old_items[key]
                    found.setdefault(key, (None, False))
                pages.append(before)
                more = True  # a 304 says nothing of the pages after it
            elif isinstance(data, list):
                keys = []
                for item in data:
                    key = prefix + self.key(item, field_name, path)
                    found[key] = (item, self.store(kind, key, item_bytes(item)))
                    keys.append(key)
                if keys or page == 1:
                    pages.append({"etag": _header(headers, "etag"), "keys": keys})
                more = bool(keys) and next_page(headers) is not None
            else:
                raise self.fail(f"{path}: GitHub answered {type(data).__name__}, not a list")
            if not more:
                break
            page += 1
        self.index.pages[kind + (f"/{prefix[:-1]}" if prefix else "")] = pages
        return found

    def confirmed(
        self, kind: str, path: str, params: dict[str, str], field_name: str,
        prefix: str = "", etags: bool = True,
    ) -> dict[str, tuple[Any, bool]]:  # fmt: skip
        """``listing`` against the base; where an item of the base is not found, the list
        is read once more before it counts as deleted: pages are numbered, so an item
        deleted on a page read before moves the next page's first item onto it, unseen."""
        name = kind + (f"/{prefix[:-1]}" if prefix else "")
        base_items = self.base.items.get(kind, {})
        base = (self.base.pages.get(name, []) if etags else [], base_items)
        found = self.listing(kind, path, params, field_name, prefix, base)
        if not {k for k in base_items if k.startswith(prefix)} - set(found):
            return found
        first = (self.index.pages[name], dict(self.index.items[kind]))
        for key in found:
            del self.index.items[kind][key]
        again = self.listing(kind, path, params, field_name, prefix, first)
        for key in set(found) - set(again):  # written the first time, gone the second
            (self.folder / kind / key).unlink(missing_ok=True)
        return {
            k: (item if item is not None else found.get(k, (None, False))[0],
                written or found.get(k, (None, False))[1])
            for k, (item, written) in again.items()
        }  # fmt: skip

    # -- the export ------------------------------------------------------------------------
    def run(self, assets: bool) -> dict[str, int]:
        _, repository = self.get(self.root, None)
        self.store("settings", "repository.json", item_bytes(repository))
        # releases read afresh where the base kept no assets to take for an unchanged page
        fresh = assets and "release-assets" not in self.base.items
        listed = {x.kind: self.confirmed(x.kind, x.path, x.params, x.key,
                                         etags=not (fresh and x.kind == "releases"))
                  for x in LISTINGS}  # fmt: skip
        self.index.items.setdefault("pull-reviews", {})
        for key in listed["pulls"]:  # each pull request's reviews, asked with their ETag
            number = key[: -len(".json")]
            self.confirmed("pull-reviews", f"pulls/{number}/reviews", {}, "id", f"{number}/")
        if assets:
            self.index.items.setdefault("release-assets", {})
            for key, (release, _) in listed["releases"].items():
                self.release_assets(key[: -len(".json")], release)
        capture(self)
        (self.folder / INDEX).write_bytes(self.index.to_bytes())
        stats = {x.stat: len(self.index.items.get(x.kind, {})) for x in LISTINGS}
        stats.update({v: len(self.index.items.get(k, {})) for k, v in NESTED.items()})
        if not assets:
            del stats["release_assets"]
        else:
            stats["release_asset_bytes"] = sum(
                int(v.split(":")[2]) for v in self.index.items["release-assets"].values()
            )
        stats.update({x.stat: len(self.index.items.get(x.kind, {})) for x in SETTING_LISTS})
        stats["branch_protections"] = len(self.index.items.get("branch-protection", {}))
        stats["unreadable"] = len(self.index.unreadable)
        stats["requests"] = self.requests
        if self.base.items:
            stats.update(changed_items=self.changed, pages_not_modified=self.not_modified)
        return stats

    def deleted(self) -> list[str]:
        """What the base holds and this export's index does not list, as paths."""
        return sorted(
            f"{kind}/{key}"
            for kind, listed in self.base.items.items()
            for key in listed
            if key not in self.index.items.get(kind, {})
        )

    def unchanged(self) -> bool:
        return (self.index.items, self.index.pages, self.index.unreadable) == (
            self.base.items, self.base.pages, self.base.unreadable
        )  # fmt: skip

    def release_assets(self, release_id: str, release: Any) -> None:
        """A release's files; those the base holds as they are now are not downloaded."""
        if release is None:  # its page was the base's: so are its assets
            self.carry("release-assets", f"{release_id}/")
            return
        for asset in release.get("assets") or []:
            name = f"{release_id}/{safe_name(str(asset.get('name') or ''))}"
            fingerprint = (f"asset:{asset.get('id')}:{int(asset.get('size') or 0)}:"
                           f"{asset.get('updated_at')}:{asset.get('digest')}")  # fmt: skip
            if self.base.items.get("release-assets", {}).get(name) == fingerprint:
                self.index.items["release-assets"][name] = fingerprint
                continue
            self.download(asset, self.folder / "release-assets" / name)
            self.index.items["release-assets"][name] = fingerprint
            self.changed += 1

    def download(self, asset: dict[str, Any], path: Path) -> None:
        """One release asset (through the API's asset address, which redirects to
        storage); its size and, where GitHub gives one, its SHA-256 checked."""
        import requests
        from github import GithubException

        from offsite.github.repos import reason

        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        self.requests += 1
        try:
            _, _, chunks = self.requester.getStream(asset["url"], chunk_size=CHUNK)
            with open(path, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except GithubException as exc:  # a 403 goes through PyGithub's retry first
            raise self.fail(f"release asset {asset['name']}: {reason(exc)}") from None
        except (requests.RequestException, OSError) as exc:
            # the storage address an asset redirects to is signed in its query
            said = _QUERY.sub(r"\1", str(exc))
            raise self.fail(f"release asset {asset['name']}: {said}") from None
        if size != asset.get("size", size):
            raise self.fail(
                f"release asset {asset['name']}: {size} bytes, GitHub lists {asset['size']}"
            )
        stated = str(asset.get("digest") or "")
        if stated.startswith("sha256:") and stated[7:] != digest.hexdigest():
            raise self.fail(f"release asset {asset['name']}: its SHA-256 does not match")
        self.written += size
        self.asset_bytes += size
