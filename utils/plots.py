"""Interactive plotly figures of learned feature geometry (lessons 02-04, 06).

Every function returns a plotly Figure (call `.show()` or leave it last in a cell); none shows it
by itself. W is (n_instances, n_hidden, n_features) or a single (n_hidden, n_features) matrix.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots

from utils import metrics

if "ipykernel" in sys.modules:
    # Each figure carries plotly's MIME bundle (JupyterLab, Notebook 7) and self-contained HTML with
    # plotly.js inlined once per notebook, so nbconvert's HTML exports stay interactive offline.
    pio.renderers.default = "plotly_mimetype+notebook"

#: The feature-dimensionality fractions the paper finds features clustering at.
PAPER_FRACTIONS = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8)


def _instances(W: torch.Tensor) -> torch.Tensor:
    W = torch.as_tensor(W).detach().float().cpu()
    if W.ndim == 2:
        W = W[None]
    if W.ndim != 3:
        raise ValueError(f"W must be (n_hidden, n_features) or (n_instances, n_hidden, n_features), got {tuple(W.shape)}.")
    return W


def _grid(n: int, titles: Sequence[str] | None, cols: int | None, **kwargs) -> go.Figure:
    """An n-panel subplot grid with one title per panel."""
    titles = list(titles) if titles is not None else [f"instance {k}" for k in range(n)]
    if len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} instances; pass one title per instance.")
    cols = cols or min(n, 4)
    rows = math.ceil(n / cols)
    return make_subplots(rows=rows, cols=cols, subplot_titles=titles, **kwargs)


def _cell(k: int, cols: int) -> tuple[int, int]:
    return k // cols + 1, k % cols + 1


def feature_directions(
    W: torch.Tensor,
    importance: torch.Tensor | None = None,
    titles: Sequence[str] | None = None,
    cols: int | None = None,
) -> go.Figure:
    """Each feature's direction W[:, i] as an arrow in the 2D hidden space, one panel per instance.

    Arrows are coloured by importance (darker = less important), as in the paper's pentagon figure.
    """
    W = _instances(W)
    n_inst, n_hidden, n_feat = W.shape
    if n_hidden != 2:
        raise ValueError(f"feature_directions draws a 2D hidden space, but W has n_hidden={n_hidden}; "
                         "use wtw_heatmap or feature_norm_bars for larger models.")
    imp = torch.ones(n_inst, n_feat) if importance is None else torch.as_tensor(importance).float().cpu().expand(n_inst, n_feat)
    cols = cols or min(n_inst, 4)
    fig = _grid(n_inst, titles, cols, horizontal_spacing=0.04, vertical_spacing=0.08)
    lim = max(1.2, float(W.norm(dim=1).max()) * 1.25)
    for k in range(n_inst):
        row, col = _cell(k, cols)
        rel = imp[k] / imp[k].max().clamp_min(1e-8)
        for i in range(n_feat):
            x, y = W[k, 0, i].item(), W[k, 1, i].item()
            shade = int(40 + 180 * (1 - rel[i].item()))
            color = f"rgb({shade},{shade},{min(255, shade + 60)})" if importance is not None else "rgb(31,119,180)"
            fig.add_trace(go.Scatter(x=[0, x], y=[0, y], mode="lines+markers+text", line=dict(color=color, width=3),
                                     marker=dict(size=[0, 8], color=color), text=["", f"f{i}"], textposition="top center",
                                     hovertemplate=f"feature {i}<br>W = (%{{x:.2f}}, %{{y:.2f}})<br>importance {imp[k, i].item():.3g}<extra></extra>",
                                     showlegend=False), row=row, col=col)
        axis = dict(range=[-lim, lim], zeroline=True, showgrid=False, showticklabels=False)
        fig.update_xaxes(axis, row=row, col=col)
        fig.update_yaxes(axis, scaleanchor=f"x{k + 1 if k else ''}", row=row, col=col)
    fig.update_layout(height=260 * math.ceil(n_inst / cols) + 60, width=260 * cols + 40, title="Feature directions in the hidden space")
    return fig


def feature_norm_bars(W: torch.Tensor, titles: Sequence[str] | None = None, cols: int | None = None) -> go.Figure:
    """The paper's bar chart: ||W_i|| per feature, coloured by how much it is superposed (0 = own dimension)."""
    W = _instances(W)
    n_inst, _, n_feat = W.shape
    norms, sup = metrics.feature_norms(W), metrics.superposition(W).clamp(0, 1)
    cols = cols or min(n_inst, 7)
    fig = _grid(n_inst, titles, cols, shared_yaxes=True, horizontal_spacing=0.02)
    for k in range(n_inst):
        row, col = _cell(k, cols)
        fig.add_trace(go.Bar(x=norms[k].tolist(), y=list(range(n_feat)), orientation="h",
                             marker=dict(color=sup[k].tolist(), colorscale="Viridis", cmin=0, cmax=1,
                                         colorbar=dict(title="superposition") if k == 0 else None,
                                         showscale=k == 0),
                             hovertemplate="feature %{y}<br>||W_i|| = %{x:.2f}<extra></extra>", showlegend=False),
                      row=row, col=col)
    fig.update_yaxes(autorange="reversed", title_text="feature", col=1)
    fig.update_xaxes(range=[0, max(1.2, float(norms.max()) * 1.05)])
    fig.update_layout(height=max(300, 14 * n_feat + 150) * math.ceil(n_inst / cols), width=170 * cols + 120,
                      title="Feature norms ||W_i||, coloured by superposition")
    return fig


def wtw_heatmap(W: torch.Tensor, titles: Sequence[str] | None = None, cols: int | None = None) -> go.Figure:
    """W^T W per instance: the diagonal is each feature's squared norm, off-diagonals its interference."""
    W = _instances(W)
    n_inst = W.shape[0]
    wtw = W.transpose(1, 2) @ W
    lim = float(wtw.abs().max())
    cols = cols or min(n_inst, 4)
    fig = _grid(n_inst, titles, cols)
    for k in range(n_inst):
        row, col = _cell(k, cols)
        fig.add_trace(go.Heatmap(z=wtw[k].tolist(), zmin=-lim, zmax=lim, colorscale="RdBu", reversescale=True,
                                 showscale=k == 0, hovertemplate="i=%{y}, j=%{x}: %{z:.2f}<extra></extra>"),
                      row=row, col=col)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{k + 1 if k else ''}", row=row, col=col)
    fig.update_layout(height=300 * math.ceil(n_inst / cols) + 60, width=300 * cols + 60, title="W<sup>T</sup> W")
    return fig


def dimensionality_scatter(W: torch.Tensor, sparsity: Sequence[float] | torch.Tensor, threshold: float = 0.5) -> go.Figure:
    """Feature dimensionality D_i of represented features against 1/(1-S), one instance per sparsity.

    Dashed lines mark the paper's fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8; the black line is m/||W||_F^2.
    """
    W = _instances(W)
    sparsity = torch.as_tensor(sparsity, dtype=torch.float32).flatten()
    if sparsity.numel() != W.shape[0]:
        raise ValueError(f"need one sparsity per instance: got {sparsity.numel()} for {W.shape[0]} instances.")
    x = 1.0 / (1.0 - sparsity)
    D, norms = metrics.feature_dimensionality(W), metrics.feature_norms(W)
    fig = go.Figure()
    for f in PAPER_FRACTIONS:
        fig.add_hline(y=f, line=dict(dash="dot", color="lightgray"), annotation_text=f"{f:.3g}", annotation_position="right")
    pts_x, pts_y, text = [], [], []
    for k in range(W.shape[0]):
        for i in torch.nonzero(norms[k] > threshold).flatten().tolist():
            pts_x.append(x[k].item()); pts_y.append(D[k, i].item()); text.append(f"feature {i}")
    fig.add_trace(go.Scatter(x=pts_x, y=pts_y, mode="markers", text=text, name="D_i of a represented feature",
                             marker=dict(size=7, opacity=0.6)))
    fig.add_trace(go.Scatter(x=x.tolist(), y=metrics.dimensions_per_feature(W).tolist(), mode="lines+markers",
                             name="m / ||W||_F^2", line=dict(color="black")))
    fig.update_xaxes(type="log", title="1 / (1 - S)")
    fig.update_yaxes(title="dimensions per feature", range=[0, 1.1])
    fig.update_layout(title="Feature dimensionality clusters at simple fractions", height=420, width=720)
    return fig


def loss_curves(history: torch.Tensor, labels: Sequence[str] | None = None, every: int = 10) -> go.Figure:
    """Per-instance loss against step on a log scale. history: (steps, n_instances) from utils.train."""
    history = torch.as_tensor(history).float()
    if history.ndim == 1:
        history = history[:, None]
    labels = list(labels) if labels is not None else [f"instance {k}" for k in range(history.shape[1])]
    steps = torch.arange(0, history.shape[0], every)
    fig = go.Figure()
    for k, label in enumerate(labels):
        fig.add_trace(go.Scatter(x=steps.tolist(), y=history[steps, k].tolist(), mode="lines", name=label))
    fig.update_yaxes(type="log", title="loss")
    fig.update_xaxes(title="step")
    fig.update_layout(title="Training loss", height=380, width=720)
    return fig


def sae_latents(W: torch.Tensor, W_dec: torch.Tensor, titles: Sequence[str] | None = None,
                cols: int | None = None) -> go.Figure:
    """True features and an SAE's learned latent directions in a 2D hidden space (lesson 06).

    W: (2, n_features), the toy model's features (blue arrows); W_dec: (n_latents, 2) or
    (n_sae_instances, n_latents, 2), each SAE's unit decoder rows (dashed orange), one panel per SAE.
    """
    W = torch.as_tensor(W).detach().float().cpu()
    W_dec = torch.as_tensor(W_dec).detach().float().cpu()
    W_dec = W_dec[None] if W_dec.ndim == 2 else W_dec
    if W.ndim != 2 or W.shape[0] != 2 or W_dec.ndim != 3 or W_dec.shape[-1] != 2:
        raise ValueError(f"sae_latents draws a 2D hidden space: W must be (2, n_features), got {tuple(W.shape)}, and "
                         f"W_dec (n_latents, 2) or (n_instances, n_latents, 2), got {tuple(W_dec.shape)}.")
    n_inst = W_dec.shape[0]
    cols = cols or min(n_inst, 4)
    fig = _grid(n_inst, titles, cols, horizontal_spacing=0.04, vertical_spacing=0.08)
    lim = max(1.2, float(W.norm(dim=0).max()) * 1.25)
    for k in range(n_inst):
        row, col = _cell(k, cols)
        for i in range(W.shape[1]):
            fig.add_trace(go.Scatter(x=[0, W[0, i].item()], y=[0, W[1, i].item()], mode="lines+markers+text",
                                     line=dict(color="rgb(31,119,180)", width=4), marker=dict(size=[0, 8]),
                                     text=["", f"f{i}"], textposition="top center", name="true feature",
                                     legendgroup="feature", showlegend=k == 0 and i == 0,
                                     hovertemplate=f"feature {i}<extra></extra>"), row=row, col=col)
        for j, (x, y) in enumerate(W_dec[k].tolist()):
            fig.add_trace(go.Scatter(x=[0, x], y=[0, y], mode="lines", line=dict(color="rgb(255,127,14)", width=2,
                                     dash="dash"), name="SAE latent", legendgroup="latent",
                                     showlegend=k == 0 and j == 0, hovertemplate=f"latent {j}<extra></extra>"),
                          row=row, col=col)
        axis = dict(range=[-lim, lim], zeroline=True, showgrid=False, showticklabels=False)
        fig.update_xaxes(axis, row=row, col=col)
        fig.update_yaxes(axis, scaleanchor=f"x{k + 1 if k else ''}", row=row, col=col)
    fig.update_layout(height=260 * math.ceil(n_inst / cols) + 80, width=260 * cols + 160,
                      title="True features (blue) and SAE latent directions (dashed)")
    return fig
