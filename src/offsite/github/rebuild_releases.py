"""A repository's releases written back into GitHub from a set (SPEC §11): each the
target lacks, by tag, with its origin line and marker; then each asset its release lacks,
streamed from the restored folder. A release of that tag the restore did not make is the
target's own and stays as it is; an upload cut off (GitHub keeps it, half there) is made
again."""

from __future__ import annotations

from collections.abc import Callable

from offsite.github.held import Held, found_marker, login, origin, with_origin
from offsite.github.metadata_index import safe_name
from offsite.github.rebuild_report import Report
from offsite.github.writer import Writer


def restore_releases(
    w: Writer, held: Held, report: Report, mark: Callable[[str, object], str]
) -> None:
    there = {str(r.get("tag_name")): r for r in w.every("releases")}
    for release in held.releases:
        tag = str(release["tag_name"])
        have = there.get(tag)
        if have is None:
            line = origin(
                login(release, "author"),
                str(release.get("created_at")),
                mark("release", release["id"]),
            )
            have = w.write(
                "POST",
                "releases",
                {
                    "tag_name": tag,
                    "target_commitish": release.get("target_commitish") or "",
                    "name": release.get("name") or tag,
                    "body": with_origin(line, release.get("body")),
                    "draft": bool(release.get("draft")),
                    "prerelease": bool(release.get("prerelease")),
                },
            )
            report.made["releases"] += 1
        else:
            report.found["releases"] += 1
        if found_marker(have.get("body")) != mark("release", release["id"]):
            report.lost.append(f"release {tag}: the target's own release of that tag "
                                    "is kept as it is (nothing added to it)")  # fmt: skip
            continue
        names = set()
        for held_there in have.get("assets") or []:
            if held_there.get("state", "uploaded") == "uploaded":
                names.add(str(held_there.get("name")))
            else:  # an upload cut off: GitHub keeps it, half there, under its name
                w.write("DELETE", f"releases/assets/{int(held_there['id'])}")
        for asset in release.get("assets") or []:
            name = str(asset["name"])
            # (a number: what the set says never makes a path outside its folder)
            file = held.folder / "release-assets" / str(int(release["id"])) / safe_name(name)
            if name in names:
                report.found["release assets"] += 1
            elif not file.is_file():
                report.lost.append(
                    f"release {tag}: asset {name} (not in the backup: "
                    "back it up with --include-release-assets)"
                )
            else:
                w.upload(str(have["upload_url"]), name, file)
                report.made["release assets"] += 1
