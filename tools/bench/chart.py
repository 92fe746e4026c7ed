"""The benchmarks' PNG chart: one panel per section of a report.Table, one group of bars per
figure (row), one bar per column (image), the value written at each bar and the goal, where
there is one, drawn as a dashed line. The title names the date and the machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from report import Table, number

#: Colours from the last column backwards: the judged one (the project, last) in the strongest.
COLOURS = ["#1565c0", "#64b5f6", "#9e9e9e", "#ef6c00", "#2e7d32"]


def bar_chart(table: Table, out: Path, title: str, caption: str) -> Path:
    # A panel of zeros (error counts, when there were none) says nothing a chart can show.
    sections = {
        name: rows
        for name, rows in table.sections().items()
        if any(v for row in rows for v in row.values.values())
    }
    columns = list(table.columns)
    heights = [max(1.2, 0.32 * len(rows) * len(columns) + 0.5) for rows in sections.values()]
    figure, axes = plt.subplots(
        len(sections),
        1,
        figsize=(10, sum(heights) + 1.2),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    bar = 0.8 / len(columns)
    for axis, (name, rows) in zip(axes[:, 0], sections.items(), strict=True):
        unit = rows[0].unit
        top = max((v for r in rows for v in r.values.values() if v is not None), default=0) or 1
        for index, column in enumerate(columns):
            ys, widths, texts = [], [], []
            for position, row in enumerate(rows):
                value = row.values.get(column)
                if value is None:
                    continue
                ys.append(position + (index - (len(columns) - 1) / 2) * bar)
                widths.append(value)
                texts.append(number(value, row.unit, row.digits))
            colour = COLOURS[(len(columns) - 1 - index) % len(COLOURS)]
            axis.barh(ys, widths, height=bar * 0.9, color=colour, label=column)
            for y, width, text in zip(ys, widths, texts, strict=True):
                axis.text(width + top * 0.01, y, text, va="center", fontsize=7)
        labelled = False
        for position, row in enumerate(rows):
            if row.goal is not None and row.goal.limit is not None:
                axis.vlines(
                    row.goal.limit,
                    position - 0.45,
                    position + 0.45,
                    colors="#c62828",
                    linestyles="dashed",
                    label=None if labelled else "goal",
                )
                labelled = True
        labels = [row.label.replace("`", "") for row in rows]
        axis.set_yticks(range(len(rows)), labels, fontsize=8)
        axis.invert_yaxis()
        axis.set_xlim(0, top * 1.18)
        axis.set_title(f"{name} ({unit})" if unit else name, fontsize=10)
        axis.grid(axis="x", alpha=0.3)
        axis.tick_params(axis="x", labelsize=7)
    legend: dict[str, object] = {}
    for axis in axes[:, 0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    axes[0, 0].legend(list(legend.values()), list(legend), fontsize=8, loc="lower right")
    return _save(figure, f"{title}\n{caption}", out, top=0.98, dpi=110)


def series_chart(
    times: list[float],
    panels: dict[str, tuple[str, list[float | None]]],
    out: Path,
    title: str,
    caption: str,
    limits: dict[str, float] | None = None,
) -> Path:
    """A time series chart (the soak test): one panel per series, ``{title: (unit, values)}``
    over ``times`` in minutes; a value of ``limits`` is drawn as a dashed line on its panel."""
    columns = 2
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(11, 2.1 * rows + 1), squeeze=False)
    for axis, (name, (unit, values)) in zip(axes.flat, panels.items(), strict=False):
        points = [(t, v) for t, v in zip(times, values, strict=True) if v is not None]
        axis.plot([t for t, _ in points], [v for _, v in points], color=COLOURS[0], linewidth=1.2)
        if limits and name in limits:
            axis.axhline(limits[name], color="#c62828", linestyle="dashed", linewidth=1)
        axis.set_title(f"{name} ({unit})" if unit else name, fontsize=9)
        top = max([v for _, v in points] + [(limits or {}).get(name, 0.0)])
        axis.set_ylim(0, top * 1.15 or 1)  # from zero: a flat line looks flat
        axis.grid(alpha=0.3)
        axis.tick_params(labelsize=7)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    for axis in axes.flat[max(0, len(panels) - columns) : len(panels)]:
        axis.set_xlabel("minutes", fontsize=8)
    return _save(figure, f"{title}\n{caption}", out, top=0.97, dpi=100)


def _save(figure: Any, heading: str, out: Path, *, top: float, dpi: int) -> Path:
    """Title the figure, lay it out under the title and write it to ``out``."""
    figure.suptitle(heading, fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, top))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=dpi)
    plt.close(figure)
    return out
