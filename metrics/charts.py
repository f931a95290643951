"""PNG charts for the monthly e-mail and the dashboard (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SEVERITY_COLOURS = {"P0": "#b3001b", "P1": "#e0580c", "P2": "#c99a00", "P3": "#5b6f82"}


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _style(axis, title: str) -> None:
    axis.set_title(title, loc="left", fontsize=11, fontweight="bold", color="#222")
    for side in ("top", "right"):
        axis.spines[side].set_visible(False)
    axis.tick_params(labelsize=8, colors="#444")
    axis.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    axis.set_axisbelow(True)


def incidents_by_severity(trend: list[dict]) -> bytes:
    """Stacked bars: counted incidents per month by severity."""
    figure, axis = plt.subplots(figsize=(6.4, 2.6))
    labels = [row["month"][2:] for row in trend]
    bottom = [0] * len(trend)
    for level in ("P0", "P1", "P2", "P3"):
        values = [row["by_severity"][level] for row in trend]
        axis.bar(labels, values, bottom=bottom, color=SEVERITY_COLOURS[level], label=level, width=0.7)
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    _style(axis, "Incidents per month by severity")
    axis.legend(ncol=4, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(0, -0.12))
    axis.yaxis.get_major_locator().set_params(integer=True)
    return _png(figure)


def ttr_trend(trend: list[dict]) -> bytes:
    """Median time to resolve per month, in minutes (months without data are gaps)."""
    figure, axis = plt.subplots(figsize=(6.4, 2.4))
    labels = [row["month"][2:] for row in trend]
    positions = list(range(len(trend)))
    values = [row["ttr_median"] if row["ttr_median"] is not None else float("nan") for row in trend]
    axis.plot(positions, values, marker="o", color="#1f5f8b", linewidth=2)
    for position, value in zip(positions, values, strict=True):
        if value == value:  # not NaN
            axis.annotate(
                f"{value:.0f}", (position, value), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7
            )
    _style(axis, "Median time to resolve (minutes)")
    axis.set_xticks(positions, labels)
    known = [value for value in values if value == value]
    axis.set_ylim(0, (max(known) * 1.25) if known else 1)
    axis.set_xlim(-0.5, len(trend) - 0.5)
    return _png(figure)


def horizontal_bars(title: str, items: list[tuple[str, float]], colour: str = "#1f5f8b") -> bytes:
    figure, axis = plt.subplots(figsize=(6.4, 0.4 + 0.32 * max(len(items), 1)))
    names = [name for name, _ in items][::-1]
    values = [value for _, value in items][::-1]
    axis.barh(names, values, color=colour, height=0.6)
    for index, value in enumerate(values):
        axis.text(value, index, f" {value:g}", va="center", fontsize=8)
    _style(axis, title)
    axis.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    axis.grid(axis="y", visible=False)
    return _png(figure)


def burndown(rows: list[dict]) -> bytes:
    """Open and overdue action items at each month's end."""
    figure, axis = plt.subplots(figsize=(6.4, 2.4))
    positions = list(range(len(rows)))
    axis.plot(positions, [row["open"] for row in rows], marker="o", color="#1f5f8b", linewidth=2, label="open")
    axis.plot(positions, [row["overdue"] for row in rows], marker="o", color="#b91c1c", linewidth=2, label="overdue")
    _style(axis, "Action items open at month end")
    axis.set_xticks(positions, [row["month"][2:] for row in rows])
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8, frameon=False, loc="upper left")
    return _png(figure)
