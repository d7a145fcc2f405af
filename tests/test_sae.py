"""utils.sae: the standard SAE recipe, and feature recovery from toy models in superposition.

Recovery: latents are matched to features one to one (greedy on signed cosines) and a feature counts as recovered
when its latent has cosine > 0.99 (the default). Random dictionaries set the chance level: at 0.9 they already
"recover" most features in two dimensions (the closed form below), at 0.99 far fewer.
"""

import itertools
import math

import pytest
import torch

from utils import ToyModel, best_of_seeds, train
from utils import sycophancy as syc
from utils import sae as saes
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
    recovered = [feature_recovery(sae.W_dec.detach()[i], W, threshold=0.99)["recovered"] for i in range(4)]
    assert min(recovered) >= 0.8 and sorted(recovered)[1] >= 0.9, recovered  # 3 of 4 seeds get >= 90%
    chance = saes.random_dictionary_recovery(W, 10, n_draws=200, threshold=0.99)
    assert chance.mean() < 0.5 and (chance == 1).float().mean() < 0.05  # far below the trained SAEs
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
        # five of the six represented features at cos > 0.99; agreement_with_user's latent stays near 0.95
        assert feature_recovery(sae.W_dec.detach()[i], W[:, represented], threshold=0.99)["recovered"] >= 0.8
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


def test_hand_written_gradients_equal_autograd_and_training_matches_the_autograd_loop():
    sae = SparseAutoencoder(3, 7, n_instances=4, l1_coeff=torch.tensor([0.0, 0.1, 0.3, 1.0]), seed=1)
    with torch.no_grad():
        sae.b_enc.normal_(), sae.b_dec.normal_(), sae.W_enc.mul_(1.3)   # off the tied start, some latents dead
    h = torch.randn(64, 1, 3).relu().expand(-1, 4, -1)                     # one model read by 4 SAEs, as in a sweep
    sae.loss(h, *sae(h)).sum().backward()
    expected = {name: p.grad.clone() for name, p in sae.named_parameters()}
    with torch.no_grad():
        loss, fired = saes.sae_gradients(sae, h)
    for name, p in sae.named_parameters():
        assert p.grad.stride() == p.stride() and torch.allclose(p.grad, expected[name], atol=1e-6), name
    assert torch.allclose(loss, sae.loss(h, *sae(h)).detach(), atol=1e-6)
    assert torch.equal(fired, (sae(h)[0] > 0).any(0))

    # a few hundred steps, a resampling included, against the plain autograd loop with the same data
    toy = ToyModel(5, 2, sparsity=0.9, seed=0)
    fast, slow = (SparseAutoencoder(2, 6, n_instances=2, l1_coeff=0.3, seed=0) for _ in range(2))
    train_sae(fast, toy, steps=120, batch_size=256, lr=1e-2, resample_every=60, progress=False)
    optimizer, g = torch.optim.Adam(slow.parameters(), lr=1e-2), torch.Generator().manual_seed(0)
    fired = torch.zeros(2, 6, dtype=torch.bool)
    for step in range(1, 121):
        h = toy.hidden(toy.generate_batch(256, g)).detach().expand(-1, 2, -1)
        z, h_hat = slow(h)
        optimizer.zero_grad()
        slow.loss(h, z, h_hat).sum().backward()
        optimizer.step()
        slow.normalize_decoder()
        fired |= (z > 0).any(0)
        if step == 60:
            slow.resample(~fired, h, optimizer, g)
            fired[:] = False
    for a, b in zip(fast.parameters(), slow.parameters()):
        assert torch.allclose(a, b, atol=1e-4)


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


# --- one-to-one matching and its chance level ---------------------------------------------------

def test_matching_is_one_to_one_and_agrees_with_the_optimal_assignment_when_best_latents_differ():
    cos = torch.tensor([[0.9, 0.8, 0.1], [0.5, 0.7, 0.2], [0.0, 0.1, 0.3]])  # latent 0 is the best of features 0 and 1
    cosine, latent = saes.match_one_to_one(cos)
    assert latent.tolist() == [0, 1, 2] and torch.allclose(cosine, torch.tensor([0.9, 0.7, 0.3]))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # distinct argmaxes: greedy = each feature's best = the brute-force optimal assignment
        cos = torch.rand(5, 3, generator=g)
        if len(set(cos.argmax(0).tolist())) < 3:
            continue
        best = max(itertools.permutations(range(5), 3), key=lambda p: sum(cos[j, f] for f, j in enumerate(p)))
        assert saes.match_one_to_one(cos)[1].tolist() == list(best) == cos.argmax(0).tolist()


def test_dead_latents_recover_nothing_and_unmatched_features_say_so():
    W = torch.eye(2)
    W_dec = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    assert feature_recovery(W_dec, W)["recovered"] == 1.0
    result = feature_recovery(W_dec, W, alive=torch.tensor([True, False, False]))  # one live latent, two features
    assert result["latent"].tolist() == [0, -1] and math.isnan(result["cosine"][1]) and result["recovered"] == 0.5


@pytest.mark.parametrize("n_hidden, n_latents, threshold", [(2, 10, 0.9), (2, 10, 0.99), (3, 16, 0.99)])
def test_random_dictionaries_score_what_geometry_predicts(n_hidden, n_latents, threshold):
    """Features too far apart to share a latent: each is recovered with probability 1 - (1 - p)^n_latents, where p
    is the chance that one random direction lies within arccos(threshold) of it (an arc in 2-D, a cap in 3-D)."""
    if n_hidden == 2:  # a regular pentagon (72 degrees apart: no latent is within 26 degrees of two features)
        angles = torch.arange(5) * 2 * math.pi / 5
        W = torch.stack([angles.cos(), angles.sin()])
        p = math.acos(threshold) / math.pi
    else:  # three orthogonal features
        W = torch.eye(3)
        p = (1 - threshold) / 2
    chance = saes.random_dictionary_recovery(W, n_latents, n_draws=1000, threshold=threshold, seed=0)
    expected = 1 - (1 - p) ** n_latents                # 0.79, 0.37, 0.077
    assert abs(chance.mean().item() - expected) < 4 * chance.std().item() / math.sqrt(1000) + 1e-3, (chance.mean(), expected)
    if threshold == 0.9:
        assert chance.mean() > 0.7  # the loose measure: a random dictionary "recovers" most of the pentagon


# --- the measures SAE papers report, on hand-made cases -----------------------------------------

def test_l0_dead_fraction_fvu_and_shrinkage_on_hand_made_cases():
    z = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [3.0, 2.0, 0.0]])     # (batch 3, latents 3)
    assert saes.l0(z).item() == 1.0                                         # (1 + 0 + 2) / 3
    assert saes.dead_fraction(z).item() == pytest.approx(1 / 3)             # latent 2 never fires
    stacked = torch.stack([z, torch.ones_like(z)], dim=1)                   # (batch, 2 instances, latents)
    assert saes.l0(stacked).tolist() == [1.0, 3.0] and saes.dead_fraction(stacked).tolist()[1] == 0.0
    h = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert saes.fraction_of_variance_unexplained(h, 0.5 * h).item() == pytest.approx(0.25)  # 0.5 of error / 2 of variance
    assert saes.fraction_of_variance_unexplained(h, torch.zeros_like(h)).item() == pytest.approx(1.0)  # the mean
    h = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    h_hat = torch.tensor([[1.0, 0.0], [5.0, 5.0], [0.0, 0.5]])
    assert saes.shrinkage(h, h_hat).item() == pytest.approx(0.5)           # the zero input is left out


def test_downstream_loss_is_recovered_by_a_perfect_sae_and_lost_by_an_empty_one():
    model = ToyModel(3, 3, sparsity=0.5, seed=0)
    with torch.no_grad():
        model.W.copy_(torch.eye(3)[None])           # h = x >= 0, and the model reconstructs x exactly
        model.b_final.fill_(0.1)
    sae = SparseAutoencoder(3, 3, n_instances=2, seed=0)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(3).expand(2, 3, 3))
        sae.W_dec.copy_(torch.stack([torch.eye(3), torch.zeros(3, 3)]))  # SAE 0: h_hat = ReLU(h) = h; SAE 1: h_hat = 0
    x = model.generate_batch(64, torch.Generator().manual_seed(0))
    result = saes.downstream_loss(model, sae, x)
    assert result["spliced"].shape == (2,) and torch.allclose(result["spliced"][0], result["clean"][0])
    assert torch.allclose(result["spliced"][1], result["zero"][1]) and result["zero"][0] > result["clean"][0]
    assert torch.allclose(result["recovered"], torch.tensor([1.0, 0.0]), atol=1e-6)


# --- activations recorded from any network, and the top-k SAE (lesson 08) ------------------------

def _sparse_combinations(n: int, W: torch.Tensor, seed: int) -> torch.Tensor:
    """(n, n_hidden) activations h = x W^T of sparse non-negative features x: a dataset with no model behind it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, W.shape[1], generator=g) * (torch.rand(n, W.shape[1], generator=g) < 0.1)
    return x @ W.T




def test_train_sae_reads_a_fixed_tensor_of_activations(one_thread):
    W = torch.nn.functional.normalize(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)), dim=0)
    h = _sparse_combinations(4096, W, seed=1)                                # (4096, 3)
    sae = SparseAutoencoder(3, 10, l1_coeff=0.1, seed=0)
    run = train_sae(sae, h, steps=600, batch_size=256, lr=1e-2, resample_every=200, progress=False)
    assert run["loss"].shape == (600, 1) and run["loss"][-100:].mean() < 0.2 * run["loss"][:10].mean()
    assert feature_recovery(sae.W_dec.detach()[0], W, threshold=0.99)["recovered"] == 1

    # (n, n_instances, n_input): each SAE reads its own column and trains as it would alone
    data = torch.stack([h, _sparse_combinations(4096, W, seed=2)], dim=1)  # (4096, 2, 3)
    pair, alone = SparseAutoencoder(3, 10, n_instances=2, l1_coeff=0.1, seed=0), SparseAutoencoder(3, 10, l1_coeff=0.1, seed=0)
    with torch.no_grad():
        for p, q in zip(alone.parameters(), pair.parameters()):
            p.copy_(q[1:])
    train_sae(pair, data, steps=50, batch_size=64, lr=1e-2, resample_every=None, progress=False)
    train_sae(alone, data[:, 1], steps=50, batch_size=64, lr=1e-2, resample_every=None, progress=False)
    for p, q in zip(alone.parameters(), pair.parameters()):
        assert torch.allclose(p, q[1:], atol=1e-5)
    with pytest.raises(ValueError, match=r"expected \(n, n_input\) = \(n, 3\)"):
        train_sae(sae, torch.zeros(10, 4), steps=1, progress=False)


class SquaredPenalty(SparseAutoencoder):
    def loss(self, h, z, h_hat):
        return ((h - h_hat) ** 2).sum(-1).mean(0) + self.l1_coeff * z.square().sum(-1).mean(0)


class Softplus(SparseAutoencoder):
    def activation(self, pre):
        return torch.nn.functional.softplus(pre)


class TopKOfAbs(saes.TopKSparseAutoencoder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, k=2, **kwargs)

    @staticmethod
    def top_k(pre, k):
        top = pre.abs().topk(k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, pre.gather(-1, top.indices))


@pytest.mark.parametrize("kind", [SquaredPenalty, Softplus, TopKOfAbs], ids=lambda k: k.__name__)
def test_train_sae_differentiates_an_sae_its_formulas_do_not_know_with_autograd(one_thread, kind):
    """sae_gradients knows SparseAutoencoder's loss with ReLU or top-k; another loss or activation trains as the
    autograd loop does."""
    data = torch.randn(512, 3, generator=torch.Generator().manual_seed(2)).relu()
    fast, slow = (kind(3, 6, l1_coeff=0.5, seed=0) if kind is not TopKOfAbs else kind(3, 6, seed=0) for _ in range(2))
    train_sae(fast, data, steps=40, batch_size=64, lr=1e-2, resample_every=None, progress=False)
    optimizer, g = torch.optim.Adam(slow.parameters(), lr=1e-2), torch.Generator().manual_seed(0)
    for _ in range(40):
        h = data[torch.randint(len(data), (64,), generator=g)][:, None, :]
        optimizer.zero_grad()
        slow.loss(h, *slow(h)).sum().backward()
        optimizer.step()
        slow.normalize_decoder()
    for a, b in zip(fast.parameters(), slow.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


def test_topk_keeps_the_k_largest_through_relu_and_trains_with_the_same_loop(one_thread):
    pre = torch.tensor([[3.0, -5.0, 1.0, 2.0], [-1.0, 0.5, -2.0, -3.0]])
    assert torch.equal(saes.TopKSparseAutoencoder.top_k(pre, 2), torch.tensor([[3.0, 0, 0, 2.0], [0, 0.5, 0, 0]]))
    sae = saes.TopKSparseAutoencoder(3, 8, n_instances=2, k=2, seed=1)
    assert (sae.l1_coeff == 0).all()
    with torch.no_grad():
        sae.b_enc.normal_(), sae.b_dec.normal_()
    h = torch.randn(64, 2, 3)
    z, h_hat = sae(h)
    assert ((z > 0).sum(-1) <= 2).all() and (z >= 0).all()
    sae.loss(h, z, h_hat).sum().backward()                                      # the hand-written gradients hold
    expected = {name: p.grad.clone() for name, p in sae.named_parameters()}
    with torch.no_grad():
        saes.sae_gradients(sae, h)
    for name, p in sae.named_parameters():
        assert torch.allclose(p.grad, expected[name], atol=1e-6), name
    W = torch.nn.functional.normalize(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)), dim=0)
    trained = saes.TopKSparseAutoencoder(3, 10, k=1, seed=0)
    train_sae(trained, _sparse_combinations(4096, W, seed=1), steps=400, batch_size=256, lr=1e-2, progress=False)
    assert feature_recovery(trained.W_dec.detach()[0], W, threshold=0.95)["recovered"] >= 0.8
    for k, message in ((0, "k must be a positive integer"), (9, "more than n_latents")):
        with pytest.raises(ValueError, match=message):
            saes.TopKSparseAutoencoder(3, 8, k=k)
