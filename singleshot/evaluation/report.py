"""Presenting an :class:`EvalResult`: a readable table and a plot of its curves."""

from __future__ import annotations

from pathlib import Path

from singleshot.errors import SingleshotError
from singleshot.evaluation.result import EvalResult


class PlotError(SingleshotError, RuntimeError):
    """A plot that cannot be drawn (matplotlib missing); the message says what to install."""


def format_table(result: EvalResult) -> str:
    """The metrics as an aligned two-column table, followed by the settings they were measured with."""
    width = max([len(k) for k in result.metrics] + [6])
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{name:<{width}}  {value:.4f}" for name, value in result.metrics.items()]
    if result.details:
        settings = ", ".join(f"{k}={v}" for k, v in result.details.items() if not isinstance(v, (dict, list)))
        lines.append(f"({result.protocol}: {settings})")
    return "\n".join(lines)


def plot_curves(result: EvalResult, path: str | Path) -> Path:
    """Draw every curve of ``result`` into a PNG at ``path`` (needs matplotlib: ``pip install singleshot[plot]``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("plotting needs matplotlib: pip install 'singleshot[plot]'") from None
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for curve in result.curves:
        value = result.metrics.get(curve.name)
        label = f"{curve.name} ({value:.3f})" if value is not None else curve.name
        ax.plot(curve.x, curve.y, label=label)
    if result.curves:
        ax.set_xlabel(result.curves[0].x_label)
        ax.set_ylabel(result.curves[0].y_label)
        ax.legend(loc="lower left" if result.curves[0].x_label == "recall" else "lower right")
    ax.set_title(f"{result.protocol} evaluation")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
