"""Plain-text tables for the listing commands (bin/models, bin/status): every column as wide as
its widest cell and two spaces from the next, so headers never run together."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """The header line and one line per row; the columns numbered in `right` (numbers) are
    right-aligned, the others left-aligned."""
    widths = [max(map(len, column)) for column in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), *map(line, rows)]
