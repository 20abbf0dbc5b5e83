"""Shared plotting helpers: matplotlib is optional (``priorl[plot]``) and imported only when a plot is drawn."""

from __future__ import annotations

from pathlib import Path

NO_MATPLOTLIB = "matplotlib is not installed, so no plot was drawn (pip install 'priorl[plot]')"


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig, path: str | Path) -> str:
    """Write ``fig`` as a PNG at ``path``, close it, and return the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
