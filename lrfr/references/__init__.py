"""The papers' reported numbers as data, and this run's numbers printed beside them.

``values.csv`` holds one record per printed table cell (paper, table, row = method, column =
dataset/setting, metric, value, unit, note); a cell printed as "-" has an empty value. ``tables.csv``
holds each table's citation and caption. Paper keys: ``"chai2023"`` (Tables 1-4), ``"cheng2018"``
(Table 4).
"""

from __future__ import annotations

import csv
import html
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Mapping, Sequence

from lrfr.book import MODES
from lrfr.stats import Estimate

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
    """One cell: the paper's value and this run's (with its interval when known), either possibly
    missing; with a baseline, both effects (this method − the baseline, same setting)."""

    row: str
    column: str
    metric: str
    unit: str
    paper: float | None
    run: float | None
    run_interval: tuple[float, float] | None = None
    paper_effect: float | None = None
    run_effect: Estimate | None = None

    @property
    def difference(self) -> float | None:
        """This run minus the paper, where both exist."""
        return None if self.paper is None or self.run is None else self.run - self.paper


@dataclass(frozen=True)
class ComparisonTable:
    """A paper's table beside this run's numbers; shows as HTML in notebooks and in the book.

    ``same_data``: this run used the paper's data and protocol, so "this run − paper" (the difference
    column) means something; otherwise the two are shown side by side without a difference, and the
    comparison that carries meaning is between effects (``baseline``: each row's difference from the
    baseline method in the paper and in this run, with this run's 95 % interval).
    """

    title: str
    provenance: str
    rows: tuple[ComparisonRow, ...]
    decimals: int = 2
    same_data: bool = False
    baseline: str | None = None

    @property
    def header(self) -> tuple[str, ...]:
        own = ("paper", "this run", "difference") if self.same_data else ("paper (its data)", "this run (95 %)")
        effects = (f"paper: Δ vs {self.baseline}", f"this run: Δ vs {self.baseline} (95 %)") if self.baseline else ()
        return ("method", "setting", "metric", *own, *effects)

    def _cells(self, row: ComparisonRow) -> tuple[str, ...]:
        metric = f"{row.metric} ({row.unit})" if row.unit else row.metric
        run = self._number(row.run)
        if row.run is not None and row.run_interval is not None:
            run += f" [{self._number(row.run_interval[0])}, {self._number(row.run_interval[1])}]"
        own = (self._number(row.paper), run)
        if self.same_data:
            own += (MISSING if row.difference is None else f"{row.difference:+.{self.decimals}f}",)
        effects: tuple[str, ...] = ()
        if self.baseline and row.row == self.baseline:
            effects = ("(baseline)", "(baseline)")
        elif self.baseline:
            effects = (self._number(row.paper_effect, signed=True), self._effect(row.run_effect))
        return (row.row, row.column, metric, *own, *effects)

    def _effect(self, effect: Estimate | None) -> str:
        if effect is None:
            return MISSING
        if math.isnan(effect.low) or math.isnan(effect.high):
            return f"{self._number(effect.value, signed=True)} (no interval)"
        return effect.format(self.decimals, signed=True)

    def _number(self, value: float | None, signed: bool = False) -> str:
        return MISSING if value is None else f"{value:{'+' if signed else ''}.{self.decimals}f}"

    def to_markdown(self) -> str:
        """The table as markdown, with its title above and the provenance sentence below."""
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.header) + " |",
                 "|" + "---|" * 3 + "---:|" * (len(self.header) - 3)]
        lines += ["| " + " | ".join(self._cells(row)) + " |" for row in self.rows]
        return "\n".join([*lines, "", self.provenance])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(name)}</th>" for name in self.header)
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
    run_values: Mapping[Key, float | Estimate | None], paper: str, table: int, *, data: str, backbone: str, mode: str,
    own_rows: Sequence[str] = (), all_rows: bool = False, same_data: bool | None = None,
    baseline: str | None = None, effects: Mapping[Key, Estimate] | None = None,
) -> ComparisonTable:
    """The paper's ``table`` beside ``run_values`` ((row, column, metric) -> value, or an
    :class:`~lrfr.stats.Estimate` whose interval is shown too).

    Every cell where the paper or the run has a value is listed. A key that is not a cell of the
    paper's table raises ValueError (typo protection), except that rows named in ``own_rows`` (this
    run's own methods, e.g. a model the paper did not have) are listed after the paper's rows, with
    their (column, metric) still checked and no paper value. By default only the paper's rows
    (methods) that this run has a value for are listed; ``all_rows`` lists every method of the table.
    ``data``, ``backbone`` and ``mode`` name what produced the run; a ``data`` name containing "synth"
    adds that these are not the paper's numbers.

    ``same_data`` (default: full mode, i.e. the paper's benchmark and protocol): only then is the
    difference "this run − paper" shown; on other data the values stand side by side, labelled. With
    ``baseline`` (a row of the table), each row also shows its effect, row − baseline in the same
    setting, in the paper and in this run: ``effects`` gives this run's as estimates with intervals
    (e.g. paired differences, :mod:`lrfr.stats`); without it the effect of the point values is shown.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    same_data = mode == "full" if same_data is None else same_data
    cells = reference_values(paper, table)
    citation, caption = _tables()[(paper, table)]
    own = [key for key in run_values if key[0] in own_rows]
    settings = {(cell.column, cell.metric): cell.unit for cell in cells}
    _check_keys([key for key in run_values if key not in own], cells, f"{citation} Table {table}")
    _check_keys([key for key in effects or {} if key[0] not in own_rows], cells, f"{citation} Table {table}")
    unknown = [(column, metric) for _, column, metric in own if (column, metric) not in settings]
    if unknown:
        raise ValueError(f"{unknown} are not settings of {citation} Table {table}; expected (column, metric) one of {list(settings)}")
    if baseline is not None and baseline not in {cell.row for cell in cells}:
        raise ValueError(f"baseline {baseline!r} is not a row of {citation} Table {table}; rows are "
                         f"{list(dict.fromkeys(cell.row for cell in cells))}")
    printed = {cell.key: cell.value for cell in cells}
    points = {key: value.value if isinstance(value, Estimate) else value for key, value in run_values.items()}

    def row(name: str, column: str, metric: str, unit: str, paper_value: float | None) -> ComparisonRow:
        value = run_values.get((name, column, metric))
        interval = (value.low, value.high) if isinstance(value, Estimate) else None
        paper_effect = run_effect = None
        if baseline is not None:
            paper_effect = _minus(paper_value, printed.get((baseline, column, metric)))
            run_effect = (effects or {}).get((name, column, metric))
            if run_effect is None and effects is None:
                point = _minus(points.get((name, column, metric)), points.get((baseline, column, metric)))
                run_effect = None if point is None else Estimate(point, math.nan, math.nan)
        return ComparisonRow(name, column, metric, unit, paper_value, points.get((name, column, metric)), interval,
                             paper_effect, run_effect)

    shown = {name for name, _, _ in run_values}
    rows = tuple(
        row(cell.row, cell.column, cell.metric, cell.unit, cell.value)
        for cell in cells
        if (cell.value is not None or points.get(cell.key) is not None) and (all_rows or cell.row in shown)
    ) + tuple(row(r, c, m, settings[(c, m)], None) for r, c, m in own)
    provenance = f"“This run”: {data} data, {backbone} backbone, {mode} mode"
    if same_data:
        provenance += "; difference = this run − paper."
    else:
        provenance += (f"; the paper's numbers come from its own data, so no difference is taken: compare the effects"
                       f"{f' (Δ vs {baseline})' if baseline else ''}, not the values.")
    if "synth" in data.lower():
        provenance += (
            f" These numbers come from synthetic data: they show that the code runs end to end and are "
            f"not {citation}'s numbers; only runs on the real benchmarks can be compared with them."
        )
    return ComparisonTable(f"{citation}, Table {table}: {caption}", provenance, rows, same_data=same_data,
                           baseline=baseline)


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
