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


#: Geometry panels: each is PANEL_PX square (plot area), GAP_PX apart, with room above for a two-line title.
PANEL_PX, GAP_PX, TITLE_PX = 260, 36, 44
#: No figure is wider than this: a notebook's output area is about 1090 px wide in a 1200 px window, and
#: a wider figure is cut off (or scrolls) there.
MAX_FIGURE_PX = 1000
#: A feature whose ||W_i|| is below this is drawn as not represented: no arrowhead, no label, grey bar.
NOT_REPRESENTED = 0.1
_LABEL_FONT_PX, _ARROWHEAD_PX = 12, 13


def _square_grid(n: int, titles: Sequence[str] | None, cols: int, right_px: int = 20) -> tuple[go.Figure, int]:
    """(a grid of PANEL_PX-square panels sized in pixels, so that equal axis ranges give equal scales; its
    number of columns). `cols` is a most: a row never grows wider than MAX_FIGURE_PX."""
    cols = max(1, min(cols, (MAX_FIGURE_PX - 20 - right_px + GAP_PX) // (PANEL_PX + GAP_PX)))
    rows = math.ceil(n / cols)
    plot_w, plot_h = cols * PANEL_PX + (cols - 1) * GAP_PX, rows * PANEL_PX + (rows - 1) * (GAP_PX + TITLE_PX)
    fig = _grid(n, titles, cols, horizontal_spacing=GAP_PX / plot_w if cols > 1 else 0.0,
                vertical_spacing=(GAP_PX + TITLE_PX) / plot_h if rows > 1 else 0.0)
    top = 70 + TITLE_PX                                          # the figure's title, then the panels'
    # A single panel gets a figure wide enough for its title; its x domain shrinks to keep the panel square.
    fig.update_layout(width=max(420, plot_w + 20 + right_px), height=plot_h + top + 20, margin=dict(l=20, r=right_px, t=top, b=20),
                      plot_bgcolor="white")
    return fig, cols


def _panel_axes(fig: go.Figure, k: int, cols: int, lim: float) -> None:
    """Equal ranges and scales (scaleanchor) on panel k: a regular pentagon looks regular."""
    row, col = _cell(k, cols)
    axis = dict(range=[-lim, lim], zeroline=True, zerolinecolor="rgb(225,225,225)", showgrid=False,
                showticklabels=False, constrain="domain", fixedrange=False)
    fig.update_xaxes(axis, row=row, col=col)
    fig.update_yaxes(axis, scaleanchor=f"x{k + 1 if k else ''}", scaleratio=1, row=row, col=col)


def _text_px(text: str) -> tuple[float, float]:
    """Rough (width, height) in pixels of a label in the label font."""
    return 0.62 * _LABEL_FONT_PX * len(text), 1.25 * _LABEL_FONT_PX


def _label_room_px() -> float:
    """How far beyond an arrow's tip a short label can reach, in pixels."""
    w, h = _text_px("f00")
    return _ARROWHEAD_PX / 2 + 4 + max(w, h)


def _arrow_lim(max_norm: float) -> float:
    """Axis half-range for arrows up to `max_norm` long, leaving room for the labels beyond their tips."""
    return max(1.0, max_norm) * (PANEL_PX / 2) / (PANEL_PX / 2 - _label_room_px())


def _place_labels(tips: torch.Tensor, names: Sequence[str], lim: float) -> list[tuple[float, float, str]]:
    """(x, y, text) of labels just beyond each arrow tip along its direction, inside the panel.

    tips: (n, 2), represented features only. Labels whose boxes would overlap are merged into one
    ("f1 f3"), so no two labels ever print over each other.
    """
    px = PANEL_PX / (2 * lim)                                   # pixels per data unit
    labels = []
    for (x, y), name in zip(tips.tolist(), names):
        r = math.hypot(x, y)
        ux, uy = x / r, y / r
        w, h = _text_px(name)
        # Centre the box just clear of the arrowhead: its half-extent along the direction plus a gap.
        reach = _ARROWHEAD_PX / 2 + 4 + abs(ux) * w / 2 + abs(uy) * h / 2
        labels.append([x * px + ux * reach, y * px + uy * reach, [name]])
    merged = True
    while merged:
        merged = False
        for a in range(len(labels)):
            for b in range(a + 1, len(labels)):
                (xa, ya, na), (xb, yb, nb) = labels[a], labels[b]
                wa, ha = _text_px(" ".join(na))
                wb, hb = _text_px(" ".join(nb))
                if abs(xa - xb) < (wa + wb) / 2 + 2 and abs(ya - yb) < (ha + hb) / 2:
                    labels[a] = [(xa + xb) / 2, (ya + yb) / 2, na + nb]
                    del labels[b]
                    merged = True
                    break
            if merged:
                break
    placed = []
    for x, y, parts in labels:
        text = " ".join(parts)
        w, h = _text_px(text)
        half = PANEL_PX / 2
        x = min(max(x, -half + w / 2 + 2), half - w / 2 - 2)     # keep the whole label inside the panel
        y = min(max(y, -half + h / 2 + 2), half - h / 2 - 2)
        placed.append((x / px, y / px, text))
    return placed


def _arrows(fig: go.Figure, W: torch.Tensor, k: int, cols: int, lim: float, colors: Sequence[str],
            hover: Sequence[str], width: float = 3, dash: str | None = None, names: Sequence[str] | None = None,
            legend: tuple[str, str] | None = None) -> list[str]:
    """Draw W's columns (2, n) as arrows from the origin on panel k, labelled beyond their tips.

    Each arrow is one trace (its line, an arrowhead marker pointing along it, the hover text); the labels of
    the represented arrows are one more trace when `names` is given. Returns the names left unlabelled.
    """
    row, col = _cell(k, cols)
    norms = W.norm(dim=0)
    for i in range(W.shape[1]):
        x, y = W[0, i].item(), W[1, i].item()
        shown = norms[i].item() >= NOT_REPRESENTED
        fig.add_trace(go.Scatter(
            x=[0, x], y=[0, y], mode="lines+markers", line=dict(color=colors[i], width=width, dash=dash),
            marker=dict(symbol="arrow", angleref="previous", size=[0, _ARROWHEAD_PX if shown else 0], color=colors[i],
                        line=dict(width=[0, 1], color=colors[i])),
            hovertemplate=hover[i] + "<extra></extra>",
            name=legend[0] if legend else "", legendgroup=legend[1] if legend else None,
            showlegend=bool(legend) and k == 0 and i == 0), row=row, col=col)
    if names is None:
        return []
    keep = torch.nonzero(norms >= NOT_REPRESENTED).flatten().tolist()
    labels = _place_labels(W[:, keep].T, [names[i] for i in keep], lim)
    fig.add_trace(go.Scatter(x=[x for x, _, _ in labels], y=[y for _, y, _ in labels], text=[t for _, _, t in labels],
                             mode="text", textfont=dict(size=_LABEL_FONT_PX), hoverinfo="skip", showlegend=False),
                  row=row, col=col)
    return [names[i] for i in range(W.shape[1]) if i not in keep]


def _with_note(title: str, unlabelled: Sequence[str]) -> str:
    """A panel title, with a second line naming the features drawn as not represented."""
    if not unlabelled:
        return title
    note = f"not represented (‖W_i‖ < {NOT_REPRESENTED:g}): {', '.join(unlabelled)}"
    return f"{title}<br><span style='font-size:11px;color:gray'>{note}</span>"


def feature_directions(
    W: torch.Tensor,
    importance: torch.Tensor | None = None,
    titles: Sequence[str] | None = None,
    cols: int | None = None,
    max_norm: float | None = None,
) -> go.Figure:
    """Each feature's direction W[:, i] as an arrow in the 2D hidden space, one square panel per instance.

    Both axes have the same scale (a regular pentagon looks regular). Arrows are coloured by importance
    (darker = more important), as in the paper's pentagon figure; a feature with ||W_i|| < NOT_REPRESENTED
    gets no arrowhead and no label, and its panel's title names it as not represented. `max_norm`: the
    arrow length the axes make room for (default: the longest in W); give figures that should share a
    scale (the frames of a slider) the same value. `cols`: panels per row, at most 3 (MAX_FIGURE_PX). Trace order: per panel, one arrow per feature, then
    one trace of labels.
    """
    W = _instances(W)
    n_inst, n_hidden, n_feat = W.shape
    if n_hidden != 2:
        raise ValueError(f"feature_directions draws a 2D hidden space, but W has n_hidden={n_hidden}; "
                         "use wtw_heatmap or feature_norm_bars for larger models.")
    imp = torch.ones(n_inst, n_feat) if importance is None else torch.as_tensor(importance).float().cpu().expand(n_inst, n_feat)
    cols = cols or min(n_inst, 3)
    titles = list(titles) if titles is not None else [f"instance {k}" for k in range(n_inst)]
    fig, cols = _square_grid(n_inst, titles, cols)
    lim = _arrow_lim(float(W.norm(dim=1).max()) if max_norm is None else max_norm)
    names = [f"f{i}" for i in range(n_feat)]
    for k in range(n_inst):
        rel = imp[k] / imp[k].max().clamp_min(1e-8)
        shades = [int(40 + 180 * (1 - r)) for r in rel.tolist()]
        colors = ([f"rgb({s},{s},{min(255, s + 60)})" for s in shades] if importance is not None
                  else ["rgb(31,119,180)"] * n_feat)
        norms = W[k].norm(dim=0).tolist()
        hover = [f"feature {i}<br>W = ({W[k, 0, i]:.2f}, {W[k, 1, i]:.2f}), ‖W_i‖ = {norms[i]:.2f}"
                 f"<br>importance {imp[k, i].item():.3g}" + ("<br>not represented" if norms[i] < NOT_REPRESENTED else "")
                 for i in range(n_feat)]
        unlabelled = _arrows(fig, W[k], k, cols, lim, colors, hover, names=names)
        fig.layout.annotations[k].text = _with_note(titles[k], unlabelled)
        _panel_axes(fig, k, cols, lim)
    fig.update_layout(title="Feature directions in the hidden space" +
                      (" (darker = more important)" if importance is not None else ""))
    return fig


def feature_norm_bars(W: torch.Tensor, titles: Sequence[str] | None = None, cols: int | None = None) -> go.Figure:
    """The paper's bar chart: ||W_i|| per feature, coloured by how much it is superposed (0 = own dimension).

    A feature with ||W_i|| < NOT_REPRESENTED is not represented, and its superposition (which divides by its
    norm) means nothing: its bar is grey, marked "≈ 0", and the legend says so. Trace order: per panel, the
    coloured bars of the represented features, then the grey bars of the others.
    """
    W = _instances(W)
    n_inst, _, n_feat = W.shape
    norms, sup = metrics.feature_norms(W), metrics.superposition(W).clamp(0, 1)
    cols = cols or min(n_inst, 7)
    rows = math.ceil(n_inst / cols)
    row_px = max(300, 14 * n_feat + 150)
    fig = _grid(n_inst, titles, cols, shared_yaxes=True, horizontal_spacing=0.02,
                vertical_spacing=80 / (row_px * rows) if rows > 1 else 0.0)
    fig.update_annotations(font_size=12)                         # panel titles: narrow panels sit side by side
    dropped_shown = False
    for k in range(n_inst):
        row, col = _cell(k, cols)
        kept = norms[k] >= NOT_REPRESENTED
        on, off = torch.nonzero(kept).flatten().tolist(), torch.nonzero(~kept).flatten().tolist()
        fig.add_trace(go.Bar(x=norms[k, on].tolist(), y=on, orientation="h", customdata=sup[k, on].tolist(),
                             marker=dict(color=sup[k, on].tolist(), colorscale="Viridis", cmin=0, cmax=1,
                                         colorbar=dict(title="superposition<br>(0: own dimension)") if k == 0 else None,
                                         showscale=k == 0),
                             hovertemplate="feature %{y}<br>||W_i|| = %{x:.2f}<br>superposition %{customdata:.2f}"
                                           "<extra></extra>", showlegend=False),
                      row=row, col=col)
        if off:
            fig.add_trace(go.Bar(x=norms[k, off].tolist(), y=off, orientation="h", marker_color="rgb(190,190,190)",
                                 text=["≈ 0"] * len(off), textposition="outside", cliponaxis=False,
                                 textfont=dict(color="gray", size=10), constraintext="none",
                                 name=f"not represented (‖W_i‖ < {NOT_REPRESENTED:g})", legendgroup="dropped",
                                 showlegend=not dropped_shown,
                                 hovertemplate="feature %{y}<br>||W_i|| = %{x:.3f}: not represented<extra></extra>"),
                          row=row, col=col)
            dropped_shown = True
    fig.update_yaxes(range=[n_feat - 0.5, -0.5], dtick=1 if n_feat <= 20 else None)
    fig.update_yaxes(title_text="feature", col=1)
    fig.update_xaxes(range=[0, max(1.2, float(norms.max()) * 1.05)])
    fig.update_layout(height=row_px * rows + (30 if dropped_shown else 0), width=min(MAX_FIGURE_PX, 170 * cols + 160),
                      title="Feature norms ||W_i||, coloured by superposition", barmode="overlay",
                      margin=dict(b=80 if dropped_shown else 60),
                      legend=dict(orientation="h", x=0, y=0, yanchor="bottom", yref="container"))
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
    fig.update_layout(height=300 * math.ceil(n_inst / cols) + 60, width=min(MAX_FIGURE_PX, max(420, 300 * cols + 60)),
                      title="W<sup>T</sup> W")
    return fig


#: The guide lines' labels, in a column beside the plot; neighbours that are close in y go in different columns.
_FRACTION_LABELS = {1.0: "1", 3 / 4: "3/4", 2 / 3: "2/3", 1 / 2: "1/2", 2 / 5: "2/5", 3 / 8: "3/8"}


def _log_ticks(low: float, high: float) -> list[float]:
    """1, 2, 5, 10, 20, 50, ... covering [low, high], for a log axis that reads 20 as 20."""
    ticks, decade = [], 10 ** math.floor(math.log10(low))
    while decade <= high:
        ticks += [m * decade for m in (1, 2, 5) if low / 1.5 <= m * decade <= high * 1.5]
        decade *= 10
    return ticks


def dimensionality_scatter(W: torch.Tensor, sparsity: Sequence[float] | torch.Tensor, threshold: float = 0.5) -> go.Figure:
    """Feature dimensionality D_i of represented features against 1/(1-S), one instance per sparsity.

    Dotted lines mark the paper's fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8 (labelled on the right, in two
    columns so close fractions never overprint); the black line is m/||W||_F^2.
    """
    W = _instances(W)
    sparsity = torch.as_tensor(sparsity, dtype=torch.float32).flatten()
    if sparsity.numel() != W.shape[0]:
        raise ValueError(f"need one sparsity per instance: got {sparsity.numel()} for {W.shape[0]} instances.")
    x = 1.0 / (1.0 - sparsity)
    D, norms = metrics.feature_dimensionality(W), metrics.feature_norms(W)
    fig = go.Figure()
    for j, (f, label) in enumerate(sorted(_FRACTION_LABELS.items(), reverse=True)):
        fig.add_hline(y=f, line=dict(dash="dot", color="gray", width=1))
        fig.add_annotation(x=1.01 + 0.05 * (j % 2), y=f, xref="paper", yref="y", text=label, showarrow=False,
                           xanchor="left", font=dict(size=12, color="dimgray"))
    pts_x, pts_y, text = [], [], []
    for k in range(W.shape[0]):
        for i in torch.nonzero(norms[k] > threshold).flatten().tolist():
            pts_x.append(x[k].item()); pts_y.append(D[k, i].item()); text.append(f"feature {i}")
    fig.add_trace(go.Scatter(x=pts_x, y=pts_y, mode="markers", text=text, name=f"D_i of a represented feature (‖W_i‖ > {threshold:g})",
                             marker=dict(size=7, opacity=0.6),
                             hovertemplate="%{text}<br>1/(1-S) = %{x:.3g}<br>D_i = %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x.tolist(), y=metrics.dimensions_per_feature(W).tolist(), mode="lines+markers",
                             name="m / ||W||_F^2", line=dict(color="black")))
    ticks = _log_ticks(float(x.min()), float(x.max()))
    fig.update_xaxes(type="log", title="1 / (1 - S)", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    fig.update_yaxes(title="dimensions per feature", range=[0, 1.1])
    fig.update_layout(title="Feature dimensionality clusters at simple fractions", height=460, width=760,
                      margin=dict(r=90), legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom"))
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

    W: (2, n_features), the toy model's features (blue arrows, labelled); W_dec: (n_latents, 2) or
    (n_sae_instances, n_latents, 2), each SAE's unit decoder rows (dashed orange arrows), one square panel
    per SAE. Trace order: per panel, one arrow per feature, the feature labels, one arrow per latent.
    """
    W = torch.as_tensor(W).detach().float().cpu()
    W_dec = torch.as_tensor(W_dec).detach().float().cpu()
    W_dec = W_dec[None] if W_dec.ndim == 2 else W_dec
    if W.ndim != 2 or W.shape[0] != 2 or W_dec.ndim != 3 or W_dec.shape[-1] != 2:
        raise ValueError(f"sae_latents draws a 2D hidden space: W must be (2, n_features), got {tuple(W.shape)}, and "
                         f"W_dec (n_latents, 2) or (n_instances, n_latents, 2), got {tuple(W_dec.shape)}.")
    n_inst, n_feat = W_dec.shape[0], W.shape[1]
    cols = cols or min(n_inst, 3)
    titles = list(titles) if titles is not None else [f"instance {k}" for k in range(n_inst)]
    fig, cols = _square_grid(n_inst, titles, cols)
    lim = _arrow_lim(max(float(W.norm(dim=0).max()), float(W_dec.norm(dim=2).max())))
    feature_hover = [f"feature {i}, ‖W_i‖ = {W[:, i].norm():.2f}" for i in range(n_feat)]
    for k in range(n_inst):
        unlabelled = _arrows(fig, W, k, cols, lim, ["rgb(31,119,180)"] * n_feat, feature_hover, width=4,
                             names=[f"f{i}" for i in range(n_feat)], legend=("true feature", "feature"))
        n_lat = W_dec.shape[1]
        _arrows(fig, W_dec[k].T, k, cols, lim, ["rgb(255,127,14)"] * n_lat, [f"latent {j}" for j in range(n_lat)],
                width=2, dash="dash", legend=("SAE latent (decoder row)", "latent"))
        fig.layout.annotations[k].text = _with_note(titles[k], unlabelled)
        _panel_axes(fig, k, cols, lim)
    fig.update_layout(title="True features (blue) and SAE latent directions (dashed orange)",
                      height=fig.layout.height + 30, margin_b=50,
                      legend=dict(orientation="h", x=0, y=0, yanchor="bottom", yref="container"))
    return fig
