"""A repository's issues, pull requests and what belongs to them, written back into GitHub
from a set (SPEC §11): labels, milestones, issues and pull requests in number order with
closed placeholders for the numbers the set does not hold, their state, close reason,
lock, labels and milestone, comments and reviews in the order they were written, releases
with their assets.

Every item made carries a marker (``held.marker``) in its origin line, so a second run
finds what a first one made, by number and marker, and goes on from there: it never makes
an item twice. What GitHub cannot be given back (authorship, times, approvals, positions of
review comments) goes into the report.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from offsite.github.held import Held, clean, found_marker, login, marker, origin, with_origin
from offsite.github.rebuild_releases import restore_releases
from offsite.github.rebuild_report import Options, Report
from offsite.github.writer import Writer


def _repo_of(side: Any) -> Any:
    """The repository a pull request's head or base is in (None: a deleted fork)."""
    repo = side.get("repo") if isinstance(side, dict) else None
    return repo.get("full_name") if isinstance(repo, dict) else None


PLACEHOLDER = "offsite-placeholder"
LOCK_REASONS = ("off-topic", "too heated", "resolved", "spam")


class Items:
    """The items of ``held`` into the repository ``writer`` speaks to; ``mirror`` is the
    restored git repository (which branches a pull request can be made from)."""

    def __init__(
        self,
        writer: Writer,
        held: Held,
        set_id: str,
        mirror: Path | None,
        report: Report,
        options: Options,
    ) -> None:
        self.w, self.held, self.set_id, self.mirror = writer, held, set_id, mirror
        self.report, self.options = report, options
        self.users = dict(options.users)
        self.existing: dict[int, dict[str, Any]] = {}
        self.assignable: dict[str, bool] = {}
        # where the target holds issues or milestones of its own (--force), numbers cannot
        # be kept: items are found by their marker, and made with the numbers GitHub gives
        self.keep = True
        self.by_marker: dict[str, dict[str, Any]] = {}
        self.milestone_numbers: dict[int, int] = {}  # the set's → the target's

    def mark(self, kind: str, ident: object) -> str:
        return marker(self.set_id, kind, ident)

    # -- what is there -----------------------------------------------------------------------
    def survey(self) -> list[str]:
        """Read what the target holds; each issue, and each milestone at a number the set
        needs, that a restore of this set did not make."""
        listed = self.w.every("issues", {"state": "all", "sort": "created", "direction": "asc"})
        self.existing = {int(i["number"]): i for i in listed}
        prefix = f"offsite:{self.set_id}:"
        foreign = [f"#{n}" for n, i in sorted(self.existing.items())
                   if not (found_marker(i.get("body")) or "").startswith(prefix)]  # fmt: skip
        self.milestones_there = {int(m["number"]): m
                                 for m in self.w.every("milestones", {"state": "all"})}  # fmt: skip
        for number, have in sorted(self.milestones_there.items()):
            if have.get("title") != self._milestone(number)["title"]:
                foreign.append(f"milestone {number}")
        self.by_marker = {}
        misplaced = False
        for n, item in sorted(self.existing.items(), reverse=True):  # the earliest wins
            mark = found_marker(item.get("body"))
            if mark is not None:
                self.by_marker[mark] = item
                if mark.startswith(f"{prefix}issue:") and mark != self.mark("issue", n):
                    misplaced = True  # made by an earlier run that could not keep numbers
        # numbers are kept only where every item this set's restore made is at its number
        self.keep = not foreign and not misplaced
        return foreign

    # -- labels and milestones ----------------------------------------------------------------
    def labels(self) -> None:
        """Each label of the set, by name as GitHub compares them (case aside); one the
        target has already (GitHub's defaults) takes the set's colour and description."""
        there = {str(x.get("name")).lower(): x for x in self.w.every("labels")}
        wanted = list(self.held.labels)
        if self.keep and len(self.held.issues) < self.held.top():
            why = "A number offsite kept: deleted before the backup"
            wanted.append({"name": PLACEHOLDER, "color": "cccccc", "description": why})
        for label in wanted:
            body = {"name": str(label["name"]), "color": label.get("color") or "ededed",
                    "description": label.get("description") or ""}  # fmt: skip
            have = there.get(body["name"].lower())
            if have is None:
                self.w.write("POST", "labels", body)
                self.report.made["labels"] += 1
                continue
            self.report.found["labels"] += 1
            if self.options.force:
                continue  # the target's own label stays as it is
            if any(have.get(k) != body[k] for k in ("name", "color")) or (
                (have.get("description") or "") != body["description"]
            ):
                self.w.write("PATCH", f"labels/{quote(str(have['name']), safe='')}",
                             {"new_name": body["name"], "color": body["color"],
                              "description": body["description"]})  # fmt: skip

    def _milestone(self, number: int) -> dict[str, Any]:
        """What milestone ``number`` is made as: the set's, or a closed placeholder."""
        item = self.held.milestones.get(number)
        if item is None:
            return {"title": f"{PLACEHOLDER} {number}", "state": "closed",
                    "description": "deleted before the backup"}  # fmt: skip
        body = {"title": str(item["title"]), "state": item.get("state") or "open",
                "description": item.get("description") or ""}  # fmt: skip
        if item.get("due_on"):
            body["due_on"] = item["due_on"]
        return body

    def milestones(self) -> None:
        if not self.keep:
            return self._milestones_by_title()
        there = getattr(self, "milestones_there", None)
        if there is None:
            there = {int(m["number"]): m for m in self.w.every("milestones", {"state": "all"})}
        for number in range(1, max([*self.held.milestones, 0]) + 1):
            if number in there:
                self.report.found["milestones"] += 1
                continue
            made = self.w.write("POST", "milestones", self._milestone(number))
            if int(made["number"]) != number:
                raise self.w.fail(f"milestone {number} became {made['number']}: numbers cannot "
                                  "be kept (something else made milestones meanwhile)")  # fmt: skip
            kind = "milestones" if number in self.held.milestones else "milestone placeholders"
            self.report.made[kind] += 1
        return None

    def _milestones_by_title(self) -> None:
        """Numbers not kept: each milestone of the set found by its title (case aside), or
        made; one of the target's own with that title is used as it is."""
        there = {str(m.get("title")).lower(): int(m["number"])
                 for m in self.milestones_there.values()}  # fmt: skip
        for number in sorted(self.held.milestones):
            body = self._milestone(number)
            title = body["title"].lower()
            if title in there:
                self.report.found["milestones"] += 1
            else:
                there[title] = int(self.w.write("POST", "milestones", body)["number"])
                self.report.made["milestones"] += 1
            self.milestone_numbers[number] = there[title]

    # -- issues and pull requests -----------------------------------------------------------
    def issues(self) -> None:
        """Each number in order: the issue or pull request the set holds, else a closed
        placeholder; then its state, labels, milestone and lock, and its notes."""
        if not self.keep:
            return self._issues_renumbered()
        for number in range(1, self.held.top() + 1):
            have = self.existing.get(number)
            item = self.held.issues.get(number)
            fresh = have is None
            if have is None:
                have = self._make(number, item)
                if int(have["number"]) != number:
                    raise self.w.fail(
                        f"issue {number} became #{have['number']}: numbers cannot "
                        "be kept (something else made an issue meanwhile)"
                    )
            else:
                self.report.found["issues and pull requests"] += 1
            if item is None:
                self._settle(
                    number,
                    have,
                    {
                        "state": "closed",
                        "state_reason": "not_planned",
                        "labels": [{"name": PLACEHOLDER}],
                    },
                )
                continue
            self._settle(number, have, item)
            self._notes(number, number, fresh)
        return None

    def _issues_renumbered(self) -> None:
        """Numbers not kept (``--force`` into a repository with issues of its own): each
        item found by its marker or made with the number GitHub gives; no placeholders;
        the report maps the set's numbers to the target's."""
        for number in sorted(self.held.issues):
            item = self.held.issues[number]
            have = self.by_marker.get(self.mark("issue", number))
            fresh = have is None
            if have is None:
                have = self._make(number, item)
            else:
                self.report.found["issues and pull requests"] += 1
            new = int(have["number"])
            if new != number:
                self.report.numbers[number] = new
            self._settle(new, have, item)
            self._notes(number, new, fresh)

    def _make(self, number: int, item: dict[str, Any] | None) -> Any:
        mark = self.mark("issue", number)
        if item is None:
            self.report.made["placeholders"] += 1
            line = origin("ghost", "an unknown date", mark)
            return self.w.write(
                "POST",
                "issues",
                {
                    "title": f"Deleted before the backup (#{number})",
                    "body": with_origin(
                        line,
                        f"Number {number} was deleted before the backup "
                        "offsite restored this repository from.",
                    ),
                    "labels": [PLACEHOLDER],
                },
            )
        body = with_origin(origin(login(item), str(item.get("created_at")), mark), item.get("body"))
        pull = self.held.pulls.get(number) if item.get("pull_request") else None
        if pull is not None:
            head, base = str(pull["head"]["ref"]), str(pull["base"]["ref"])
            # from a fork (or a fork since deleted): its branch is not this repository's
            home = _repo_of(pull["base"])
            own = home is not None and _repo_of(pull["head"]) == home
            merged = (
                f" It was merged on {clean(pull['merged_at'])}." if pull.get("merged_at") else ""
            )
            if own and self._ahead(base, head):
                self.report.made["pull requests"] += 1
                text = f"{body}\n\n_{merged.strip()}_" if merged else body
                made = self.w.write(
                    "POST",
                    "pulls",
                    {
                        "title": item["title"],
                        "head": head,
                        "base": base,
                        "body": text,
                        "draft": bool(pull.get("draft")),
                    },
                )
                return {**made, "labels": [], "milestone": None, "locked": False}
            body += (
                f"\n\n_This was pull request #{number} from `{clean(head)}` into "
                f"`{clean(base)}`; its "
                f"branch is not in the restored repository, so it is back as an issue."
                f"{merged}_"
            )
            self.report.made["pull requests as issues"] += 1
        else:
            self.report.made["issues"] += 1
        # what the issue carries is set as it is made (a pull request's, after: its own
        # request takes none of it)
        labels = [str(x.get("name")) for x in item.get("labels") or []]
        payload: dict[str, Any] = {"title": item["title"], "body": body, "labels": labels}
        milestone = self._milestone_there(item)
        if milestone is not None:
            payload["milestone"] = milestone
        assignees = self._assignees(item)
        if assignees:
            payload["assignees"] = assignees
        return self.w.write("POST", "issues", payload)

    def _ahead(self, base: str, head: str) -> bool:
        """Whether ``head`` is a branch of the restored repository with commits ``base``
        lacks (GitHub refuses a pull request otherwise)."""
        if self.mirror is None:
            return False
        done = subprocess.run(
            [
                "git",
                "-C",
                str(self.mirror),
                "rev-list",
                "--count",
                f"refs/heads/{base}..refs/heads/{head}",
                "--",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode == 0 and done.stdout.strip() not in ("", "0")

    def _settle(self, number: int, have: dict[str, Any], want: dict[str, Any]) -> None:
        """Make the issue's state, close reason, labels, milestone and assignees those of
        the set, where they are not yet; then its lock."""
        change: dict[str, Any] = {}
        labels = sorted(str(x.get("name")) for x in want.get("labels") or [])
        if sorted(str(x.get("name")) for x in have.get("labels") or []) != labels:
            change["labels"] = labels
        milestone = self._milestone_there(want)
        if milestone != (have.get("milestone") or {}).get("number"):
            change["milestone"] = milestone
        assignees = self._assignees(want)
        if assignees and sorted(str(a.get("login")) for a in have.get("assignees") or []) != sorted(
            assignees
        ):
            change["assignees"] = assignees
        if want.get("state") != have.get("state"):
            change["state"] = want.get("state")
        if want.get("state") == "closed" and want.get("state_reason") != have.get("state_reason"):
            change["state"] = "closed"
            change["state_reason"] = want.get("state_reason") or "completed"
        if change:
            self.w.write("PATCH", f"issues/{number}", change)
        reason = want.get("active_lock_reason")
        if want.get("locked") and not have.get("locked"):
            lock = {"lock_reason": reason} if reason in LOCK_REASONS else None
            self.w.write("PUT", f"issues/{number}/lock", lock)

    def _milestone_there(self, item: dict[str, Any]) -> Any:
        """The number on the target of the item's milestone (the same, where kept)."""
        number = (item.get("milestone") or {}).get("number")
        if number is None or self.keep:
            return number
        return self.milestone_numbers.get(number)  # (one the set lacks: none, not the target's)

    def _assignees(self, item: dict[str, Any]) -> list[str]:
        """The item's assignees as the target knows them: mapped, else where assignable."""
        found = []
        for who in (str(a.get("login")) for a in item.get("assignees") or []):
            name = self.users.get(who, who)
            if name not in self.assignable:
                self.assignable[name] = self.w.exists(f"assignees/{quote(name, safe='')}")
                if not self.assignable[name]:
                    self.report.left_out.append(
                        f"user {who}: not assignable here (--map-user OLD=NEW)"
                    )
            if self.assignable[name]:
                found.append(name)
        return found

    def _notes(self, number: int, there: int, fresh: bool) -> None:
        """The notes of the set's ``number`` on the target's issue ``there``."""
        notes = self.held.notes.get(number, [])
        if not notes:
            return
        made: set[str] = set()
        if not fresh:
            made = {found_marker(c.get("body")) or ""
                    for c in self.w.every(f"issues/{there}/comments")}  # fmt: skip
        for note in notes:
            if self.mark("note", note.ident) in made:
                self.report.found["comments"] += 1
                continue
            self.w.write("POST", f"issues/{there}/comments", {"body": note.comment(self.set_id)})
            self.report.made["comments"] += 1

    def releases(self) -> None:
        restore_releases(self.w, self.held, self.report, self.mark)

    def counts(self) -> Counter[str]:
        """What a run would make, per kind (a dry run)."""
        top = self.held.top()
        return Counter(
            {
                "labels": len(self.held.labels),
                "milestones": len(self.held.milestones),
                "issues and pull requests": len(self.held.issues),
                "placeholders": top - len(self.held.issues),
                "comments": sum(len(n) for n in self.held.notes.values()),
                "releases": len(self.held.releases),
                "release assets": sum(len(r.get("assets") or []) for r in self.held.releases),
            }
        )
