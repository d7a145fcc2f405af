"""Interactive plotly figures of what a digit network's units respond to (lesson 08).

Images are (n, 64) rows of pixels in [0, 1], drawn as 8x8 grey heatmaps (ink dark, as written), one per
panel, with equal axis scales so that every digit keeps its shape. Every function returns a Figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from utils.digits import N_CLASSES, SIDE, top_activating
from utils.plots import MAX_FIGURE_PX

PANEL_PX = 78  # one 8x8 image
GAP_PX, TITLE_PX = 10, 30


def image_grid(images: torch.Tensor, titles: Sequence[str], cols: int, title: str = "",
               row_titles: Sequence[str] | None = None, panel_px: int = PANEL_PX) -> go.Figure:
    """Images (n, 64) in a grid of `cols` columns of about panel_px pixels, one title per image (hover shows the
    pixel values); titles may have two lines ("<br>")."""
    images = torch.as_tensor(images).detach().float().cpu()
    n = len(images)
    if len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} images; pass one title per image.")
    rows = math.ceil(n / cols)
    left = 110 if row_titles else 20
    width = min(MAX_FIGURE_PX, left + 20 + cols * panel_px + (cols - 1) * GAP_PX)
    panel = (width - left - 20 - (cols - 1) * GAP_PX) / cols
    plot_h = rows * panel + (rows - 1) * (GAP_PX + TITLE_PX)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles),
                        horizontal_spacing=GAP_PX / (width - left - 20) if cols > 1 else 0.0,
                        vertical_spacing=(GAP_PX + TITLE_PX) / plot_h if rows > 1 else 0.0)
    for k, image in enumerate(images):
        row, col = k // cols + 1, k % cols + 1
        fig.add_trace(go.Heatmap(z=image.reshape(SIDE, SIDE).tolist(), zmin=0, zmax=1, colorscale="Greys",
                                 showscale=False, hovertemplate="row %{y}, column %{x}: %{z:.2f}<extra></extra>"),
                      row=row, col=col)
        axis = dict(showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
        fig.update_xaxes(axis, row=row, col=col)
        fig.update_yaxes(axis, autorange="reversed", scaleanchor=f"x{k + 1 if k else ''}", scaleratio=1, row=row, col=col)
    fig.update_annotations(font_size=11)
    for r, text in enumerate(row_titles or []):
        fig.add_annotation(text=text, xref="paper", yref=f"y{r * cols + 1 if r * cols else ''} domain", x=0, y=0.5,
                           xanchor="right", xshift=-8, showarrow=False, align="right", font_size=12)
    fig.update_layout(title=title, width=width, height=plot_h + 70 + TITLE_PX, plot_bgcolor="white",
                      margin=dict(l=left, r=20, t=70 + TITLE_PX, b=20))
    return fig


def top_images(x: torch.Tensor, y: torch.Tensor, acts: torch.Tensor, units: Sequence[int], names: Sequence[str],
               k: int = 8, title: str = "") -> go.Figure:
    """For each chosen unit (a row), its k most activating images, strongest first, titled by label and activation.

    x (batch, 64), y (batch,), acts (batch, n_units); names: one row label per chosen unit.
    """
    top = top_activating(acts[:, list(units)], k)                          # (len(units), k)
    images = x[top.flatten()]
    titles = [f"{int(y[i])} ({float(acts[i, u]):.1f})" for u, row in zip(units, top) for i in row.tolist()]
    return image_grid(images, titles, cols=k, title=title, row_titles=list(names))


def class_table(table: torch.Tensor, names: Sequence[str], title: str = "") -> go.Figure:
    """Heatmap of mean activations: table (n_classes, n_units) drawn one row per unit, one column per digit."""
    table = torch.as_tensor(table).detach().float().cpu()
    fig = go.Figure(go.Heatmap(z=table.T.tolist(), x=[str(c) for c in range(N_CLASSES)], y=list(names),
                               colorscale="Viridis", colorbar=dict(title="mean<br>activation"),
                               hovertemplate="%{y}, digit %{x}: %{z:.2f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="digit", width=620, height=120 + 22 * len(names),
                      yaxis=dict(autorange="reversed", type="category"), margin=dict(l=130, r=20, t=60, b=50))
    return fig


def selectivity_scatter(groups: dict[str, tuple[torch.Tensor, torch.Tensor]], chance: tuple[torch.Tensor, torch.Tensor],
                        title: str = "") -> go.Figure:
    """Selectivity against firing rate: one marker per unit for each group {name: (firing (n,), selectivity (n,))},
    over the chance curve (firing rates (m,), mean selectivity of random directions that fire that often (m,))."""
    fig = go.Figure(go.Scatter(x=chance[0].tolist(), y=chance[1].tolist(), mode="lines", name="random directions, "
                               "same firing rate (chance)", line=dict(color="black", dash="dash", width=2)))
    for (name, (firing, values)), symbol in zip(groups.items(), ("circle", "diamond", "square", "cross")):
        fig.add_trace(go.Scatter(x=firing.tolist(), y=values.tolist(), mode="markers", name=name, opacity=0.7,
                                 marker=dict(symbol=symbol, size=8, line=dict(width=0.5, color="white")),
                                 hovertemplate=f"{name} %{{customdata}}: fires on %{{x:.0%}}, selectivity %{{y:.2f}}"
                                               "<extra></extra>", customdata=list(range(len(values)))))
    fig.update_layout(title=title, width=760, height=500, xaxis=dict(title="fraction of inputs the unit fires on",
                      tickformat=".0%", range=[0, 1]), yaxis=dict(title="class selectivity", range=[0, 1.02]),
                      legend=dict(orientation="h", x=0, y=-0.18, yanchor="top"), margin=dict(l=60, r=20, t=60, b=110))
    return fig


def family(levels: list[list[tuple[int, int, float]]], images: list[torch.Tensor], captions: list[list[str]],
           sizes: Sequence[int], cols: int = 5, title: str = "") -> go.Figure:
    """A latent and its descendants in larger dictionaries (utils.digits.latent_family), one row per dictionary.

    images[k]: (n_latents_k, 64) a picture of each latent of dictionary k (e.g. the mean of its top images);
    captions[k][j]: a few words under latent j's number. A row shows at most `cols` members whose parent is shown
    in the row above (closest to their parent first), grouped under their parents; each panel is titled
    "#j ← #parent" and "cos c · caption".
    """
    panels, titles, shown = [], [], [-1]
    for k, level in enumerate(levels):
        members = sorted((m for m in level if m[1] in shown), key=lambda m: -m[2])[:cols]
        members.sort(key=lambda m: (shown.index(m[1]), -m[2]))
        for j, parent, cos in members:
            panels.append(images[k][j])
            titles.append(f"#{j}<br>{captions[k][j]}" if parent < 0 else f"#{j} ← #{parent}<br>cos {cos:.2f} · {captions[k][j]}")
        panels += [torch.zeros(SIDE * SIDE)] * (cols - len(members))  # blank panels fill the row
        titles += [""] * (cols - len(members))
        shown = [j for j, _, _ in members]
    return image_grid(torch.stack(panels), titles, cols=cols, title=title, panel_px=118,
                      row_titles=[f"{n} latents" for n in sizes[:len(levels)]])
