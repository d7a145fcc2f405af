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
    assert len(fig.data) == 3
    assert list(fig.data[2].x) == [0, -0.5] and list(fig.data[2].y) == [0, 0.5]


def test_bars_show_norms_and_superposition_colour():
    W = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]]])
    bar = plots.feature_norm_bars(W).data[0]
    assert list(bar.x) == pytest.approx([1.0, 1.0, 1.0])
    assert list(bar.marker.color) == pytest.approx([0.0, 1.0, 1.0])


def test_plot_errors_are_actionable():
    with pytest.raises(ValueError, match="n_hidden=3"):
        plots.feature_directions(torch.randn(3, 5))
    with pytest.raises(ValueError, match="one sparsity per instance"):
        plots.dimensionality_scatter(torch.randn(2, 5, 20), [0.1])


def test_sae_latents_draws_features_and_latents_per_panel():
    W, W_dec = torch.randn(2, 5), torch.randn(3, 10, 2)
    fig = plots.sae_latents(W, W_dec, titles=["a", "b", "c"])
    assert len(fig.data) == 3 * (5 + 10)
    assert list(fig.data[5].x) == [0, W_dec[0, 0, 0].item()]
    json.loads(fig.to_json())
    with pytest.raises(ValueError, match="2D hidden space"):
        plots.sae_latents(torch.randn(3, 5), torch.randn(10, 3))
