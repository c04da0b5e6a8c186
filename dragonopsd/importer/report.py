"""What an import did (or, with dryRun, would do), object by object."""

from __future__ import annotations

from typing import Literal

from ..model.inventory import Wire

ObjectKind = Literal["monitor", "channel", "maintenance", "secret"]
# imported: as it was; mapped: imported with a change the notes name; skipped: not imported.
Outcome = Literal["imported", "mapped", "skipped"]
# What the write did to our side: a new object, an update of the one imported before under
# the same name, nothing because it already matched, or nothing because it was skipped.
Action = Literal["create", "update", "unchanged", "none"]


class ImportFailed(Exception):
    """The input cannot be read as the source says it is, or the database refused an object
    of it: nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Entry(Wire, kw_only=True):
    """One object of the source and what became of it."""

    kind: ObjectKind
    name: str
    outcome: Outcome
    action: Action = "none"
    notes: list[str] = []


class Report(Wire, kw_only=True):
    """Every object of the source, in source order, and the warnings about the whole file."""

    source: Literal["gatus", "uptime-kuma"]
    dry_run: bool
    entries: list[Entry] = []
    warnings: list[str] = []

    def counts(self) -> dict[str, int]:
        """How many objects had each outcome."""
        out = {"imported": 0, "mapped": 0, "skipped": 0}
        for entry in self.entries:
            out[entry.outcome] += 1
        return out

    def lines(self) -> list[str]:
        """The report as text, one object a line, for the command line."""
        lines = [f"warning: {w}" for w in self.warnings]
        for e in self.entries:
            head = f"{e.outcome:8} {e.kind:11} {e.name!r}"
            if e.outcome != "skipped":
                head += f" ({e.action})"
            lines.append(head + "".join(f"\n           - {n}" for n in e.notes))
        counts = self.counts()
        verb = "would be written (dry run: nothing written)" if self.dry_run else "written"
        lines.append(
            f"{counts['imported']} imported, {counts['mapped']} mapped with a change, "
            f"{counts['skipped']} skipped; {verb}"
        )
        return lines
