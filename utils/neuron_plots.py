"""Figures of lesson 07: what each neuron reads, neuron counts against sparsity, and one neuron's motif.

Every function returns a plotly Figure; none shows it by itself. Feature-direction panels (equal aspect)
come from utils.plots.feature_directions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
import torch
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from utils.plots import MAX_FIGURE_PX, _cell, _grid

_COLORS = qualitative.Dark24


def _feature_color(f: int) -> str:
    return _COLORS[f % len(_COLORS)]


def neuron_weight_bars(W1: torch.Tensor, titles: Sequence[str] | None = None, cols: int | None = None) -> go.Figure:
    """The paper's per-neuron stacked bars: for each neuron k, its input weights W1[k, f], one colour per feature.

    Positive weights stack upwards, negative ones downwards (plotly's "relative" bars). A monosemantic neuron is
    one tall bar of a single colour; a polysemantic one stacks several.
    W1: (n_instances, n_hidden, n_features) or (n_hidden, n_features); one panel per instance.
    """
    W1 = torch.as_tensor(W1).detach().float().cpu()
    W1 = W1[None] if W1.ndim == 2 else W1
    n_inst, n_hidden, n_feat = W1.shape
    cols = cols or min(n_inst, 5)
    rows = math.ceil(n_inst / cols)
    fig = _grid(n_inst, titles, cols, shared_yaxes=True, horizontal_spacing=0.03,
                vertical_spacing=0.18 / rows if rows > 1 else 0.0)
    fig.update_annotations(font_size=12)
    for k in range(n_inst):
        row, col = _cell(k, cols)
        for f in range(n_feat):
            fig.add_trace(go.Bar(x=list(range(n_hidden)), y=W1[k, :, f].tolist(), name=f"feature {f}",
                                 marker_color=_feature_color(f), legendgroup=f"f{f}", showlegend=k == 0,
                                 hovertemplate=f"neuron %{{x}}<br>feature {f}: weight %{{y:.2f}}<extra></extra>"),
                          row=row, col=col)
    fig.update_xaxes(title_text="neuron", dtick=1)
    fig.update_yaxes(title_text="input weight W1[k, f]", col=1)
    fig.update_layout(barmode="relative", height=300 * rows + 110, width=min(MAX_FIGURE_PX, 190 * cols + 230),
                      title="What each neuron reads: its input weights, stacked by feature",
                      legend=dict(font_size=11, tracegroupgap=0))
    return fig


def neuron_counts(feature_probability: Sequence[float], counts: dict[str, torch.Tensor]) -> go.Figure:
    """Monosemantic, polysemantic and dead neurons against 1 - S (log axis), from utils.neurons.count_neurons.

    counts: {"monosemantic", "polysemantic", "dead"}, each (n_sparsities,) or (n_sparsities, n_seeds) (the mean
    over seeds is drawn, each seed's value in the hover).
    """
    p = [float(v) for v in feature_probability]
    fig = go.Figure()
    styles = {"monosemantic": ("rgb(31,119,180)", "circle"), "polysemantic": ("rgb(214,39,40)", "diamond"),
              "dead": ("rgb(150,150,150)", "x")}
    for name, (color, symbol) in styles.items():
        c = torch.as_tensor(counts[name]).float()
        c = c[:, None] if c.ndim == 1 else c
        seeds = [", ".join(f"{v:g}" for v in row) for row in c.tolist()]
        fig.add_trace(go.Scatter(x=p, y=c.mean(dim=1).tolist(), mode="lines+markers", name=name, customdata=seeds,
                                 line_color=color, marker_symbol=symbol, marker_size=9,
                                 hovertemplate="1 - S = %{x:g}<br>%{y:.2g} neurons (seeds: %{customdata})"
                                               f"<extra>{name}</extra>"))
    fig.update_xaxes(type="log", title="1 - S (probability a feature is active; sparser to the left)",
                     autorange="reversed", tickvals=p, ticktext=[f"{v:g}" for v in p])
    fig.update_yaxes(title="neurons", rangemode="tozero")
    fig.update_layout(title="Neurons turn polysemantic as features get sparser", width=720, height=420,
                      legend=dict(orientation="h", x=0, y=-0.25))
    return fig


def neuron_motif(W1: torch.Tensor, W2: torch.Tensor, neuron: int, min_weight: float = 0.2, points: int = 101) -> go.Figure:
    """One neuron of a one-instance abs model: its input weights (left) and its activation ReLU(W1[k, f] x) as
    two features sweep [-1, 1] alone (right): its strongest feature and its weakest one with |weight| >= min_weight.
    The output weights W2[:, k] are in the hover.

    W1: (n_hidden, n_features), W2: (n_features, n_hidden).
    """
    W1, W2 = torch.as_tensor(W1).detach().float().cpu(), torch.as_tensor(W2).detach().float().cpu()
    w = W1[neuron]
    size = torch.where(w.abs() >= min_weight, w.abs(), torch.inf)
    top = [int(w.abs().argmax()), int(size.argmin())]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.15,
                        subplot_titles=[f"neuron {neuron}: input weights", "its activation, one feature on at a time"])
    fig.add_trace(go.Bar(x=list(range(w.numel())), y=w.tolist(), showlegend=False,
                         marker_color=[_feature_color(f) if f in top else "rgb(190,190,190)" for f in range(w.numel())],
                         customdata=W2[:, neuron].tolist(),
                         hovertemplate="feature %{x}<br>input weight %{y:.2f}<br>output weight %{customdata:.2f}"
                                       "<extra></extra>"), row=1, col=1)
    x = torch.linspace(-1, 1, points)
    for f in top:
        fig.add_trace(go.Scatter(x=x.tolist(), y=torch.relu(w[f] * x).tolist(), mode="lines", line_color=_feature_color(f),
                                 name=f"feature {f} (weight {w[f]:+.2f})"), row=1, col=2)
    fig.update_xaxes(title_text="feature", dtick=1, row=1, col=1)
    fig.update_yaxes(title_text="W1[k, f]", row=1, col=1)
    fig.update_xaxes(title_text="value of the active feature", row=1, col=2)
    fig.update_yaxes(title_text="activation", row=1, col=2)
    fig.update_layout(title="Asymmetric superposition: one neuron, two features of very different weight",
                      width=900, height=420, legend=dict(orientation="h", x=0.55, y=-0.25))
    return fig
