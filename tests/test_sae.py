"""utils.sae: the standard SAE recipe, and feature recovery from toy models in superposition.

Recovery tolerances: a feature counts as recovered when some latent's decoder direction has signed cosine
> 0.9 with it; on these seeded setups (sparse features, 2x overcomplete SAEs) at least 90% are.
"""

import pytest
import torch

from utils import ToyModel, best_of_seeds, train
from utils import sycophancy as syc
from utils.sae import SparseAutoencoder, ablate_latents, feature_recovery, latents_for_feature, train_sae


@pytest.fixture(scope="module")
def pentagon() -> ToyModel:
    model = ToyModel(5, 2, n_instances=4, sparsity=0.95, seed=0)
    train(model, steps=2000, batch_size=512, lr=5e-3, progress=False)
    return model.select(best_of_seeds(model, 4)[0])


@pytest.fixture(scope="module")
def narrow() -> syc.SycophancyModel:
    model = syc.SycophancyModel(3, n_instances=4, seed=0)
    train(model, steps=3000, batch_size=512, lr=5e-3, progress=False)
    return model.select(best_of_seeds(model, 4)[0])


@pytest.mark.slow
def test_an_sae_recovers_the_pentagon(pentagon):
    sae = SparseAutoencoder(2, 10, n_instances=4, l1_coeff=0.3, seed=0)
    train_sae(sae, pentagon, steps=3000, batch_size=1024, lr=1e-2, resample_every=500, progress=False)
    W = pentagon.W.detach()[0]
    recovered = [feature_recovery(sae.W_dec.detach()[i], W)["recovered"] for i in range(4)]
    assert min(recovered) >= 0.8 and sorted(recovered)[1] >= 0.9, recovered  # 3 of 4 seeds get >= 90%
    norms = sae.W_dec.detach().norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)  # the decoder constraint holds


@pytest.mark.slow
def test_an_sae_unmixes_sycophancy_and_ablating_its_latents_spares_confidence(narrow):
    sae = SparseAutoencoder(3, 16, n_instances=2, l1_coeff=0.1, seed=0)
    train_sae(sae, narrow, steps=4000, batch_size=1024, lr=1e-2, resample_every=500, progress=False)
    W, b = narrow.W.detach()[0], narrow.b_final.detach()[0]
    represented = W.norm(dim=0) > 0.5
    agree, conf = syc.index("agreement_with_user"), syc.index("confidence")
    x = syc.correlated_features(20_000, 1, torch.Generator().manual_seed(1))[:, 0]
    h = x @ W.T
    raw = syc.collateral_damage(W, b, x, syc.feature_direction(W, agree))
    assert raw[conf] > 0.5 * raw[agree] > 0  # the antipodal pair: raw ablation wipes out confidence too
    for i in range(2):
        assert feature_recovery(sae.W_dec.detach()[i], W[:, represented])["recovered"] >= 0.9
        z = sae.encode(h[:, None, :].expand(-1, 2, -1)).detach()[:, i]
        latents = latents_for_feature(z, x[:, agree])
        damage = syc.readout_damage(W, b, x, ablate_latents(h, z, sae.W_dec.detach()[i], latents))
        assert damage[agree] > 0.6 * raw[agree]        # it still removes most of agreement_with_user
        assert damage[conf] < 0.05 * raw[conf]         # and leaves confidence nearly untouched


def test_resampling_revives_dead_latents(pentagon):
    results = {}
    for resample_every in (None, 100):
        sae = SparseAutoencoder(2, 10, n_instances=2, l1_coeff=0.3, seed=0)
        with torch.no_grad():
            sae.b_enc[:, :5] = -100.0  # half the latents can never fire
        results[resample_every] = train_sae(sae, pentagon, steps=400, batch_size=256, lr=1e-2,
                                            resample_every=resample_every, progress=False)
    assert results[None]["dead"].tolist() == [5, 5] and results[None]["resampled"] == 0
    assert results[100]["resampled"] >= 10 and (results[100]["dead"] < 5).all()


def test_forward_loss_and_shapes_follow_the_recipe():
    sae = SparseAutoencoder(3, 6, n_instances=2, l1_coeff=torch.tensor([0.0, 0.5]), seed=1)
    with torch.no_grad():
        sae.b_dec.normal_()
    h = torch.randn(8, 2, 3)
    z, h_hat = sae(h)
    assert z.shape == (8, 2, 6) and h_hat.shape == (8, 2, 3) and (z >= 0).all()
    W_enc, b_enc, W_dec, b_dec = (p.detach()[1] for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec))
    assert torch.allclose(z[:, 1], torch.relu((h[:, 1] - b_dec) @ W_enc + b_enc), atol=1e-6)
    assert torch.allclose(h_hat[:, 1], z[:, 1] @ W_dec + b_dec, atol=1e-6)
    loss = sae.loss(h, z, h_hat)
    assert torch.allclose(loss[0], ((h - h_hat)[:, 0] ** 2).sum(-1).mean())
    assert torch.allclose(loss[1], ((h - h_hat)[:, 1] ** 2).sum(-1).mean() + 0.5 * z[:, 1].sum(-1).mean())


def test_feature_recovery_uses_the_signed_cosine_and_ablation_only_touches_firing_inputs():
    W = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    W_dec = torch.tensor([[-1.0, 0.0], [0.0, 3.0], [0.6, 0.8]])
    result = feature_recovery(W_dec, W)
    assert result["latent"].tolist() == [2, 1] and result["recovered"] == 0.5  # the antipodal latent is no match
    h, z = torch.randn(4, 2), torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    out = ablate_latents(h, z, W_dec, [0])
    assert torch.equal(out[[0, 2]], h[[0, 2]]) and torch.allclose(out[1], h[1] - 2 * W_dec[0])
    assert torch.allclose(out[3], h[3] - W_dec[0])
    feature = z[:, 1] + 0.01 * torch.arange(4.0)
    assert latents_for_feature(z, feature) == [1]


@pytest.mark.parametrize("kwargs, message", [
    ({"n_input": 0, "n_latents": 4}, "n_input must be a positive integer"),
    ({"n_input": 2, "n_latents": 4, "l1_coeff": -1.0}, "l1_coeff must be"),
    ({"n_input": 2, "n_latents": 4, "n_instances": 2, "l1_coeff": [0.1, 0.2, 0.3]}, "one per instance"),
])
def test_bad_arguments_say_what_to_do(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SparseAutoencoder(**kwargs)


def test_bad_inputs_say_what_to_do(pentagon):
    sae = SparseAutoencoder(3, 6, n_instances=2)
    with pytest.raises(ValueError, match=r"expected \(batch, n_instances, n_input\)"):
        sae(torch.randn(8, 3))
    with pytest.raises(ValueError, match="hidden dimensions"):
        train_sae(sae, pentagon, steps=1, progress=False)
    with pytest.raises(ValueError, match="n_hidden"):
        feature_recovery(torch.randn(6, 3), torch.randn(2, 5))
