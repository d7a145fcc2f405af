"""utils.plots returns figures that serialise and carry the data they claim to show."""

import json

import plotly.graph_objects as go
import pytest
import torch

from utils import plots


def test_every_plot_returns_a_serialisable_figure():
    W2, W5 = torch.randn(3, 2, 5), torch.randn(4, 5, 20)
    figures = [
        plots.feature_directions(W2, importance=0.7 ** torch.arange(5)),
        plots.feature_norm_bars(W5),
        plots.wtw_heatmap(W2),
        plots.dimensionality_scatter(W5, [0.0, 0.5, 0.9, 0.99]),
        plots.loss_curves(torch.rand(100, 3)),
    ]
    for fig in figures:
        assert isinstance(fig, go.Figure)
        json.loads(fig.to_json())
        assert "plotly" in fig.to_html(include_plotlyjs=False, full_html=False)


def test_feature_directions_draws_one_arrow_per_feature_at_W():
    W = torch.tensor([[1.0, 0.0, -0.5], [0.0, 1.0, 0.5]])
    fig = plots.feature_directions(W)
    assert len(fig.data) == 3 + 1                                # three arrows, then their labels
    assert list(fig.data[2].x) == [0, -0.5] and list(fig.data[2].y) == [0, 0.5]


def test_geometry_panels_are_square_with_equal_scales_and_arrowheads():
    fig = plots.feature_directions(torch.randn(5, 2, 5), titles=list("abcde"))
    layout = fig.layout
    for k in range(1, 6):
        x, y = layout[f"xaxis{k if k > 1 else ''}"], layout[f"yaxis{k if k > 1 else ''}"]
        assert y.scaleanchor == f"x{k if k > 1 else ''}" and y.scaleratio == 1
        assert list(x.range) == list(y.range) and x.range[0] == -x.range[1]
        # The panel's plot area in pixels, from its domain and the figure's size less the margins.
        width = (x.domain[1] - x.domain[0]) * (layout.width - layout.margin.l - layout.margin.r)
        height = (y.domain[1] - y.domain[0]) * (layout.height - layout.margin.t - layout.margin.b)
        assert width == pytest.approx(plots.PANEL_PX) and height == pytest.approx(plots.PANEL_PX)
    assert plots.PANEL_PX >= 250
    arrow = fig.data[0]
    assert arrow.marker.symbol == "arrow" and arrow.marker.angleref == "previous" and arrow.marker.size[1] > 0


def test_no_figure_is_wider_than_a_notebook_or_narrower_than_its_title():
    assert plots.feature_directions(torch.randn(4, 2, 5), cols=4).layout.width <= plots.MAX_FIGURE_PX
    assert plots.feature_norm_bars(torch.randn(14, 5, 20), cols=7).layout.width <= plots.MAX_FIGURE_PX
    assert plots.feature_directions(torch.randn(2, 5)).layout.width >= 420
    assert plots.wtw_heatmap(torch.randn(2, 5)).layout.width >= 420


def test_labels_sit_beyond_the_tips_inside_the_panel_and_never_on_a_dropped_feature():
    W = torch.tensor([[1.2, 0.0, 0.01, -1.2, 0.0], [0.0, 1.2, 0.0, 0.0, 0.02]])   # f2 and f4 are dropped (~0)
    fig = plots.feature_directions(W, titles=["dense"])
    labels = fig.data[5]
    assert list(labels.text) == ["f0", "f1", "f3"]
    lim = fig.layout.xaxis.range[1]
    for (x, y), tip in zip(zip(labels.x, labels.y), W[:, [0, 1, 3]].T.tolist()):
        assert abs(x) < lim and abs(y) < lim
        assert x * tip[0] + y * tip[1] > 1.2 ** 2                    # beyond the tip, along its direction
    assert [fig.data[i].marker.size[1] for i in range(5)][2] == 0 and fig.data[4].marker.size[1] == 0
    assert "not represented" in fig.layout.annotations[0].text and "f2, f4" in fig.layout.annotations[0].text
    assert "not represented" in fig.data[2].hovertemplate


def test_labels_that_would_overlap_are_merged():
    W = torch.tensor([[1.0, 0.999, 0.0], [0.0, 0.03, 1.0]])          # f0 and f1 point the same way
    assert sorted(plots.feature_directions(W).data[3].text) == ["f0 f1", "f2"]


def test_sae_latents_share_the_arrows_and_the_square_panels():
    fig = plots.sae_latents(torch.randn(2, 5), torch.nn.functional.normalize(torch.randn(2, 4, 2), dim=-1))
    assert fig.layout.yaxis2.scaleanchor == "x2" and fig.data[0].marker.symbol == "arrow"
    assert sum(trace.showlegend is True for trace in fig.data) == 2  # "true feature", "SAE latent"


def test_bars_show_norms_and_superposition_colour():
    W = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]]])
    bar = plots.feature_norm_bars(W).data[0]
    assert list(bar.x) == pytest.approx([1.0, 1.0, 1.0])
    assert list(bar.marker.color) == pytest.approx([0.0, 1.0, 1.0])


def test_a_dropped_feature_is_grey_not_the_superposition_colour():
    # Feature 2 is tiny but lies along feature 0: its superposition is 1, the colour of "fully superposed".
    W = torch.tensor([[[1.0, 0.0, 0.01], [0.0, 1.0, 0.0]]])
    kept, dropped = plots.feature_norm_bars(W, titles=["linear"]).data
    assert list(kept.y) == [0, 1] and list(kept.marker.color) == pytest.approx([0.0, 0.0], abs=1e-3)
    assert list(dropped.y) == [2] and dropped.marker.color == "rgb(190,190,190)"
    assert dropped.showlegend and "not represented" in dropped.name


def test_dimensionality_scatter_ticks_read_as_numbers_and_guide_labels_are_staggered():
    fig = plots.dimensionality_scatter(torch.randn(4, 5, 20), [0.0, 0.5, 0.95, 0.99])   # 1/(1-S) from 1 to 100
    assert list(fig.layout.xaxis.tickvals) == [1, 2, 5, 10, 20, 50, 100]
    assert list(fig.layout.xaxis.ticktext) == ["1", "2", "5", "10", "20", "50", "100"]
    guides = {a.text: a for a in fig.layout.annotations}
    assert set(guides) == {"1", "3/4", "2/3", "1/2", "2/5", "3/8"}
    for close in (("3/4", "2/3"), ("2/5", "3/8")):               # neighbours in y sit in different columns
        assert guides[close[0]].x != guides[close[1]].x


def test_plot_errors_are_actionable():
    with pytest.raises(ValueError, match="n_hidden=3"):
        plots.feature_directions(torch.randn(3, 5))
    with pytest.raises(ValueError, match="one sparsity per instance"):
        plots.dimensionality_scatter(torch.randn(2, 5, 20), [0.1])


def test_sae_latents_draws_features_and_latents_per_panel():
    W, W_dec = torch.randn(2, 5), torch.randn(3, 10, 2)
    fig = plots.sae_latents(W, W_dec, titles=["a", "b", "c"])
    assert len(fig.data) == 3 * (5 + 1 + 10)                     # per panel: features, their labels, latents
    assert list(fig.data[6].x) == [0, W_dec[0, 0, 0].item()]
    json.loads(fig.to_json())
    with pytest.raises(ValueError, match="2D hidden space"):
        plots.sae_latents(torch.randn(3, 5), torch.randn(10, 3))
