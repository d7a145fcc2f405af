"""Lesson 06's checks beyond the declarations' generic tests: the probe and features, the tricky cases, and the
library (whose SparseAutoencoder is withheld while the lesson is graded) agreeing with the references."""

import pytest
import torch

from grader import key as answer_key
from grader.key import lesson06 as key
from utils import sae
from utils.checks import CheckFailed
from utils.checks import lesson06 as checks
from utils.withheld import withhold

from lesson_testing import verdict_on

LESSON = answer_key._load(str(key.__file__))


def _graded(exercise, student="carol"):
    return answer_key.graded_inputs(LESSON, exercise, student)


def _verdict(exercise, learner, inputs):
    return verdict_on(LESSON, exercise, learner, inputs)


def test_ablating_h_in_place_fails_although_the_value_it_returns_is_right():
    """Issue 13: the default probe clones the inputs, so only the h after the call shows an in-place edit."""
    def ablate_latents(h, z, W_dec, latents):
        for j in latents:
            h[:] = h - z[:, [j]] * W_dec[j]
        return h

    with pytest.raises(CheckFailed, match="changed the caller's h in place"):
        checks.check("ablate_latents", ablate_latents)
    for inputs in _graded(key.ABLATE_LATENTS):
        verdict = _verdict(key.ABLATE_LATENTS, ablate_latents, inputs)
        assert not verdict.ok and verdict.misconception == "modified_h_in_place", verdict
        judged = checks.checks.observe("ablate_latents", ablate_latents, inputs)
        reference = checks.checks.observe("ablate_latents", sae.ablate_latents, inputs)
        for case in inputs:  # the ablated values agree; only the caller's h tells them apart
            assert torch.allclose(judged[case]["ablated h"], reference[case]["ablated h"], atol=1e-5)
            assert reference[case]["input h left unchanged"] and not judged[case]["input h left unchanged"]


def test_a_copy_edited_in_place_is_fine():
    def ablate_latents(h, z, W_dec, latents):
        out = h.clone()
        out -= z[:, latents] @ W_dec[latents]
        return out
    checks.check("ablate_latents", ablate_latents)


def test_an_in_place_mistake_of_another_kind_is_still_told_that_h_changed():
    def ablate_latents(h, z, W_dec, latents):
        h.zero_()
        return sae.ablate_latents(h, z, W_dec, latents)
    with pytest.raises(CheckFailed, match="ablated h"):
        checks.check("ablate_latents", ablate_latents)


def test_the_loss_may_be_a_scalar_tensor_a_one_element_tensor_or_a_float():
    checks.check("sae_loss", lambda h, z, hh, l1: float(key.reference_sae_loss(h, z, hh, l1)))
    checks.check("sae_loss", lambda h, z, hh, l1: key.reference_sae_loss(h, z, hh, l1).reshape(1))
    with pytest.raises(CheckFailed, match="expected \\(\\)"):  # one loss per instance of another kind
        checks.check("sae_loss", lambda h, z, hh, l1: ((h - hh) ** 2).mean(1) + l1 * z.abs().sum(1))


@pytest.mark.parametrize("make", [key.match_inputs, key.ablation_inputs, key.encode_inputs])
def test_inputs_keep_the_properties_that_tell_mistakes_apart(make):
    for seed in range(30):
        for case, spec in make(torch.Generator().manual_seed(seed)).items():
            args = spec["args"]
            if make is key.match_inputs:
                W_dec, W = args
                assert key._well_separated(W_dec, W) and W_dec.shape[0] != W.shape[1]
                if case == "antipodal latent":
                    assert torch.allclose(key._cosines(W_dec, W)[2, 0], torch.tensor(-1.0), atol=1e-5)
                else:  # one latent is the best of features 0 and 1, signed and |cos|: many-to-one answers show
                    cos = key._cosines(W_dec, W)
                    assert key._shares_a_best_latent(cos) and key._shares_a_best_latent(cos.abs())
                    assert torch.allclose(cos[5, 2], torch.tensor(-1.0), atol=1e-5)
            elif make is key.ablation_inputs:
                h, z, W_dec, latents = args
                assert (z[:, latents] > 0).any(0).all() and (z[:, latents] == 0).any(0).all()
                others = [j for j in range(z.shape[1]) if j not in latents]
                assert (z[:, others] > 0).any()
            else:
                h, W_enc, b_enc, b_dec = args
                assert W_enc.shape[1] > W_enc.shape[0] and h.shape[0] > W_enc.shape[1] and (b_enc < 0).all()


def test_the_withheld_class_computes_what_the_references_do():
    """SparseAutoencoder is withheld for sae_encode, sae_loss and normalize_decoder: its methods are those answers."""
    model = sae.SparseAutoencoder(3, 7, n_instances=2, l1_coeff=torch.tensor([0.2, 0.7]), seed=2)
    with torch.no_grad():
        model.b_dec.normal_()
        model.b_enc.uniform_(-0.3, 0.0)
        model.W_dec.mul_(torch.rand(2, 7, 1) + 0.5)
    h = torch.randn(16, 2, 3)
    z, h_hat = model(h)
    loss = model.loss(h, z, h_hat)
    W_dec_before = model.W_dec.detach().clone()
    model.normalize_decoder()
    for i in range(2):
        W_enc, b_enc, b_dec = (p.detach()[i] for p in (model.W_enc, model.b_enc, model.b_dec))
        assert torch.allclose(z[:, i], key.reference_sae_encode(h[:, i], W_enc, b_enc, b_dec), atol=1e-6)
        assert torch.allclose(loss[i], key.reference_sae_loss(h[:, i], z[:, i], h_hat[:, i], [0.2, 0.7][i]), atol=1e-5)
        assert torch.allclose(model.W_dec.detach()[i], key.reference_normalize_decoder(W_dec_before[i]), atol=1e-6)
    assert key.SAE_CLASS in key.SAE_ENCODE.answers + key.SAE_LOSS.answers + key.NORMALIZE_DECODER.answers


def test_calling_a_withheld_library_answer_is_told_so():
    def ablate_latents(h, z, W_dec, latents):
        withhold("utils.sae.ablate_latents", "ablate_latents")  # what the stub in the graded view of utils does
    with pytest.raises(CheckFailed, match="course library's own answer"):
        checks.check("ablate_latents", ablate_latents)


def test_a_lookup_table_of_the_visible_inputs_fails_graded_inputs():
    seen = {}
    for case in answer_key.visible_inputs(LESSON, key.MATCH_FEATURES).values():
        W_dec, W = case["args"]
        seen[tuple(W.flatten().tolist())] = key.reference_match_features(W_dec, W)

    def memorised(W_dec, W):
        return seen.get(tuple(W.flatten().tolist()), (torch.zeros(W.shape[1]), torch.zeros(W.shape[1], dtype=torch.long)))

    checks.check("match_features", memorised)
    assert not _verdict(key.MATCH_FEATURES, memorised, _graded(key.MATCH_FEATURES, "mallory")[0]).ok


def test_the_old_many_to_one_answer_is_now_a_known_mistake_and_a_greedy_loop_passes():
    """Issue 14: recovery is a one-to-one matching; each feature taking its own best latent is `not_one_to_one`."""
    def many_to_one(W_dec, W):
        cos = (W_dec / W_dec.norm(dim=1, keepdim=True)) @ (W / W.norm(dim=0, keepdim=True))
        return cos.max(dim=0).values, cos.max(dim=0).indices

    with pytest.raises(CheckFailed, match="same latent"):
        checks.check("match_features", many_to_one)
    assert _verdict(key.MATCH_FEATURES, many_to_one, _graded(key.MATCH_FEATURES)[0]).misconception == "not_one_to_one"

    def greedy(W_dec, W):  # a student's version: a Python loop over a cosine matrix
        cos = (W_dec / W_dec.norm(dim=1, keepdim=True)) @ (W / W.norm(dim=0, keepdim=True))
        cosine, latent, used_latents, used_features = [0.0] * W.shape[1], [0] * W.shape[1], set(), set()
        pairs = sorted(((float(cos[j, f]), j, f) for j in range(cos.shape[0]) for f in range(cos.shape[1])), reverse=True)
        for value, j, f in pairs:
            if j not in used_latents and f not in used_features:
                cosine[f], latent[f] = value, j
                used_latents.add(j)
                used_features.add(f)
        return torch.tensor(cosine), torch.tensor(latent)

    checks.check("match_features", greedy)
