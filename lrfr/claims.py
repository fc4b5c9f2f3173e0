"""The papers' claims as data, decided from an interval, kept in ``claims.json`` and shown as a box.

A **claim** (:class:`Claim`) is one row of ``lrfr/references/claims.csv``, beside the papers' table
cells: the paper, an id (``"<paper>.<name>"``), the paper's sentence, where it says so (table,
figure, section), the metric and the comparison that decides it (e.g. rank-1 of "Ours − Baseline
(ArcFace)"), the side of ``null`` the paper puts it on (``direction``: "greater" or "less"; ``null``
is 0 for a difference, 0.5 for an AUC), and the paper's own number where it prints one: the
difference of two printed cells ``minuend − subtrahend`` (both shown, labelled) or a single value,
with a note where it prints none (a figure read qualitatively). Chapters only name claim ids.

A **result** (:class:`ClaimResult`) is a claim with this run's estimate of the same comparison (a
:class:`lrfr.stats.Estimate`: value and 95 % interval, normally the *paired* difference of two
methods on the same probes) and the verdict :func:`lrfr.stats.verdict` computes from its interval:
*reproduced* (the interval excludes ``null`` on the paper's side), *contradicted* (excludes it on the
other side) or *inconclusive*. Never chosen by hand: :func:`evaluate` estimates and decides in one step.
``parts`` keeps the absolute values behind a difference (each method's metric with its interval) and
``note`` the reason found when a claim does not reproduce.

A chapter writes its results into its run folder as ``claims.json`` (:func:`write_claims`, with the
chapter, mode and data that produced them); ``lrfr book`` collects every chapter's file into the
scorecard page (:func:`scorecard_markdown`) and ``lrfr bench book`` prints one JSON line per claim.

Notebook use::

    from lrfr import claims, stats

    box = claims.show_claims(["chai2023.ours_beats_arcface"])   # top of the chapter: pending
    ...
    boot = stats.Bootstrap(probe_labels, seed=seed)
    ours, base = stats.mean(stats.rank_hits(ours_ranks, 1), 100), stats.mean(stats.rank_hits(base_ranks, 1), 100)
    result = claims.evaluate("chai2023.ours_beats_arcface", boot, ours - base,
                             parts={"Ours": ours, "Baseline (ArcFace)": base})
    claims.write_claims(run, [result], chapter="02_recognizability", mode=mode, data="SynthFace (synthetic)")
    box.update([result])                                       # the box at the top now shows verdicts
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lrfr.io import write_json_atomic
from lrfr.references import reference_values
from lrfr.stats import DIRECTIONS, VERDICTS, Bootstrap, Estimate, Statistic, verdict

CLAIMS_FILE = "claims.json"
FORMAT_VERSION = 1
_CELL_FIELDS = ("table", "row", "column", "metric")
_COLUMNS = ("paper", "id", "claim", "source", "metric", "comparison", "direction", "null",
            "paper_minuend", "paper_subtrahend", "paper_value", "paper_note")


class ClaimsFileError(ValueError):
    """A ``claims.json`` that is not what :func:`write_claims` writes; the message names file and key."""


@dataclass(frozen=True)
class PaperCell:
    """A printed cell of a paper's table (see :mod:`lrfr.references`)."""

    table: int
    row: str
    column: str
    metric: str

    @property
    def label(self) -> str:
        return f"{self.row}, {self.column}"


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and how this book decides it (see the module docstring)."""

    paper: str
    id: str
    claim: str
    source: str
    metric: str
    comparison: str
    direction: str
    null: float = 0.0
    minuend: PaperCell | None = None
    subtrahend: PaperCell | None = None
    value: float | None = None
    note: str = ""

    def paper_parts(self) -> dict[str, float | None]:
        """The paper's printed values behind its difference, labelled ``"<row>, <column>"``."""
        if self.minuend is None or self.subtrahend is None:
            return {}
        printed = {(c.table, c.row, c.column, c.metric): c.value for c in reference_values(self.paper)}
        return {cell.label: printed[(cell.table, cell.row, cell.column, cell.metric)]
                for cell in (self.minuend, self.subtrahend)}

    def paper_number(self) -> float | None:
        """The paper's number for the comparison: minuend − subtrahend, or its single value, or None."""
        parts = list(self.paper_parts().values())
        if parts:
            return None if None in parts else parts[0] - parts[1]
        return self.value


@cache
def _registry() -> dict[str, Claim]:
    with resources.files("lrfr.references").joinpath("claims.csv").open(encoding="utf-8", newline="") as stream:
        records = list(csv.DictReader(stream))
    return {record["id"]: _claim_from_record(record, f"claims.csv line {line}") for line, record in enumerate(records, 2)}


def _claim_from_record(record: Mapping[str, str], where: str) -> Claim:
    if tuple(record) != _COLUMNS:
        raise ValueError(f"{where}: columns {list(record)}; expected {list(_COLUMNS)}")
    if record["direction"] not in DIRECTIONS:
        raise ValueError(f"{where}: direction {record['direction']!r}; expected one of {DIRECTIONS}")
    cells = [_cell(record[name], f"{where} {name}") for name in ("paper_minuend", "paper_subtrahend")]
    if (cells[0] is None) != (cells[1] is None):
        raise ValueError(f"{where}: paper_minuend and paper_subtrahend must be both given or both empty")
    claim = Claim(
        paper=record["paper"], id=record["id"], claim=record["claim"], source=record["source"],
        metric=record["metric"], comparison=record["comparison"], direction=record["direction"],
        null=float(record["null"] or 0), minuend=cells[0], subtrahend=cells[1],
        value=float(record["paper_value"]) if record["paper_value"] else None, note=record["paper_note"],
    )
    claim.paper_parts()  # every cell must be a printed cell of the paper
    return claim


def _cell(text: str, where: str) -> PaperCell | None:
    if not text:
        return None
    parts = [part.strip() for part in text.split("|")]
    if len(parts) != 4 or not parts[0].isdigit():
        raise ValueError(f"{where} is {text!r}; expected 'table | row | column | metric'")
    return PaperCell(int(parts[0]), *parts[1:])


def claims(paper: str | None = None) -> list[Claim]:
    """Every claim (of ``paper`` if given), in the order of ``claims.csv``."""
    return [claim for claim in _registry().values() if paper in (None, claim.paper)]


def get_claim(claim_id: str) -> Claim:
    """The claim ``claim_id``; a KeyError naming it and the paper's valid ids otherwise."""
    registry = _registry()
    if claim_id not in registry:
        paper = claim_id.split(".", 1)[0]
        known = [key for key in registry if key.startswith(f"{paper}.")] or list(registry)
        raise KeyError(f"unknown claim id {claim_id!r}; expected one of {known} (lrfr/references/claims.csv)")
    return registry[claim_id]


# ----------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ClaimResult:
    """A claim decided by this run: its estimate, the verdict from the interval, the absolute values."""

    claim: Claim
    estimate: Estimate
    parts: dict[str, Estimate] = field(default_factory=dict)
    note: str = ""

    @property
    def verdict(self) -> str:
        return verdict(self.estimate, self.claim.direction, self.claim.null)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (NaN interval ends as null), with the claim's definition as decided."""
        claim = self.claim
        return {
            "id": claim.id, "paper": claim.paper, "claim": claim.claim, "source": claim.source,
            "metric": claim.metric, "comparison": claim.comparison, "direction": claim.direction, "null": claim.null,
            "paper_number": claim.paper_number(), "paper_parts": _labelled(claim.paper_parts()), "paper_note": claim.note,
            "estimate": _estimate_dict(self.estimate),
            "parts": [{"label": label, **_estimate_dict(value)} for label, value in self.parts.items()],
            "verdict": self.verdict, "note": self.note,
        }


def decide(claim_id: str, estimate: Estimate, *, parts: Mapping[str, Estimate] | None = None, note: str = "") -> ClaimResult:
    """The result of ``claim_id`` from an estimate of its comparison (e.g. from
    :func:`lrfr.stats.independent_difference` where the two sides are different test sets)."""
    return ClaimResult(get_claim(claim_id), estimate, dict(parts or {}), note)


def evaluate(claim_id: str, boot: Bootstrap, statistic: Statistic, *,
             parts: Mapping[str, Statistic] | None = None, note: str = "") -> ClaimResult:
    """Estimate ``statistic`` (the claim's comparison, normally a paired difference) and each of
    ``parts`` on the same resampled identities of ``boot``, and decide ``claim_id``."""
    claim = get_claim(claim_id)
    return ClaimResult(claim, boot.estimate(statistic), {k: boot.estimate(v) for k, v in (parts or {}).items()}, note)


def _labelled(values: Mapping[str, float | None]) -> list[dict[str, Any]]:
    """``[{"label", "value"}, ...]`` in order (a JSON object's keys would be sorted on writing)."""
    return [{"label": label, "value": value} for label, value in values.items()]


def _estimate_dict(estimate: Estimate) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in estimate.to_dict().items()}


# ----------------------------------------------------------------------------------- claims.json


@dataclass(frozen=True)
class ChapterClaims:
    """The contents of one chapter's ``claims.json``."""

    chapter: str
    mode: str
    data: str
    written: str
    claims: tuple[dict[str, Any], ...]
    path: Path | None = None


def write_claims(folder: Any, results: Sequence[ClaimResult], *, chapter: str, mode: str, data: str) -> Path:
    """Write ``claims.json`` into ``folder`` (a :class:`lrfr.runs.RunFolder` or a directory) atomically:
    the chapter, the mode and data that produced the results, when, and one record per result."""
    directory = Path(getattr(folder, "path", folder))
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory; expected the chapter's run folder")
    path = directory / CLAIMS_FILE
    write_json_atomic(path, {
        "format_version": FORMAT_VERSION, "chapter": chapter, "mode": mode, "data": data,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "claims": [result.to_dict() for result in results],
    })
    return path


_RECORD_KEYS = ("id", "claim", "source", "metric", "comparison", "direction", "paper_number", "estimate", "verdict")


def read_claims(path: str | Path) -> ChapterClaims:
    """A ``claims.json`` written by :func:`write_claims`; :class:`ClaimsFileError` naming the file and
    the key otherwise."""
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ClaimsFileError(f"{path} is not readable JSON ({error}); expected a claims.json of lrfr.claims") from None
    if not isinstance(content, dict):
        raise ClaimsFileError(f"{path} holds a JSON {type(content).__name__}; expected an object")
    for key in ("format_version", "chapter", "mode", "data", "written", "claims"):
        if key not in content:
            raise ClaimsFileError(f"{path} has no key {key!r}; expected the keys written by lrfr.claims.write_claims")
    if content["format_version"] != FORMAT_VERSION:
        raise ClaimsFileError(f"{path}: format_version {content['format_version']!r}; expected {FORMAT_VERSION}")
    if not isinstance(content["claims"], list):
        raise ClaimsFileError(f"{path}: 'claims' is a {type(content['claims']).__name__}; expected a list of records")
    for index, record in enumerate(content["claims"]):
        missing = [key for key in _RECORD_KEYS if not isinstance(record, dict) or key not in record]
        if missing:
            raise ClaimsFileError(f"{path}: claims[{index}] has no key(s) {missing}; expected {list(_RECORD_KEYS)}")
        if record["verdict"] not in VERDICTS:
            raise ClaimsFileError(f"{path}: claims[{index}]['verdict'] is {record['verdict']!r}; expected one of {VERDICTS}")
    return ChapterClaims(content["chapter"], content["mode"], content["data"], content["written"],
                         tuple(content["claims"]), path)


def find_claims(results_root: str | Path) -> list[ChapterClaims]:
    """The newest ``claims.json`` of each chapter among the run folders under ``results_root``."""
    newest: dict[str, ChapterClaims] = {}
    for path in sorted(Path(results_root).glob(f"*/{CLAIMS_FILE}")):
        found = read_claims(path)
        if found.chapter not in newest or found.written >= newest[found.chapter].written:
            newest[found.chapter] = found
    return [newest[chapter] for chapter in sorted(newest)]


# ----------------------------------------------------------------------------------- display


def _number(value: float | None, decimals: int = 2, signed: bool = False) -> str:
    return "–" if value is None else f"{value:{'+' if signed else ''}.{decimals}f}"


def _interval(record: Mapping[str, Any], signed: bool = False) -> str:
    """``value [low, high]`` with enough decimals to tell the three apart (2 at least, 8 at most)."""
    low, high = record.get("low"), record.get("high")
    decimals = _decimals(record["value"], None if low is None or high is None else high - low)
    bounds = "no interval" if low is None or high is None else f"[{_number(low, decimals, signed)}, {_number(high, decimals, signed)}]"
    return f"{_number(record['value'], decimals, signed)} {bounds}"


def _decimals(value: float | None, width: float | None) -> int:
    scales = [abs(x) for x in (value, width) if x is not None and math.isfinite(x) and x != 0]
    return 2 if not scales else min(8, max(2, 1 - math.floor(math.log10(min(scales)))))


def paper_text(record: Mapping[str, Any]) -> str:
    """The paper's number for a claim record: "71.92 − 70.33 = +1.58", a single value, or its note."""
    values = [part["value"] for part in record.get("paper_parts") or []]
    if values and None not in values:
        return " − ".join(_number(v) for v in values) + f" = {_number(record['paper_number'], signed=True)}"
    if record.get("paper_number") is not None:
        return _number(record["paper_number"])
    return record.get("paper_note") or "–"


def ours_text(record: Mapping[str, Any]) -> str:
    """This run's estimate "+1.20 [0.10, 2.30]" with the absolute values behind it, labelled."""
    text = _interval(record["estimate"], signed=record.get("null", 0) == 0)
    parts = "; ".join(f"{part['label']}: {_interval(part)}" for part in record.get("parts") or [])
    return f"{text} ({parts})" if parts else text


def _table_row(cells: Sequence[str]) -> str:
    """One markdown table row (``|`` inside a cell escaped)."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table's lines: the header, its rule and one line per row."""
    return [_table_row(header), "|" + "---|" * len(header), *map(_table_row, rows)]


_BOX_HEADER = ("claim", "paper", "comparison (metric)", "paper's number", "this run (95 %)", "verdict")


def _box_rows(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    return [(
        f"{r['claim']}" + (f" — {r['note']}" if r.get("note") else ""),
        f"{r['paper']} {r['source']}", f"{r['comparison']} ({r['metric']})",
        paper_text(r), ours_text(r) if r.get("verdict") else "pending", r.get("verdict", "pending"),
    ) for r in records]


class ClaimsBox:
    """The claims of a chapter as a table (HTML in the book, markdown elsewhere)."""

    def __init__(self, records: Sequence[Mapping[str, Any]], caption: str = "The paper's claims, decided by this run") -> None:
        self.records, self.caption = list(records), caption

    def _repr_markdown_(self) -> str:
        return "\n".join([f"**{self.caption}**", "", *_markdown_table(_BOX_HEADER, _box_rows(self.records))])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(name)}</th>" for name in _BOX_HEADER)
        body = "".join(
            f'<tr class="lrfr-{html.escape(row[-1])}">'
            + "".join(f"<td>{'<strong>' + html.escape(c) + '</strong>' if i == 5 else html.escape(c)}</td>"
                      for i, c in enumerate(row)) + "</tr>"
            for row in _box_rows(self.records)
        )
        return (f'<div class="lrfr-claims"><table><caption>{html.escape(self.caption)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                "<p><em>Verdict from the 95 % interval of this run's comparison: reproduced when it excludes the "
                "null on the paper's side, contradicted when on the other side, inconclusive otherwise.</em></p></div>")

    def __str__(self) -> str:
        return self._repr_markdown_()


def _pending(claim: Claim) -> dict[str, Any]:
    return {"claim": claim.claim, "paper": claim.paper, "source": claim.source, "metric": claim.metric,
            "comparison": claim.comparison, "paper_number": claim.paper_number(), "paper_parts": _labelled(claim.paper_parts()),
            "paper_note": claim.note}


class ClaimsDisplay:
    """A claims box shown once (e.g. at the top of a chapter) and updated in place when decided."""

    def __init__(self, claim_ids: Sequence[str]) -> None:
        from IPython.display import display

        self.claims = [get_claim(claim_id) for claim_id in claim_ids]
        self.handle = display(ClaimsBox([_pending(c) for c in self.claims], "The paper's claims (decided below)"),
                              display_id=True)

    def update(self, results: Sequence[ClaimResult]) -> None:
        """Replace the pending box with the decided results (in place: the box is not shown again)."""
        if self.handle is not None:
            self.handle.update(claims_box(results))


def show_claims(claim_ids: Sequence[str]) -> ClaimsDisplay:
    """Display the claims ``claim_ids`` as pending (unknown ids raise KeyError naming them); call
    ``.update(results)`` on the returned display once they are decided."""
    return ClaimsDisplay(claim_ids)


def claims_box(results: Sequence[ClaimResult]) -> ClaimsBox:
    """The box of decided results (``display(claims_box(results))`` in a notebook)."""
    return ClaimsBox([result.to_dict() for result in results])


# ----------------------------------------------------------------------------------- scorecard


_SCORECARD_HEADER = ("verdict", "claim", "comparison (metric)", "paper's number", "this run (95 %)")


def _scorecard_row(record: Mapping[str, Any]) -> tuple[str, ...]:
    return (f"**{record['verdict']}**", f"{record['claim']} ({record.get('paper', '')} {record['source']})".replace("( ", "("),
            f"{record['comparison']} ({record['metric']})", paper_text(record),
            _interval(record["estimate"], signed=record.get("null", 0) == 0))


def scorecard_markdown(chapters: Sequence[ChapterClaims]) -> str:
    """The scorecard of all chapters: the count of verdicts, a summary row per chapter (mode, data and its
    counts), then one section per chapter with a row per claim (verdict, claim, comparison, paper's number,
    ours with its interval); the absolute values behind each difference are in the chapter's claims box."""
    if not chapters:
        return "_No chapter has recorded claims yet: run `lrfr book` to decide them._"
    counts = {c.chapter: {v: sum(r["verdict"] == v for r in c.claims) for v in VERDICTS} for c in chapters}
    total = {v: sum(n[v] for n in counts.values()) for v in VERDICTS}
    lines = [f"{sum(total.values())} claims: " + ", ".join(f"{n} {v}" for v, n in total.items()) + ".", "",
             *_markdown_table(("chapter", "mode, data", *VERDICTS),
                              ((c.chapter, f"{c.mode}, {c.data}", *map(str, counts[c.chapter].values())) for c in chapters))]
    for c in chapters:
        lines += ["", f"## {c.chapter}", "", f"_{c.mode}, {c.data}; decided at {c.written} (UTC)._", "",
                  *_markdown_table(_SCORECARD_HEADER, map(_scorecard_row, c.claims))]
    return "\n".join(lines)
