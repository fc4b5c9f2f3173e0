"""The papers' reported numbers as data, and this run's numbers printed beside them.

``values.csv`` holds one record per printed table cell (paper, table, row = method, column =
dataset/setting, metric, value, unit, note); a cell printed as "-" has an empty value. ``tables.csv``
holds each table's citation and caption. Paper keys: ``"chai2023"`` (Tables 1-4), ``"cheng2018"``
(Table 4).
"""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Mapping, Sequence

from lrfr.book import MODES

MISSING = "–"
Key = tuple[str, str, str]  # (row, column, metric)


@dataclass(frozen=True)
class Reference:
    """One cell of a paper's table; ``value`` is None where the paper printed "-"."""

    paper: str
    table: int
    row: str
    column: str
    metric: str
    value: float | None
    unit: str
    note: str

    @property
    def key(self) -> Key:
        return (self.row, self.column, self.metric)


def _read_csv(name: str) -> list[dict[str, str]]:
    with resources.files(__package__).joinpath(name).open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


@cache
def _all_values() -> tuple[Reference, ...]:
    return tuple(
        Reference(
            paper=record["paper"], table=int(record["table"]), row=record["row"], column=record["column"],
            metric=record["metric"], value=float(record["value"]) if record["value"] else None,
            unit=record["unit"], note=record["note"],
        )
        for record in _read_csv("values.csv")
    )


@cache
def _tables() -> dict[tuple[str, int], tuple[str, str]]:
    """(paper, table) -> (citation, caption)."""
    return {(r["paper"], int(r["table"])): (r["citation"], r["caption"]) for r in _read_csv("tables.csv")}


def reference_values(paper: str | None = None, table: int | None = None) -> list[Reference]:
    """The reported cells of ``paper`` (all papers if None), of one ``table`` if given, in printed order."""
    papers = sorted({p for p, _ in _tables()})
    if paper is not None and paper not in papers:
        raise ValueError(f"unknown paper {paper!r}; the reference data has {papers}")
    if table is not None:
        if paper is None:
            raise ValueError("a table number needs its paper")
        tables = sorted(t for p, t in _tables() if p == paper)
        if table not in tables:
            raise ValueError(f"{paper} has no reference table {table!r}; it has tables {tables}")
    return [r for r in _all_values() if paper in (None, r.paper) and table in (None, r.table)]


@dataclass(frozen=True)
class ComparisonRow:
    """One cell: the paper's value and this run's, either possibly missing."""

    row: str
    column: str
    metric: str
    unit: str
    paper: float | None
    run: float | None

    @property
    def difference(self) -> float | None:
        """This run minus the paper, where both exist."""
        return None if self.paper is None or self.run is None else self.run - self.paper


@dataclass(frozen=True)
class ComparisonTable:
    """A paper's table beside this run's numbers; shows as HTML in notebooks and in the book."""

    title: str
    provenance: str
    rows: tuple[ComparisonRow, ...]
    decimals: int = 2

    HEADER = ("method", "setting", "metric", "paper", "this run", "difference")

    def _cells(self, row: ComparisonRow) -> tuple[str, ...]:
        metric = f"{row.metric} ({row.unit})" if row.unit else row.metric
        difference = MISSING if row.difference is None else f"{row.difference:+.{self.decimals}f}"
        return (row.row, row.column, metric, self._number(row.paper), self._number(row.run), difference)

    def _number(self, value: float | None) -> str:
        return MISSING if value is None else f"{value:.{self.decimals}f}"

    def to_markdown(self) -> str:
        """The table as markdown, with its title above and the provenance sentence below."""
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.HEADER) + " |",
                 "|" + "---|" * 3 + "---:|" * 3]
        lines += ["| " + " | ".join(self._cells(row)) + " |" for row in self.rows]
        return "\n".join([*lines, "", self.provenance])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(name)}</th>" for name in self.HEADER)
        body = "".join(
            "<tr>" + "".join(
                f'<td style="text-align:{"right" if i >= 3 else "left"}">{html.escape(cell)}</td>'
                for i, cell in enumerate(self._cells(row))
            ) + "</tr>"
            for row in self.rows
        )
        return (
            f'<div class="lrfr-comparison"><table><caption>{html.escape(self.title)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p><em>{html.escape(self.provenance)}</em></p></div>"
        )

    def __str__(self) -> str:
        return self.to_markdown()


def _check_keys(keys: list[Key], cells: list[Reference], name: str) -> None:
    """Raise ValueError naming every key that is not a cell of the table, with the valid keys."""
    valid = {cell.key for cell in cells}
    unknown = [key for key in keys if key not in valid]
    if unknown:
        rows = list(dict.fromkeys(cell.row for cell in cells))
        settings = list(dict.fromkeys((cell.column, cell.metric) for cell in cells))
        raise ValueError(
            f"{unknown} are not cells of {name}; keys are (row, column, metric) with row one of {rows} "
            f"and (column, metric) one of {settings}"
        )


def compare(
    run_values: Mapping[Key, float | None], paper: str, table: int, *, data: str, backbone: str, mode: str,
    own_rows: Sequence[str] = (), all_rows: bool = False,
) -> ComparisonTable:
    """The paper's ``table`` beside ``run_values`` ((row, column, metric) -> value) with differences.

    Every cell where the paper or the run has a value is listed. A key that is not a cell of the
    paper's table raises ValueError (typo protection), except that rows named in ``own_rows`` (this
    run's own methods, e.g. a model the paper did not have) are listed after the paper's rows, with
    their (column, metric) still checked and no paper value. By default only the paper's rows
    (methods) that this run has a value for are listed; ``all_rows`` lists every method of the table.
    ``data``, ``backbone`` and ``mode`` name what
    produced the run; a ``data`` name containing "synth" adds that these are not the paper's numbers.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    cells = reference_values(paper, table)
    citation, caption = _tables()[(paper, table)]
    own = [key for key in run_values if key[0] in own_rows]
    settings = {(cell.column, cell.metric): cell.unit for cell in cells}
    _check_keys([key for key in run_values if key not in own], cells, f"{citation} Table {table}")
    unknown = [(column, metric) for _, column, metric in own if (column, metric) not in settings]
    if unknown:
        raise ValueError(f"{unknown} are not settings of {citation} Table {table}; expected (column, metric) one of {list(settings)}")
    shown = {row for row, _, _ in run_values}
    rows = tuple(
        ComparisonRow(cell.row, cell.column, cell.metric, cell.unit, cell.value, run_values.get(cell.key))
        for cell in cells
        if (cell.value is not None or run_values.get(cell.key) is not None) and (all_rows or cell.row in shown)
    ) + tuple(ComparisonRow(r, c, m, settings[(c, m)], None, run_values[(r, c, m)]) for r, c, m in own)
    provenance = f"“This run”: {data} data, {backbone} backbone, {mode} mode; difference = this run − paper."
    if "synth" in data.lower():
        provenance += (
            f" These numbers come from synthetic data: they show that the code runs end to end and are "
            f"not {citation}'s numbers; only runs on the real benchmarks can be compared with them."
        )
    return ComparisonTable(f"{citation}, Table {table}: {caption}", provenance, rows)
