"""What the benchmarks print: markdown tables with one row per figure and one column per subject
(an image, or one column of measured values), the best value of a row in bold and, where the
benchmark sets one, a goal column that says whether the judged column meets it.

The same rows feed the chart (tools/bench/chart.py): a row's ``section`` is its chart panel.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

MET, MISSED = "✓", "✗"


def machine() -> str:
    """The machine the figures were measured on: cores and load average now."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"


def today() -> str:
    return time.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Goal:
    """At most (or at least) ``limit``; and/or better than ``factor`` times each column named in
    ``than``."""

    limit: float | None = None
    than: tuple[str, ...] = ()
    at_most: bool = True
    factor: float = 1.0

    def met(self, value: float, row: Mapping[str, float | None]) -> bool:
        if self.limit is not None and (value > self.limit if self.at_most else value < self.limit):
            return False
        for other in self.than:
            bar = row.get(other)
            if bar is not None:
                bar *= self.factor
            if bar is not None and (value > bar if self.at_most else value < bar):
                return False
        return True

    def text(self, unit: str) -> str:
        parts = []
        if self.limit is not None:
            limit = f"{self.limit:g}"
            parts.append(f"{'≤' if self.at_most else '≥'} {limit}{_spaced(unit)}")
        if self.than:
            times = "" if self.factor == 1.0 else f"{self.factor:g}x "
            parts.append(f"{'≤' if self.at_most else '≥'} {times}{', '.join(self.than)}")
        return ", ".join(parts)


@dataclass
class Row:
    label: str
    values: dict[str, float | None]
    unit: str = ""
    digits: int = 1
    #: "lower" or "higher" is better (the best is bold); None: no best (a count, a size floor).
    better: str | None = "lower"
    goal: Goal | None = None
    section: str = ""


def number(value: float, unit: str, digits: int) -> str:
    return f"{value:.{digits}f}{_spaced(unit)}"


def _spaced(unit: str) -> str:
    return unit if not unit or unit in ("x", "%") else f" {unit}"


@dataclass
class Table:
    """``columns``: the subjects; ``judged``: the column goals are judged on (default: last)."""

    columns: Sequence[str]
    title: str = ""
    judged: str | None = None
    header: str = "figure"
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        label: str,
        values: Mapping[str, float | None] | float | None,
        unit: str = "",
        *,
        digits: int = 1,
        better: str | None = "lower",
        goal: Goal | None = None,
        section: str = "",
    ) -> Row:
        if values is None or isinstance(values, int | float):
            values = {self.columns[0]: values}
        row = Row(label, dict(values), unit, digits, better, goal, section)
        self.rows.append(row)
        return row

    @property
    def has_goals(self) -> bool:
        return any(row.goal is not None for row in self.rows)

    def _cells(self, row: Row) -> list[str]:
        present = {k: v for k, v in row.values.items() if v is not None}
        best: float | None = None
        if row.better and len(present) > 1:
            pick = min if row.better == "lower" else max
            best = pick(present.values())
        cells = []
        for column in self.columns:
            value = row.values.get(column)
            if value is None:
                cells.append("—")
                continue
            text = number(value, row.unit, row.digits)
            cells.append(f"**{text}**" if best is not None and value == best else text)
        if self.has_goals:
            cells.append(self._goal_cell(row))
        return cells

    def _goal_cell(self, row: Row) -> str:
        if row.goal is None:
            return ""
        judged = row.values.get(self.judged or self.columns[-1])
        text = row.goal.text(row.unit)
        if judged is None:
            return text
        return f"{text} {MET if row.goal.met(judged, row.values) else MISSED}"

    def markdown(self) -> str:
        head = [self.header, *self.columns] + (["goal"] if self.has_goals else [])
        lines = [f"{self.title}", ""] if self.title else []
        lines.append("| " + " | ".join(head) + " |")
        lines.append(
            "| --- |" + " ---: |" * len(self.columns) + (" --- |" if self.has_goals else "")
        )
        for row in self.rows:
            lines.append("| " + " | ".join([row.label, *self._cells(row)]) + " |")
        return "\n".join(lines)

    def sections(self) -> dict[str, list[Row]]:
        """The rows by section, in order of first appearance (the chart's panels)."""
        grouped: dict[str, list[Row]] = {}
        for row in self.rows:
            grouped.setdefault(row.section or self.title, []).append(row)
        return grouped
