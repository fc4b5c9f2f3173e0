"""SCface rank-1 that one chapter records for another.

Grm et al. (2023) set their SCface result beside earlier methods (Table 4); this book also computes two
contemporary methods on SCface, Chai et al.'s (chapter 2) and Ling et al.'s (chapter 3). Those chapters
record their method's rank-1 in its run folder (``metrics.json``, key :data:`KEY`): each distance's
probes, all cameras, against all mugshots, without fine-tuning on SCface, with its identity-bootstrap
interval. Chapter 5 reads the records under its results root that were computed in its own mode on the
same SCface folder (run folders are the only interface between chapters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from lrfr.runs import CONFIG_FILE, METRICS_FILE, RunFolder, RunFolderError
from lrfr.stats import Estimate

KEY = "scface_rank1"


@dataclass(frozen=True)
class SCfaceRecord:
    """One method's SCface rank-1 (%) per distance ("d1", "d2", "d3"), as a chapter computed it."""

    method: str
    chapter: str
    mode: str
    scface: str  # the SCface folder, resolved
    rank1: Mapping[str, Estimate]

    def row(self, distance: int) -> str:
        """The method's row name in another chapter's table."""
        return f"{self.method} (this book, {self.chapter}), d{distance}"


def record_scface(run: RunFolder, method: str, chapter: str, mode: str, scface: str | Path,
                  rank1: Mapping[str, Estimate]) -> SCfaceRecord:
    """Write ``method``'s SCface rank-1 per distance into ``run``'s metrics (:data:`KEY`)."""
    record = SCfaceRecord(method, chapter, mode, str(Path(scface).resolve()), dict(rank1))
    run.update_metrics({KEY: {"method": method, "chapter": chapter, "mode": mode, "scface": record.scface,
                              "rank1": {d: e.to_dict() for d, e in rank1.items()}}})
    return record


def recorded_scface(results_root: str | Path, mode: str, scface: str | Path) -> list[SCfaceRecord]:
    """The records of the run folders under ``results_root`` made in ``mode`` on the SCface folder
    ``scface``; of several for one (chapter, method), the most recently written. Sorted by chapter."""
    wanted, newest = str(Path(scface).resolve()), {}
    for path in sorted(Path(results_root).glob(f"*/{METRICS_FILE}")):
        if not (path.parent / CONFIG_FILE).is_file():
            continue  # not a run folder
        entry = RunFolder.open(path.parent).metrics().get(KEY)
        if entry is None:
            continue
        try:
            if entry["mode"] != mode or entry["scface"] != wanted:
                continue
            record = SCfaceRecord(entry["method"], entry["chapter"], mode, wanted,
                                  {d: Estimate(**e) for d, e in entry["rank1"].items()})
        except (KeyError, TypeError, AttributeError) as error:
            raise RunFolderError(f"{path}: {KEY!r} is not a record written by record_scface ({error!r})") from error
        key, written = (record.chapter, record.method), path.stat().st_mtime
        if key not in newest or written > newest[key][0]:
            newest[key] = (written, record)
    return [record for _, (_, record) in sorted(newest.items())]
