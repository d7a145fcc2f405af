"""Lesson 06's visible checks: the reference passes on every seed, each known wrong answer fails naming its
misconception."""

import pytest
import torch

from utils import sae
from utils.checks import CheckFailed
from utils.checks import lesson06 as checks


def encode(h, W_enc, b_enc, b_dec):
    return torch.relu((h - b_dec) @ W_enc + b_enc)


def loss(h, z, h_hat, l1):
    return ((h - h_hat) ** 2).sum(1).mean() + l1 * z.abs().sum(1).mean()


def normalize(W_dec):
    return W_dec / W_dec.norm(dim=1, keepdim=True)


def match(W_dec, W):
    result = sae.feature_recovery(W_dec, W)
    return result["cosine"], result["latent"]


def ablate_projection(h, z, W_dec, latents):
    for j in latents:
        d = W_dec[j] / W_dec[j].norm()
        h = h - (h @ d)[:, None] * d
    return h


def match_abs(W_dec, W):
    cos = normalize(W_dec) @ (W / W.norm(dim=0))
    return cos.abs().max(0).values, cos.abs().max(0).indices


CASES = {
    "sae_encode": (encode, [
        (lambda h, W, b, bd: torch.relu(h @ W + b), "forgot to subtract b_dec"),
        (lambda h, W, b, bd: (h - bd) @ W + b, "negative"),
        (lambda h, W, b, bd: torch.relu((h + bd) @ W + b), "subtracted, not added"),
        (lambda h, W, b, bd: torch.relu((h - bd) @ W), "encoder bias"),
        (lambda h, W, b, bd: torch.relu(W.T @ (h - bd).T + b[:, None]), "transposed"),
        (lambda h, W, b, bd: torch.relu(h @ W.T + b), "raised"),
    ]),
    "sae_loss": (loss, [
        (lambda h, z, hh, l1: ((h - hh) ** 2).mean() + l1 * z.abs().sum(1).mean(), "averaged over the dimensions"),
        (lambda h, z, hh, l1: ((h - hh) ** 2).sum(1).mean() + l1 * (z ** 2).sum(1).mean(), "L1 norm"),
        (lambda h, z, hh, l1: ((h - hh) ** 2).sum(1).mean() + l1 * hh.abs().sum(1).mean(), "not on the reconstruction"),
        (lambda h, z, hh, l1: ((h - hh) ** 2).sum(1).mean() + z.abs().sum(1).mean(), "left out l1_coeff"),
        (lambda h, z, hh, l1: ((h - hh) ** 2).sum() + l1 * z.abs().sum(), "average over the batch"),
        (lambda h, z, hh, l1: ((h - hh) ** 2).sum(1) + l1 * z.abs().sum(1), "one number"),
    ]),
    "normalize_decoder": (normalize, [
        (lambda W: W / W.norm(dim=0, keepdim=True), "columns"),
        (lambda W: W / W.norm(), "whole matrix"),
        (lambda W: W / (W ** 2).sum(1, keepdim=True), "squared norm"),
    ]),
    "match_features": (match, [
        (match_abs, r"\|cos\|"),
        (lambda D, W: ((D @ W).max(0).values, (D @ W).max(0).indices), "normalise both"),
        (lambda D, W: ((normalize(D) @ (W / W.norm(dim=0))).max(1).values, (normalize(D) @ W).max(1).indices),
         "one value per latent"),
        (lambda D, W: (sae.feature_recovery(D, W)["cosine"], sae.feature_recovery(D, W)["latent"] + 1), "indices"),
        (lambda D, W: sae.feature_recovery(D, W), "tuple"),
    ]),
    "ablate_latents": (sae.ablate_latents, [
        (ablate_projection, "raw-direction ablation"),
        (lambda h, z, D, ls: h - (z[:, ls] > 0).float() @ D[ls], "activation"),
        (lambda h, z, D, ls: h - z @ D, "every latent"),
        (lambda h, z, D, ls: h, "unchanged"),
    ]),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", CASES)
def test_reference_passes(name, seed):
    getattr(checks, f"check_{name}")(CASES[name][0], seed=seed)


@pytest.mark.parametrize("name, wrong, words", [(n, w, words) for n, (_, cases) in CASES.items() for w, words in cases])
def test_wrong_answers_name_their_misconception(name, wrong, words):
    with pytest.raises(CheckFailed, match=words):
        getattr(checks, f"check_{name}")(wrong)


def test_unwritten_exercise_says_so():
    def sae_encode(h, W_enc, b_enc, b_dec):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_sae_encode(sae_encode)
