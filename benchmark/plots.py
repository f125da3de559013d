"""Drawing, shared by the demo figure and the HTML report: forecast panels and curves.

Everything here takes plain arrays and numbers (what :mod:`dfbench.figure` computes),
so the demo PNG and the report's figures are one drawing code. Figures are drawn with
the Agg backend only: files, no display, same pixels on servers and CI.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

SEG_IGNORE = 255
DEPTH_CMAP = "magma_r"  # near is bright: the eye finds close objects first
VOID_COLOUR = (0.85, 0.85, 0.85)
STAT_LABELS = {"best": "best of {n}", "mean": "mean of {n}", "single": "forecast"}


@dataclass
class Forecast:
    """One row of maps for one model and statistic.

    Attributes:
        model: display name.
        stat: ``best``, ``mean`` or ``single`` (how the row's features were chosen).
        maps: task (``seg``/``depth``) -> one map [h, w] per target step.
        num_samples: samples drawn (for the ``best of S`` label).
    """

    model: str
    stat: str
    maps: dict[str, list[np.ndarray]]
    num_samples: int = 1

    @property
    def label(self) -> str:
        return f"{self.model}\n{STAT_LABELS[self.stat].format(n=self.num_samples)}"


@dataclass
class SampleStrip:
    """Every sample of one stochastic model at the last target step, for one task.

    ``best`` is the index of the best sample (framed in the strip).
    """

    model: str
    task: str
    maps: list[np.ndarray]
    best: int | None = None


@dataclass
class ClipPanels:
    """What one clip's figure shows.

    Attributes:
        title: the figure's title (data set, clip, horizon).
        context: RGB frames [h, w, 3] the models saw; future: the true future frames.
        steps: a label per target step (e.g. ``+1 (0.1 s)``).
        truth: task -> true map per target step (255 / 0 where unlabelled).
        forecasts: model rows, in table order.
        strips: sample strips of stochastic models.
        class_names: segmentation classes, for the legend.
    """

    title: str
    context: list[np.ndarray]
    future: list[np.ndarray]
    steps: list[str]
    truth: dict[str, list[np.ndarray]]
    forecasts: list[Forecast] = field(default_factory=list)
    strips: list[SampleStrip] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        return [t for t in ("seg", "depth") if t in self.truth]


def seg_colours(num_classes: int) -> np.ndarray:
    """[C, 3] class colours: tab10, then tab20 beyond ten classes."""
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    return np.array([cmap(i % cmap.N)[:3] for i in range(num_classes)])


def seg_image(labels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Class map [h, w] -> RGB [h, w, 3]; void pixels grey."""
    labels = np.asarray(labels)
    out = np.empty((*labels.shape, 3))
    out[:] = VOID_COLOUR
    known = labels < len(colours)
    out[known] = colours[labels[known]]
    return out


def depth_image(depth: np.ndarray, max_depth: float) -> np.ndarray:
    """Depth [h, w] metres -> RGB; invalid (not positive) pixels grey."""
    depth = np.asarray(depth, dtype=float)
    rgb = np.array(plt.get_cmap(DEPTH_CMAP)(np.clip(depth / max_depth, 0, 1)))[..., :3]
    rgb[~(depth > 0)] = VOID_COLOUR
    return rgb


def _tile(ax, image: np.ndarray, title: str | None = None, frame: str | None = None) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7, pad=2)
    if frame:
        for spine in ax.spines.values():
            spine.set_edgecolor(frame)
            spine.set_linewidth(2.5)


def max_depth_of(panels: ClipPanels) -> float:
    """One depth scale per figure: the truth's largest depth, so every row is comparable."""
    maps = panels.truth.get("depth", [])
    valid = [float(np.asarray(m)[np.asarray(m) > 0].max()) for m in maps if (np.asarray(m) > 0).any()]
    return max(valid) if valid else 80.0


def strip_indices(count: int, best: int | None, columns: int) -> list[int]:
    """Which samples a strip shows: the first ``columns``, with the best one always among them."""
    shown = list(range(min(count, columns)))
    if best is not None and best not in shown and shown:
        shown[-1] = best
    return shown


def forecast_figure(panels: ClipPanels, strip_columns: int = 8, tile: float = 1.15) -> Figure:
    """The clip figure: frames on top, then truth and each model as seg and depth maps.

    Layout (no empty tiles): one row of the context frames and the true future frames;
    one row per model statistic with one column per (task, step); one strip of samples
    per stochastic model (its best sample framed); the class legend and depth scale.
    """
    tasks, steps = panels.tasks, len(panels.steps)
    colours = seg_colours(max(len(panels.class_names), 1))
    max_depth = max_depth_of(panels)
    rows = [("Ground truth", panels.truth)] + [(f.label, f.maps) for f in panels.forecasts]
    widths = [len(panels.context) + len(panels.future), len(tasks) * steps]
    widths += [len(strip_indices(len(s.maps), s.best, strip_columns)) for s in panels.strips]
    columns = max(widths)
    ratios = [1.0] * (1 + len(rows) + len(panels.strips)) + [0.55]
    fig = plt.figure(figsize=(tile * columns + 1.7, tile * 1.08 * sum(ratios) + 0.7))
    fig.suptitle(panels.title, fontsize=10, y=1 - 0.12 / fig.get_figheight())
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios, hspace=0.24, left=1.6 / fig.get_figwidth(),
                            right=0.99, top=1 - 0.5 / fig.get_figheight(), bottom=0.3 / fig.get_figheight())

    def row_axes(index: int, count: int) -> list:
        cells = grid[index].subgridspec(1, columns, wspace=0.06)
        first = (columns - count) // 2  # centred when a row has fewer tiles than the widest
        return [fig.add_subplot(cells[0, first + c]) for c in range(count)]

    axes = row_axes(0, widths[0])
    for c, (ax, image) in enumerate(zip(axes, panels.context + panels.future)):
        is_context = c < len(panels.context)
        title = f"context {c + 1}" if is_context else f"true {panels.steps[c - len(panels.context)]}"
        _tile(ax, image, title, frame=None if is_context else "#2a7")
    _row_label(axes[0], "frames")

    for r, (label, maps) in enumerate(rows):
        axes = row_axes(1 + r, widths[1])
        for t, task in enumerate(tasks):
            for s in range(steps):
                image = maps[task][s]
                rgb = seg_image(image, colours) if task == "seg" else depth_image(image, max_depth)
                name = "seg" if task == "seg" else "depth"
                _tile(axes[t * steps + s], rgb, f"{name} {panels.steps[s].split()[0]}" if r == 0 else None)
        _row_label(axes[0], label)

    for r, strip in enumerate(panels.strips):
        shown = strip_indices(len(strip.maps), strip.best, strip_columns)
        axes = row_axes(1 + len(rows) + r, len(shown))
        for ax, index in zip(axes, shown):
            image = strip.maps[index]
            rgb = seg_image(image, colours) if strip.task == "seg" else depth_image(image, max_depth)
            is_best = index == strip.best
            _tile(ax, rgb, f"sample {index + 1}" + (" (best)" if is_best else ""), frame="#d33" if is_best else None)
        _row_label(axes[0], f"{strip.model}\n{len(strip.maps)} samples, {panels.steps[-1].split()[0]}")
    _legends(fig, grid[-1], panels, colours, max_depth)
    return fig


def _row_label(ax, text: str) -> None:
    ax.set_ylabel(text, fontsize=7, rotation=0, ha="right", va="center", labelpad=6)


def _legends(fig: Figure, cell, panels: ClipPanels, colours: np.ndarray, max_depth: float) -> None:
    parts = cell.subgridspec(1, 2, width_ratios=[3, 1], wspace=0.3)
    if "seg" in panels.tasks and panels.class_names:
        ax = fig.add_subplot(parts[0, 0])
        ax.axis("off")
        handles = [Patch(color=colours[i], label=name) for i, name in enumerate(panels.class_names)]
        handles.append(Patch(color=VOID_COLOUR, label="void / no label"))
        ax.legend(handles=handles, loc="center", ncol=min(len(handles), 8), fontsize=7, frameon=False,
                  title="segmentation classes", title_fontsize=7)
    if "depth" in panels.tasks:
        ax = fig.add_subplot(parts[0, 1])
        gradient = np.linspace(0, max_depth, 256)[None, :]
        ax.imshow(gradient, aspect="auto", cmap=DEPTH_CMAP, vmin=0, vmax=max_depth, extent=(0, max_depth, 0, 1))
        ax.set_yticks([])
        ax.set_title("depth (m)", fontsize=7, pad=2)
        ax.tick_params(labelsize=6)


def accuracy_flops_figure(points: dict[str, list[tuple[str, float, float, float | None]]], title: str) -> Figure:
    """The paper's Figure 2: one panel per metric, accuracy against GFLOPs per model.

    Args:
        points: panel title -> (display name, GFLOPs, primary value, mean value or None).
            A stochastic model's primary value is its best sample; its mean is drawn hollow.
    """
    panels = list(points.items())
    names = list(dict.fromkeys(name for _, rows in panels for name, *_ in rows))
    colour = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    fig.suptitle(title, fontsize=10)
    for ax, (panel_title, rows) in zip(axes[0], panels):
        for name, gflops, value, mean in rows:
            ax.scatter([gflops], [value], color=colour[name], s=36, zorder=3)
            if mean is not None and not math.isnan(mean):
                ax.scatter([gflops], [mean], facecolors="none", edgecolors=colour[name], s=36, zorder=3)
                ax.plot([gflops, gflops], [mean, value], color=colour[name], lw=0.8, zorder=2)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short ranges
        ax.set_xlabel("GFLOPs per clip (log scale)", fontsize=8)
        ax.set_title(panel_title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.tick_params(labelsize=7)
    handles = [plt.Line2D([], [], color=colour[n], marker="o", ls="", label=n) for n in names]
    handles += [plt.Line2D([], [], color="grey", marker="o", ls="", label="best of S or single"),
                plt.Line2D([], [], color="grey", marker="o", mfc="none", ls="", label="mean of S")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7, frameon=False)
    rows = math.ceil(len(handles) / 4)
    fig.tight_layout(rect=(0, 0.07 * rows + 0.02, 1, 0.94))
    return fig


def best_of_k_figure(curves: dict[str, dict[str, dict[int, float]]], title: str) -> Figure:
    """Expected best-of-k against k, one panel per metric and one line per model.

    Args:
        curves: panel title -> model display name -> {k: value}.
    """
    panels = list(curves.items())
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    fig.suptitle(title, fontsize=10)
    for ax, (panel_title, models) in zip(axes[0], panels):
        for name, curve in models.items():
            ks = sorted(curve)
            ax.plot(ks, [curve[k] for k in ks], marker="o", ms=3, label=name)
        ax.set_xlabel("samples k", fontsize=8)
        ax.set_title(panel_title, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes; closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def save_png(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Writes the figure to ``path`` through a temporary name; closes it."""
    from dfbench.files import file_mode, writing

    data = png_bytes(fig, dpi)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.chmod(file_mode())
        tmp.replace(path)
    return path
