"""What every report shares: rows as aligned text, numbers made safe for JSON, the verdict of its rows."""

from __future__ import annotations

import math


def json_number(value):
    """A float for JSON: NaN and inf become the strings "nan", "inf", "-inf"."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else str(value)


def fmt(value, width: int = 9) -> str:
    """A number in compact scientific notation, right-aligned (``-`` for None)."""
    if value is None:
        return "-".rjust(width)
    return f"{value:.2e}".rjust(width)


def render_table(lines) -> str:
    """Rows of strings as aligned columns (first column left-aligned, the others right-aligned)."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for line in lines:
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:-1], widths[1:-1], strict=False)
        ]
        out.append("  ".join(cells + [line[-1]]).rstrip())
    return "\n".join(out)


class RowsVerdict:
    """``ok`` and ``failing`` of a report made of ``rows`` that each say ``ok``."""

    rows: tuple

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def failing(self) -> tuple:
        return tuple(row for row in self.rows if not row.ok)


def option(name: str, value: str, hints: str = "python") -> str:
    """An option as the caller writes it: ``loss="sum_of_squares"`` from Python, ``--loss sum_of_squares``
    on the command line."""
    return f"--{name.replace('_', '-')} {value}" if hints == "cli" else f'{name}="{value}"'
