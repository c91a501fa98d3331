"""What a reader sees of a figure: the boxes its texts, legends and panels take once drawn, and which overlap."""

from itertools import combinations


def boxes(figure) -> list[tuple[str, object]]:
    """(name, window extent) of every piece of a drawn figure that holds text or data: the title, each legend, and
    per panel its plotting area, title, axis labels and visible tick labels."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    found = [("legend (figure)", legend.get_window_extent(renderer)) for legend in figure.legends]
    if figure._suptitle is not None:
        found.append(("title", figure._suptitle.get_window_extent(renderer)))
    for i, ax in enumerate(figure.axes):
        found.append((f"panel {i}", ax.get_window_extent(renderer)))
        for name, text in (("title", ax.title), ("x label", ax.xaxis.label), ("y label", ax.yaxis.label)):
            if text.get_text() and text.get_visible():
                found.append((f"{name} of panel {i}", text.get_window_extent(renderer)))
        if ax.get_legend() is not None:
            found.append((f"legend of panel {i}", ax.get_legend().get_window_extent(renderer)))
        ticks = [t for axis, index in ((ax.xaxis, 0), (ax.yaxis, 1)) for t in axis.get_ticklabels()
                 if t.get_text() and t.get_visible() and shown(axis, t.get_position()[index])]
        found += [(f"tick label {t.get_text()!r} of panel {i}", t.get_window_extent(renderer)) for t in ticks]
    return found


def shown(axis, value: float) -> bool:
    """Whether a tick at `value` is drawn: inside the axis' view limits (matplotlib lists ticks beyond them)."""
    low, high = sorted(axis.get_view_interval())
    return low - 1e-9 * abs(high - low) <= value <= high + 1e-9 * abs(high - low)


def overlapping(figure) -> list[tuple[str, str]]:

    """The pairs of pieces of a figure whose boxes overlap (tick labels of one axis may not touch each other
    either)."""
    return [(a, b) for (a, box_a), (b, box_b) in combinations(boxes(figure), 2) if box_a.overlaps(box_b)]
