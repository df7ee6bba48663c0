"""Matplotlib figures without pyplot (the Agg canvas: no display, no global backend
switch), written atomically so that a kill never leaves a half-written PNG.
"""

import os
import sys

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfgan_cifar.atomic import replacing


def new_figure(figsize):
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, dpi=100):
    """Writes `fig` as PNG to `path` via a temporary file in the same folder, then closes it.

    Returns:
      `path` as a string.
    """
    path = os.fspath(path)
    try:
        with replacing(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        if "matplotlib.pyplot" in sys.modules:  # a pyplot figure would otherwise stay registered
            sys.modules["matplotlib.pyplot"].close(fig)
    return path
