"""The rows of ``manual-backprop grade``: one per submission, as a text table and as CSV or JSON files."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass

COLUMNS = ("file", "forward", "backward", "first_failing_case", "diagnosis", "notes", "seconds")


@dataclass(frozen=True)
class Row:
    """One submission's line: ``forward`` and ``backward`` are "ok", "FAIL", "missing" (the notebook does
    not define it), "error" (it could not be loaded or graded) or "-" (not asked for)."""

    file: str
    forward: str
    backward: str
    first_failing_case: str
    diagnosis: str
    notes: str
    seconds: float
    ok: bool


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(rows) -> str:
    """The rows as an aligned text table (diagnosis and notes shortened; the files keep them whole)."""
    shown = [("file", "forward", "backward", "first failing case", "diagnosis", "notes", "seconds")]
    shown += [(r.file, r.forward, r.backward, r.first_failing_case or "-", _shorten(r.diagnosis or "-", 60),
               _shorten(r.notes or "-", 40), f"{r.seconds:.1f}") for r in rows]
    widths = [max(len(line[i]) for line in shown) for i in range(len(shown[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in shown)


def write_rows(path: str, rows, missing: int) -> None:
    if path.endswith(".json"):
        with open(path, "w", encoding="utf-8") as file:
            json.dump({"schema_version": 1, "command": "grade", "rows": [asdict(r) for r in rows],
                       "not_graded": missing, "ok": all(r.ok for r in rows) and not missing}, file, indent=1)
        return
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=[*COLUMNS, "ok"])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
