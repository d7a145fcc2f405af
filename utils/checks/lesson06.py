"""Visible checks for lesson 06 (sparse autoencoders). Each exercise: probe_*, judge_*, check_*.

Inputs are one SAE instance's tensors, built from `seed`: h (batch, n_input), W_enc (n_input, n_latents),
b_enc (n_latents,), W_dec (n_latents, n_input), b_dec (n_input,); the reference is utils.sae.
"""

from __future__ import annotations

import torch

from utils import sae
from utils.checks import Plain, as_tensor, call_learner, close, expect_shape, fail, make_check
from utils.device import make_generator

N_INPUT, N_LATENTS, BATCH = 3, 7, 64


def _inputs(seed: int) -> dict[str, torch.Tensor]:
    """Seeded SAE tensors; decoder rows deliberately not unit length, sparse non-negative h-like data."""
    g = make_generator(6000 + seed, torch.device("cpu"))
    h = torch.randn(BATCH, N_INPUT, generator=g) * (torch.rand(BATCH, 1, generator=g) < 0.5)
    return {"h": h, "W_enc": torch.randn(N_INPUT, N_LATENTS, generator=g),
            "b_enc": -0.3 * torch.rand(N_LATENTS, generator=g),
            "W_dec": torch.randn(N_LATENTS, N_INPUT, generator=g) * (0.5 + torch.rand(N_LATENTS, 1, generator=g)),
            "b_dec": 0.5 * torch.randn(N_INPUT, generator=g),
            "z": torch.relu(torch.randn(BATCH, N_LATENTS, generator=g) - 0.5)}


def _error(error: Exception) -> Plain:
    return {"error": f"{type(error).__name__}: {error}"[:400]}


# --- sae_encode ----------------------------------------------------------------------------------

def probe_sae_encode(sae_encode, seed: int) -> Plain:
    t = _inputs(seed)
    try:
        z = call_learner(sae_encode, t["h"].clone(), t["W_enc"].clone(), t["b_enc"].clone(), t["b_dec"].clone())
    except AssertionError:
        raise
    except Exception as error:  # noqa: BLE001 - a shape error names the orientation mistake below
        return _error(error)
    return {"z": as_tensor(z, "sae_encode(h, W_enc, b_enc, b_dec)")}


def _encode(t: dict[str, torch.Tensor], centre: bool = True, relu: bool = True) -> torch.Tensor:
    pre = (t["h"] - t["b_dec"] if centre else t["h"]) @ t["W_enc"] + t["b_enc"]
    return torch.relu(pre) if relu else pre


def judge_sae_encode(data: Plain, seed: int) -> str:
    t = _inputs(seed)
    if "error" in data:
        fail(f"sae_encode raised {data['error']}. h is (batch, n_input) and W_enc is (n_input, n_latents), so the "
             "pre-activation is (h - b_dec) @ W_enc + b_enc, shape (batch, n_latents).")
    got, want = data["z"], _encode(t)
    if tuple(got.shape) == (N_LATENTS, BATCH):
        fail("z is transposed: return (batch, n_latents), one row per input, as (h - b_dec) @ W_enc gives it.")
    expect_shape(got, (BATCH, N_LATENTS), "sae_encode(...)", "One row of latent activations per input.")
    if (got < 0).any():
        fail("some latent activations are negative: the encoder ends in a ReLU, so z >= 0 (a latent either fires, "
             "with some strength, or does not).")
    if close(got, _encode(t, centre=False), atol=1e-5):
        fail("you forgot to subtract b_dec before encoding: z = ReLU((h - b_dec) @ W_enc + b_enc). The decoder "
             "bias is the SAE's estimate of the mean activation; encoding what is left over keeps the two consistent.")
    if close(got, torch.relu((t["h"] + t["b_dec"]) @ t["W_enc"] + t["b_enc"]), atol=1e-5):
        fail("b_dec is subtracted, not added, before encoding: z = ReLU((h - b_dec) @ W_enc + b_enc).")
    if close(got, torch.relu((t["h"] - t["b_dec"]) @ t["W_enc"]), atol=1e-5):
        fail("you forgot the encoder bias b_enc (a negative b_enc is what lets latents stay silent on small inputs).")
    if not close(got, want, atol=1e-5):
        fail("expected z = ReLU((h - b_dec) @ W_enc + b_enc).")
    return "sae_encode: ReLU((h - b_dec) @ W_enc + b_enc), (batch, n_latents)"


check_sae_encode = make_check(probe_sae_encode, judge_sae_encode)


# --- sae_loss ------------------------------------------------------------------------------------

L1_COEFFS = (0.1, 0.5)


def _h_hat(t: dict[str, torch.Tensor]) -> torch.Tensor:
    return t["z"] @ t["W_dec"] + t["b_dec"]


def probe_sae_loss(sae_loss, seed: int) -> Plain:
    t = _inputs(seed)
    return {"loss": [as_tensor(call_learner(sae_loss, t["h"].clone(), t["z"].clone(), _h_hat(t), l1),
                               "sae_loss(h, z, h_hat, l1_coeff)") for l1 in L1_COEFFS]}


def judge_sae_loss(data: Plain, seed: int) -> str:
    t = _inputs(seed)
    h, z, h_hat = t["h"], t["z"], _h_hat(t)
    for got, l1 in zip(data["loss"], L1_COEFFS, strict=True):
        if got.numel() != 1:
            fail(f"sae_loss should return one number (a scalar tensor or float), got shape {tuple(got.shape)}: "
                 "average over the batch.")
        got = float(got)
        reconstruction = float(((h - h_hat) ** 2).sum(1).mean())
        sparsity = float(z.abs().sum(1).mean())
        want = reconstruction + l1 * sparsity
        candidates = {
            "the reconstruction error is summed over the input dimensions and averaged over the batch, "
            "||h - h_hat||^2 per input; you averaged over the dimensions too (torch.mean of the square)":
                float(((h - h_hat) ** 2).mean()) + l1 * sparsity,
            "the sparsity penalty is the L1 norm, sum |z|, not the squared L2 norm: L1 is what drives "
            "activations exactly to zero": reconstruction + l1 * float((z ** 2).sum(1).mean()),
            "the penalty is on the latent activations z, not on the reconstruction h_hat":
                reconstruction + l1 * float(h_hat.abs().sum(1).mean()),
            "you left out l1_coeff: the penalty is l1_coeff * ||z||_1": reconstruction + sparsity,
            "average over the batch rather than summing, so the loss does not grow with the batch size":
                float(((h - h_hat) ** 2).sum()) + l1 * float(z.abs().sum()),
            "the L1 penalty is summed over latents per input, then averaged over the batch; you averaged "
            "over the latents too": reconstruction + l1 * float(z.abs().mean()),
        }
        if abs(got - want) <= 1e-4 * max(1.0, abs(want)):
            continue
        for message, value in candidates.items():
            if abs(got - value) <= 1e-4 * max(1.0, abs(value)):
                fail(message + ".")
        fail(f"with l1_coeff = {l1}: expected mean over the batch of ||h - h_hat||^2 + l1_coeff * ||z||_1 = "
             f"{want:.5f}, got {got:.5f}.")
    return "sae_loss: batch mean of squared reconstruction error plus l1_coeff times the L1 norm of z"


check_sae_loss = make_check(probe_sae_loss, judge_sae_loss)


# --- normalize_decoder ---------------------------------------------------------------------------

def probe_normalize_decoder(normalize_decoder, seed: int) -> Plain:
    W_dec = _inputs(seed)["W_dec"]
    return {"W": as_tensor(call_learner(normalize_decoder, W_dec.clone()), "normalize_decoder(W_dec)")}


def judge_normalize_decoder(data: Plain, seed: int) -> str:
    W_dec = _inputs(seed)["W_dec"]
    got = data["W"]
    expect_shape(got, tuple(W_dec.shape), "normalize_decoder(W_dec)", "Same shape as W_dec, (n_latents, n_input).")
    if close(got, W_dec / W_dec.norm(dim=0, keepdim=True), atol=1e-5):
        fail("you normalised the columns; each ROW of W_dec is one latent's direction (n_latents rows), so divide "
             "each row by its norm: W_dec / W_dec.norm(dim=1, keepdim=True).")
    if close(got, W_dec / W_dec.norm(), atol=1e-5):
        fail("you divided by the norm of the whole matrix; every row gets its own norm.")
    if close(got, W_dec / (W_dec ** 2).sum(1, keepdim=True), atol=1e-5):
        fail("divide by the norm, not the squared norm.")
    if not close(got, W_dec / W_dec.norm(dim=1, keepdim=True), atol=1e-5):
        fail("expected every row of W_dec divided by its own norm, so that each latent direction has length 1.")
    return "normalize_decoder: every latent direction (row) at unit norm"


check_normalize_decoder = make_check(probe_normalize_decoder, judge_normalize_decoder)


# --- match_features ------------------------------------------------------------------------------

def _features(seed: int) -> torch.Tensor:
    """True feature directions W (n_input, 5) with unequal norms; latent 2 points opposite to feature 0."""
    g = make_generator(6100 + seed, torch.device("cpu"))
    return torch.randn(N_INPUT, 5, generator=g) * (0.3 + 2 * torch.rand(5, generator=g))


def _match_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    W, W_dec = _features(seed), _inputs(seed)["W_dec"].clone()
    W_dec[2] = -3.0 * W[:, 0]  # an antipodal latent: |cos| would call it a perfect match for feature 0
    W_dec[4] = 0.4 * W[:, 0] + 0.2 * W[:, 1]  # short but well aligned: raw dot products would overlook it
    return W_dec, W


def probe_match_features(match_features, seed: int) -> Plain:
    W_dec, W = _match_inputs(seed)
    result = call_learner(match_features, W_dec.clone(), W.clone())
    if not isinstance(result, tuple) or len(result) != 2:
        return {"type": type(result).__name__}
    return {"cosine": as_tensor(result[0], "cosine"), "latent": as_tensor(result[1], "latent")}


def judge_match_features(data: Plain, seed: int) -> str:
    W_dec, W = _match_inputs(seed)
    if "type" in data:
        fail(f"match_features should return a tuple (cosine, latent) of two tensors, got {data['type']}.")
    got_cos, got_latent = data["cosine"], data["latent"].long()
    n_features = W.shape[1]
    if tuple(got_cos.shape) == (W_dec.shape[0],):
        fail(f"you returned one value per latent ({W_dec.shape[0]}); the question is, for each true FEATURE "
             f"({n_features} of them), which latent matches it best: take the max over latents (dim 0 of the "
             "(n_latents, n_features) cosine matrix).")
    expect_shape(got_cos, (n_features,), "cosine", "One best cosine per true feature.")
    expect_shape(got_latent, (n_features,), "latent", "One best latent index per true feature.")
    want = sae.feature_recovery(W_dec, W)
    unit_dec, unit_W = W_dec / W_dec.norm(dim=1, keepdim=True), W / W.norm(dim=0, keepdim=True)
    if close(got_cos, (unit_dec @ unit_W).abs().max(0).values, atol=1e-4) and not close(got_cos, want["cosine"], 1e-4):
        fail("you used |cos|: a latent only fires positively (ReLU), so a latent pointing OPPOSITE to a feature "
             "reconstructs minus that feature; it is not a match. Use the signed cosine.")
    if close(got_cos, (W_dec @ W).max(0).values, atol=1e-4) or close(got_cos, (unit_dec @ W).max(0).values, 1e-4) \
            or close(got_cos, (W_dec @ unit_W).max(0).values, atol=1e-4):
        fail("normalise both the latent directions (rows of W_dec) and the features (columns of W) before the dot "
             "product: a cosine is between -1 and 1 and does not depend on lengths.")
    if not close(got_cos, want["cosine"], atol=1e-4):
        fail("cosine[i] should be the largest signed cosine between feature i (column i of W) and any latent "
             "direction (row of W_dec).")
    if not torch.equal(got_latent, want["latent"]):
        fail(f"the cosines are right but the latent indices are not: expected {want['latent'].tolist()}, got "
             f"{got_latent.tolist()} (argmax over latents, dim 0).")
    return "match_features: best signed cosine per feature, and which latent gives it"


check_match_features = make_check(probe_match_features, judge_match_features)


# --- ablate_latents ------------------------------------------------------------------------------

def _ablation_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    t = _inputs(seed)
    return t["h"], t["z"], t["W_dec"], [1, 4] if seed % 2 == 0 else [3]


def probe_ablate_latents(ablate_latents, seed: int) -> Plain:
    h, z, W_dec, latents = _ablation_inputs(seed)
    return {"h": as_tensor(call_learner(ablate_latents, h.clone(), z.clone(), W_dec.clone(), list(latents)),
                           "ablate_latents(h, z, W_dec, latents)")}


def judge_ablate_latents(data: Plain, seed: int) -> str:
    h, z, W_dec, latents = _ablation_inputs(seed)
    got, want = data["h"], sae.ablate_latents(h, z, W_dec, latents)
    expect_shape(got, tuple(h.shape), "ablate_latents(...)", "Same shape as h, (batch, n_input).")
    if close(got, h, atol=1e-6):
        fail("h came back unchanged: subtract each chosen latent's contribution z[:, j] * W_dec[j].")
    projected = h
    for j in latents:
        d = W_dec[j] / W_dec[j].norm()
        projected = projected - (projected @ d)[:, None] * d
    if close(got, projected, atol=1e-4):
        fail("you projected the latent's direction out of h, which is the raw-direction ablation of lesson 05: it "
             "changes every input. Ablating a latent subtracts only what the latent contributed, z[:, j] * "
             "W_dec[j], so inputs on which it did not fire are left alone.")
    fired = (z[:, latents] > 0).float()
    if close(got, h - fired @ W_dec[latents], atol=1e-4):
        fail("weight each direction by the latent's activation z[:, j], not by whether it fired.")
    if close(got, h - z @ W_dec, atol=1e-4):
        fail("you removed every latent's contribution; only the ones listed in `latents`.")
    if not close(got, want, atol=1e-4):
        fail("expected h - z[:, latents] @ W_dec[latents]: the sum over the chosen latents of z[:, j] * W_dec[j].")
    return "ablate_latents: subtracts z[:, j] * W_dec[j] for the chosen latents only"


check_ablate_latents = make_check(probe_ablate_latents, judge_ablate_latents)


EXERCISES = {
    "test_sae_encode": ("sae_encode", probe_sae_encode, judge_sae_encode),
    "test_sae_loss": ("sae_loss", probe_sae_loss, judge_sae_loss),
    "test_normalize_decoder": ("normalize_decoder", probe_normalize_decoder, judge_normalize_decoder),
    "test_match_features": ("match_features", probe_match_features, judge_match_features),
    "test_ablate_latents": ("ablate_latents", probe_ablate_latents, judge_ablate_latents),
}
