"""Lesson 08's science on seeded runs: a digit classifier, its neurons' selectivity against random directions,
SAE latents against the same baselines, top-k against L1 at equal L0, and a latent ablation's targeted effect.

Every number asserted here is printed in the lesson; the thresholds leave room around the measured values
(stated beside each) so that the conclusions, not the digits, are what is tested.
"""

import pytest
import torch

from utils import digits
from utils import sae as saes
from utils import sycophancy as syc


@pytest.fixture(scope="module")
def run():
    """The lesson's setup, smaller: a 32-neuron MLP (best of 2 seeds), and one 64-latent L1 SAE on its activations.

    One thread, as in the lesson: these tensors are small, and a second thread only adds contention.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield _run()
    torch.set_num_threads(threads)


def _run() -> dict:
    torch.manual_seed(0)
    data = digits.load_digits(seed=0)
    nets = digits.DigitsMLP(32, n_instances=2, seed=0)
    digits.train_classifier(nets, data.x_train, data.y_train, steps=600, progress=False)
    with torch.no_grad():
        accuracy = digits.accuracy(nets(data.x_test), data.y_test)
        net = nets.select(int(accuracy.argmax()))
        h_train, h_test = net.hidden(data.x_train)[:, 0], net.hidden(data.x_test)[:, 0]
    scale = h_train.norm(dim=1).mean()
    sae = saes.SparseAutoencoder(32, 64, l1_coeff=0.1 * scale, seed=0)
    saes.train_sae(sae, h_train, steps=1500, batch_size=256, lr=3e-3, resample_every=500, progress=False)
    with torch.no_grad():
        z = sae.encode(h_test[:, None, :])[:, 0]
    return dict(data=data, accuracy=accuracy, net=net, h_train=h_train, h=h_test, y=data.y_test, sae=sae, z=z,
                scale=scale)


def test_the_split_is_seeded_stratified_and_complete():
    a, b, other = digits.load_digits(seed=0), digits.load_digits(seed=0), digits.load_digits(seed=1)
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(a.x_test, other.x_test)
    assert len(a.y_train) + len(a.y_test) == 1797 and a.x_train.shape[1] == 64
    assert 0 <= float(a.x_train.min()) and float(a.x_train.max()) <= 1
    held_out = torch.bincount(a.y_test, minlength=10).float() / torch.bincount(torch.cat([a.y_train, a.y_test]))
    assert ((held_out - 0.25).abs() < 0.02).all()                      # a quarter of every digit
    with pytest.raises(ValueError, match="test_fraction"):
        digits.load_digits(test_fraction=1.0)


def test_the_classifier_reaches_95_percent_on_held_out_digits(run):
    assert run["accuracy"].min() > 0.95, run["accuracy"]             # measured 98.0-98.4%
    with pytest.raises(ValueError, match="one flattened 8x8 image"):
        run["net"].hidden(torch.zeros(3, 8, 8))


def test_per_class_activation_and_selectivity_on_hand_made_units():
    acts = torch.tensor([[1.0, 2.0, 0.0, 0.0], [3.0, 2.0, 0.0, 5.0], [0.0, 2.0, 0.0, 0.0]])
    y = torch.tensor([0, 0, 1])
    table = digits.per_class_activation(acts, y, 2)
    assert torch.equal(table, torch.tensor([[2.0, 2.0, 0.0, 2.5], [0.0, 2.0, 0.0, 0.0]]))
    s = digits.selectivity(table)
    assert s[0] == 1 and s[1] == 0 and s[2].isnan() and s[3] == 1   # one class only, every class alike, silent


def test_thresholded_directions_fire_as_often_as_asked(run):
    d = digits.random_directions(3, 32, seed=0)
    assert torch.allclose(d.norm(dim=1), torch.ones(3))
    units = digits.thresholded_directions(run["h"], d, torch.tensor([0.1, 0.5, 0.9]))
    assert torch.allclose((units > 0).float().mean(0), torch.tensor([0.1, 0.5, 0.9]), atol=0.01)
    e = torch.eye(32)[:2]                                              # neurons read along their own axes
    assert torch.equal(digits.direction_activations(run["h"], e), run["h"][:, :2])


def test_sae_latents_beat_neurons_by_a_margin_over_random_directions_but_not_at_equal_firing_rates(run):
    """The issue's claim, and the control that qualifies it.

    Against random directions read like neurons, ReLU(h . d): latents at least 0.15 above (measured 0.24-0.28 over
    eight networks and two splits), neurons below (-0.15 to -0.18), latents at least 0.25 above neurons (about 0.4).
    Against random directions thresholded to fire as often as each unit: both within 0.1 of chance (measured
    within 0.04).
    """
    h, y, z = run["h"], run["y"], run["z"]
    neurons = digits.selectivity(digits.per_class_activation(h, y))
    latents = digits.selectivity(digits.per_class_activation(z, y))
    random_acts = digits.direction_activations(h, digits.random_directions(500, 32, seed=0))
    random = digits.selectivity(digits.per_class_activation(random_acts, y)).nanmean()
    assert latents.nanmean() - random > 0.15 and neurons.nanmean() - random < 0
    assert latents.nanmean() - neurons.nanmean() > 0.25
    for units, sel in ((h, neurons), (z, latents)):
        chance = digits.matched_random_selectivity(h, y, units, seed=2).nanmean()
        assert abs(sel.nanmean() - chance) < 0.1


def test_ablating_one_latent_hurts_its_digit_and_spares_the_others_unlike_the_direction(run):
    """For each digit, the latent most active on it: ablated, the digit loses on average at least 8% of its accuracy
    (measured 11-21% over four seeds) and no other digit loses more than 1% (measured at most 0.3%); projecting the
    latent's direction out of every input (lesson 05) costs the other digits at least five times as much on average
    (measured 1.7-4.4% against about 0)."""
    net, h, y, z, W_dec = run["net"], run["h"], run["y"], run["z"], run["sae"].W_dec.detach()[0]
    table = digits.per_class_activation(z, y)

    def logits(edited):
        with torch.no_grad():
            return net.logits_from_hidden(edited[:, None, :])[:, 0]

    clean = logits(h)
    latent, direction = [], []
    for c in range(10):
        j = int(table[c].argmax())
        latent.append(digits.targeted_and_collateral(digits.accuracy_drop(clean, logits(saes.ablate_latents(h, z, W_dec, [j])), y), c))
        direction.append(digits.targeted_and_collateral(digits.accuracy_drop(clean, logits(syc.ablate_direction(h, W_dec[j])), y), c))
    latent_t, latent_c = torch.tensor(latent).T
    direction_c = torch.tensor(direction)[:, 1]
    assert latent_t.mean() > 0.08 and latent_c.max() < 0.01
    assert direction_c.mean() > 5 * latent_c.mean().clamp_min(1e-3)


def test_topk_reconstructs_better_than_l1_at_equal_l0(run):
    """Gao et al. (2024): at equal L0 the top-k SAE's FVU is lower (measured 0.11 against 0.31 at L0 = 4)."""
    h_train, h = run["h_train"], run["h"][:, None, :]
    l1 = saes.SparseAutoencoder(32, 64, n_instances=4, l1_coeff=torch.tensor([0.01, 0.03, 0.1, 0.3]) * run["scale"], seed=0)
    saes.train_sae(l1, h_train, steps=1500, batch_size=256, lr=3e-3, resample_every=500, progress=False)
    with torch.no_grad():
        z, h_hat = l1(h.expand(-1, 4, -1))
    curve = saes.l0(z), saes.fraction_of_variance_unexplained(h.expand(-1, 4, -1), h_hat)
    topk = saes.TopKSparseAutoencoder(32, 64, k=4, seed=0)
    saes.train_sae(topk, h_train, steps=1500, batch_size=256, lr=3e-3, resample_every=500, progress=False)
    with torch.no_grad():
        z_k, h_hat_k = topk(h)
    assert saes.l0(z_k) <= 4
    assert saes.fraction_of_variance_unexplained(h, h_hat_k) < 0.8 * digits.fvu_at_l0(*curve, saes.l0(z_k))


def test_fvu_at_l0_interpolates_in_log_l0_and_never_extrapolates():
    l0, fvu = torch.tensor([8.0, 2.0]), torch.tensor([0.1, 0.3])
    assert torch.allclose(digits.fvu_at_l0(l0, fvu, torch.tensor([2.0, 4.0, 8.0])), torch.tensor([0.3, 0.2, 0.1]))
    assert digits.fvu_at_l0(l0, fvu, torch.tensor([1.0, 16.0])).isnan().all()


def test_a_latent_family_follows_the_nearest_parent():
    e = torch.eye(3)
    small = e[:1] + e[1:2]                                          # one latent between axes 0 and 1 ...
    large = torch.stack([e[0], e[1], e[2]])                         # ... splits into both; axis 2 is another family
    levels = digits.latent_family([small, large], root=0, min_cosine=0.5)
    assert [j for j, _, _ in levels[1]] == [0, 1] and all(abs(c - 2 ** -0.5) < 1e-6 for _, _, c in levels[1])
    assert digits.latent_family([small, large], 0, alive=[torch.tensor([True]), torch.tensor([True, False, True])])[1] == \
        [(0, 0, pytest.approx(2 ** -0.5))]
