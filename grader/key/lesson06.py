"""Answer key of lesson 06 (sparse autoencoders): references, known wrong answers, input builders.

One SAE instance throughout: h (batch, n_input), W_enc (n_input, n_latents), b_enc (n_latents,),
W_dec (n_latents, n_input), b_dec (n_input,). The library's SparseAutoencoder holds many instances and
computes encode, loss and the decoder normalisation as methods: the whole class is withheld while the
lesson is graded (its methods cannot be withheld one by one); the demonstrations, which use it, do not
run during grading.
"""

from __future__ import annotations

import torch

from grader.key import Exercise, Wrong, integer, uniform
from utils import sae

LESSON = "06_sparse_autoencoders"
CHECKS = "utils.checks.lesson06"
SAE_CLASS = "utils.sae.SparseAutoencoder"


def _decoder(g: torch.Generator, n_latents: int, n_input: int) -> torch.Tensor:
    """Decoder rows deliberately not unit length (norms 0.5 to 1.5)."""
    return torch.randn(n_latents, n_input, generator=g) * (0.5 + torch.rand(n_latents, 1, generator=g))


def _sparse_h(g: torch.Generator, batch: int, n_input: int) -> torch.Tensor:
    """h-like data: about half the rows are zero (an input with no active feature)."""
    h = torch.randn(batch, n_input, generator=g) * (torch.rand(batch, 1, generator=g) < 0.5)
    h[0] = torch.randn(n_input, generator=g)  # at least one non-zero row ...
    h[1] = 0.0                                 # ... and one zero row
    return h


def _z(g: torch.Generator, batch: int, n_latents: int) -> torch.Tensor:
    """Sparse, non-negative latent activations, as a ReLU gives them."""
    return torch.relu(torch.randn(batch, n_latents, generator=g) - 0.5)


# --- sae_encode ----------------------------------------------------------------------------------

def reference_sae_encode(h: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, b_dec: torch.Tensor) -> torch.Tensor:
    return torch.relu((h - b_dec) @ W_enc + b_enc)


def encode_inputs(g: torch.Generator) -> dict:
    cases = {}
    for name in ("sparse h", "dense h"):
        n_input, n_latents, batch = integer(g, 3, 5), integer(g, 6, 10), integer(g, 11, 16)  # n_latents > n_input, batch > n_latents
        h = _sparse_h(g, batch, n_input) if name == "sparse h" else torch.randn(batch, n_input, generator=g)
        cases[name] = {"args": [h, torch.randn(n_input, n_latents, generator=g),
                                -0.3 * (0.1 + torch.rand(n_latents, generator=g)),
                                0.5 * torch.randn(n_input, generator=g)]}
    return cases


SAE_ENCODE = Exercise(
    name="sae_encode", points=1, inputs=encode_inputs, reference=reference_sae_encode, answers=(SAE_CLASS,),
    atol=1e-5,
    wrong=(
        Wrong("weights_transposed", "sae_encode raised an error: h is (batch, n_input) and W_enc is (n_input, "
              "n_latents), so (h - b_dec) @ W_enc already has shape (batch, n_latents); W_enc needs no transpose.",
              lambda h, W, b, bd: torch.relu(h @ W.T + b)),
        Wrong("z_transposed", "z is transposed: return (batch, n_latents), one row per input, as (h - b_dec) @ W_enc "
              "gives it.", lambda h, W, b, bd: torch.relu(W.T @ (h - bd).T + b[:, None])),
        Wrong("no_relu", "some latent activations are negative: the encoder ends in a ReLU, so z >= 0 (a latent "
              "either fires, with some strength, or does not).", lambda h, W, b, bd: (h - bd) @ W + b),
        Wrong("no_b_dec", "you forgot to subtract b_dec before encoding. The decoder bias is the SAE's estimate of "
              "the mean activation; the encoder works on what is left over, so the two stay consistent.",
              lambda h, W, b, bd: torch.relu(h @ W + b)),
        Wrong("added_b_dec", "b_dec is subtracted, not added, before encoding: the encoder sees h minus the SAE's "
              "estimate of the mean activation.", lambda h, W, b, bd: torch.relu((h + bd) @ W + b)),
        Wrong("no_b_enc", "you forgot the encoder bias b_enc (a negative b_enc is what lets latents stay silent on "
              "small inputs).", lambda h, W, b, bd: torch.relu((h - bd) @ W)),
    ),
    spec="z = ReLU((h - b_dec) @ W_enc + b_enc), shape (batch, n_latents).",
    passed="sae_encode: ReLU((h - b_dec) @ W_enc + b_enc), (batch, n_latents)",
)


# --- sae_loss ------------------------------------------------------------------------------------

def reference_sae_loss(h: torch.Tensor, z: torch.Tensor, h_hat: torch.Tensor, l1_coeff: float) -> torch.Tensor:
    return ((h - h_hat) ** 2).sum(dim=1).mean() + l1_coeff * z.abs().sum(dim=1).mean()


def loss_inputs(g: torch.Generator) -> dict:
    """Two l1_coeff values, both away from 1 (where leaving l1_coeff out would not show)."""
    cases = {}
    for name, (low, high) in (("small l1_coeff", (0.05, 0.4)), ("large l1_coeff", (1.5, 3.0))):
        n_input, n_latents, batch = integer(g, 3, 5), integer(g, 6, 10), integer(g, 6, 16)
        h, z = _sparse_h(g, batch, n_input), _z(g, batch, n_latents)
        h_hat = z @ _decoder(g, n_latents, n_input) + 0.5 * torch.randn(n_input, generator=g)
        cases[name] = {"args": [h, z, h_hat, round(uniform(g, low, high), 4)]}
    return cases


def _recon(h, h_hat):
    return ((h - h_hat) ** 2).sum(1).mean()


SAE_LOSS = Exercise(
    name="sae_loss", points=2, inputs=loss_inputs, reference=reference_sae_loss,
    answers=(SAE_CLASS, "utils.sae.sae_gradients"), atol=1e-4,
    wrong=(
        Wrong("not_one_number", "sae_loss should return one number (a scalar tensor), one value for the whole batch: "
              "average the per-input losses over the batch.",
              lambda h, z, hh, l1: ((h - hh) ** 2).sum(1) + l1 * z.abs().sum(1)),
        Wrong("mean_over_dimensions", "the reconstruction error is ||h - h_hat||^2 per input, summed over the input "
              "dimensions, then averaged over the batch; you averaged over the dimensions too (torch.mean of the "
              "square).", lambda h, z, hh, l1: ((h - hh) ** 2).mean() + l1 * z.abs().sum(1).mean()),
        Wrong("l1_mean_over_latents", "the L1 penalty is summed over the latents of each input, then averaged over "
              "the batch; you averaged over the latents too.",
              lambda h, z, hh, l1: _recon(h, hh) + l1 * z.abs().mean()),
        Wrong("l2_penalty", "the sparsity penalty is the L1 norm, sum |z|, not the squared L2 norm: L1 is what drives "
              "activations exactly to zero.", lambda h, z, hh, l1: _recon(h, hh) + l1 * (z ** 2).sum(1).mean()),
        Wrong("penalty_on_h_hat", "the penalty is on the latent activations z, not on the reconstruction h_hat.",
              lambda h, z, hh, l1: _recon(h, hh) + l1 * hh.abs().sum(1).mean()),
        Wrong("no_l1_coeff", "you left out l1_coeff: the penalty is l1_coeff * ||z||_1.",
              lambda h, z, hh, l1: _recon(h, hh) + z.abs().sum(1).mean()),
        Wrong("summed_over_batch", "average over the batch rather than summing, so the loss does not grow with the "
              "batch size.", lambda h, z, hh, l1: ((h - hh) ** 2).sum() + l1 * z.abs().sum()),
    ),
    spec="Return one number: the mean over the batch of ||h - h_hat||^2 (summed over the input dimensions) plus "
         "l1_coeff times the mean over the batch of ||z||_1 (summed over latents).",
    passed="sae_loss: batch mean of squared reconstruction error plus l1_coeff times the L1 norm of z",
)


# --- normalize_decoder ---------------------------------------------------------------------------

def reference_normalize_decoder(W_dec: torch.Tensor) -> torch.Tensor:
    return W_dec / W_dec.norm(dim=1, keepdim=True)


def normalize_inputs(g: torch.Generator) -> dict:
    cases = {}
    for name in ("decoder", "another size"):
        W_dec = _decoder(g, integer(g, 6, 10), integer(g, 3, 5))
        W_dec[0] *= 2.5  # one long row: norms from 0.5 to about 3
        cases[name] = {"args": [W_dec]}
    return cases


NORMALIZE_DECODER = Exercise(
    name="normalize_decoder", points=1, inputs=normalize_inputs, reference=reference_normalize_decoder,
    answers=(SAE_CLASS,), atol=1e-5,
    wrong=(
        Wrong("normalised_columns", "you normalised the columns; each ROW of W_dec is one latent's direction "
              "(n_latents rows), so every row is divided by its own norm.",
              lambda W: W / W.norm(dim=0, keepdim=True)),
        Wrong("whole_matrix_norm", "you divided by the norm of the whole matrix; every row (latent direction) gets "
              "its own norm.", lambda W: W / W.norm()),
        Wrong("squared_norm", "divide by the norm, not the squared norm: each row should end with length 1.",
              lambda W: W / (W ** 2).sum(1, keepdim=True)),
    ),
    spec="Return W_dec with every row divided by its own norm (same shape), so each latent direction has length 1.",
    passed="normalize_decoder: every latent direction (row) at unit norm",
)


# --- match_features ------------------------------------------------------------------------------

def reference_match_features(W_dec: torch.Tensor, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    result = sae.feature_recovery(W_dec, W)
    return result["cosine"], result["latent"]


def _cosines(W_dec: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """(n_latents, n_features) signed cosines between latent directions (rows) and features (columns)."""
    return (W_dec / W_dec.norm(dim=1, keepdim=True)) @ (W / W.norm(dim=0, keepdim=True))


def _greedy_picks(values: torch.Tensor) -> list[tuple[int, int, float]]:
    """The greedy matching's picks in the order it makes them: (latent, feature, gap to the runner-up)."""
    remaining, picks = values.clone(), []
    for _ in range(values.shape[1]):
        top = remaining.flatten().topk(2).values
        j, f = divmod(int(remaining.argmax()), values.shape[1])
        picks.append((j, f, float(top[0] - top[1])))
        remaining[j, :], remaining[:, f] = float("-inf"), float("-inf")
    return picks


def _well_separated(W_dec: torch.Tensor, W: torch.Tensor, gap: float = 1e-3) -> bool:
    """No near-ties, for the signed or |cos| matching nor for each feature's best latent; no perfect match for
    feature 0 (so the antipodal latent's |cos| = 1 stands out)."""
    cos = _cosines(W_dec, W)
    for values in (cos, cos.abs()):
        top = values.topk(2, dim=0).values
        if (top[0] - top[1] < gap).any() or min(g for _, _, g in _greedy_picks(values)[:-1]) < gap:
            return False
    return bool(cos[:, 0].max() < 0.99)


def _shares_a_best_latent(values: torch.Tensor) -> bool:
    """values (n_latents, n_features): features 0 and 1 have the same best latent, which scores higher with feature 1."""
    best = values.argmax(dim=0)
    return bool(best[0] == best[1] and values[best[1], 1] > values[best[0], 0])


def match_inputs(g: torch.Generator) -> dict:
    cases = {}
    for name in ("antipodal latent", "shared latent"):
        while True:
            n_hidden, n_features, n_latents = integer(g, 3, 4), integer(g, 4, 6), integer(g, 7, 10)  # n_latents > n_features
            W = torch.randn(n_hidden, n_features, generator=g) * (0.3 + 2 * torch.rand(n_features, generator=g))
            W_dec = _decoder(g, n_latents, n_hidden)
            if name == "antipodal latent":
                W_dec[2] = -uniform(g, 1.5, 3.0) * W[:, 0]  # |cos| would call it a perfect match for feature 0
                W_dec[4] = 0.4 * W[:, 0] + 0.2 * W[:, 1]  # short but well aligned: raw dot products overlook it
                ok = True
            else:  # latent 3 lies between features 0 and 1, nearer 1: the best latent of both
                u = W / W.norm(dim=0, keepdim=True)
                W_dec[3] = uniform(g, 0.5, 2.0) * (0.9 * u[:, 0] + u[:, 1])
                W_dec[5] = -uniform(g, 1.5, 3.0) * W[:, 2]  # and |cos| answers differ from signed ones here too
                ok = all(_shares_a_best_latent(v) for v in (_cosines(W_dec, W), _cosines(W_dec, W).abs()))
            if ok and _well_separated(W_dec, W):
                break
        cases[name] = {"args": [W_dec, W]}
    return cases


def _best(cos: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    best = cos.max(dim=dim)
    return best.values, best.indices


def _greedy(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return sae.match_one_to_one(values)


def _in_feature_order(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature 0 takes its best latent, then feature 1 the best of those left, and so on."""
    remaining, cosine, latent = values.clone(), torch.empty(values.shape[1]), torch.empty(values.shape[1], dtype=torch.long)
    for f in range(values.shape[1]):
        j = int(remaining[:, f].argmax())
        cosine[f], latent[f] = values[j, f], j
        remaining[j, :] = float("-inf")
    return cosine, latent


def _in_match_order(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The greedy matching's cosines and latents listed in the order it found them, not by feature."""
    picks = _greedy_picks(values)
    return (torch.tensor([float(values[j, f]) for j, f, _ in picks]), torch.tensor([j for j, _, _ in picks]))


def _unit_rows(W_dec: torch.Tensor) -> torch.Tensor:
    return W_dec / W_dec.norm(dim=1, keepdim=True)


def _unit_columns(W: torch.Tensor) -> torch.Tensor:
    return W / W.norm(dim=0, keepdim=True)


NORMALISE_BOTH = ("a cosine is between -1 and 1 and does not depend on lengths: normalise both the latent directions "
                  "(rows of W_dec) and the features (columns of W) before the dot product")
ONE_TO_ONE = ("each latent may be matched to at most one feature: take the largest cosine left, match that latent "
              "and that feature, remove both, and repeat")

MATCH_FEATURES = Exercise(
    name="match_features", points=2, inputs=match_inputs, reference=reference_match_features,
    answers=("utils.sae.feature_recovery", "utils.sae.match_one_to_one"), atol=1e-4,
    wrong=(
        Wrong("returned_dict", "match_features should return a tuple (cosine, latent) of two tensors, not a dict.",
              lambda D, W: sae.feature_recovery(D, W)),
        Wrong("per_latent", "you returned one value per latent; the question is, for each true FEATURE, which latent "
              "is matched to it: the result has one entry per column of W.",
              lambda D, W: _best(_cosines(D, W), dim=1)),
        Wrong("not_one_to_one", f"two features were given the same latent (each feature took its own best latent): "
              f"{ONE_TO_ONE}. One latent cannot stand for two features.", lambda D, W: _best(_cosines(D, W))),
        Wrong("abs_cos", "you used |cos|: a latent only fires positively (ReLU), so a latent pointing OPPOSITE to a "
              "feature reconstructs minus that feature; it is not a match. Use the signed cosine.",
              lambda D, W: _greedy(_cosines(D, W).abs())),
        Wrong("abs_cos_many_to_one", f"you used |cos|: a latent only fires positively (ReLU), so a latent pointing "
              f"OPPOSITE to a feature is not a match; use the signed cosine. And {ONE_TO_ONE}.",
              lambda D, W: _best(_cosines(D, W).abs())),
        Wrong("in_feature_order", "you matched the features in their order (feature 0 first, then feature 1 with what "
              "was left, ...); the matching takes the largest cosine left among ALL unmatched features and latents "
              "at every step, whichever feature it belongs to.", lambda D, W: _in_feature_order(_cosines(D, W))),
        Wrong("in_match_order", "the cosines and latents are listed in the order you matched them; return them by "
              "feature: entry f is feature f's cosine and latent.", lambda D, W: _in_match_order(_cosines(D, W))),
        Wrong("not_normalised", f"you used raw dot products: {NORMALISE_BOTH}.", lambda D, W: _greedy(D @ W)),
        Wrong("latents_not_normalised", f"you normalised the features but not the latent directions: {NORMALISE_BOTH} "
              "(rows of W_dec need not be unit length).", lambda D, W: _greedy(D @ _unit_columns(W))),
        Wrong("features_not_normalised", f"you normalised the latent directions but not the features: "
              f"{NORMALISE_BOTH}.", lambda D, W: _greedy(_unit_rows(D) @ W)),
        Wrong("one_based_indices", "the cosines are right but the latent indices are off by one: latents are "
              "numbered from 0, as argmax gives them.",
              lambda D, W: (_greedy(_cosines(D, W))[0], _greedy(_cosines(D, W))[1] + 1)),
    ),
    hints={"antipodal latent": "One latent points exactly opposite to feature 0, and another is short but well "
                               "aligned with it: use the signed cosine, with both sides normalised.",
           "shared latent": "One latent is the best match of two features: it goes to the feature it matches "
                            "better, and the other feature takes the best latent still free."},
    spec="Return a tuple (cosine, latent) of two (n_features,) tensors from a one-to-one matching: repeatedly take "
         "the largest signed cosine between an unmatched latent (row of W_dec) and an unmatched feature (column "
         "of W), match them; entry f is feature f's cosine and latent.",
    passed="match_features: one-to-one greedy matching on signed cosines, listed by feature",
)


# --- ablate_latents ------------------------------------------------------------------------------

def ablation_inputs(g: torch.Generator) -> dict:
    cases = {}
    for name, k in (("one latent", 1), ("several latents", integer(g, 2, 3))):
        n_hidden, n_latents, batch = integer(g, 3, 5), integer(g, 6, 10), integer(g, 8, 16)
        h, z = torch.randn(batch, n_hidden, generator=g), _z(g, batch, n_latents)
        latents = sorted(torch.randperm(n_latents, generator=g)[:k].tolist())
        for j in latents:  # every chosen latent fires on input 0 and is silent on input 1
            z[0, j], z[1, j] = uniform(g, 0.3, 1.5), 0.0
        z[0, [j for j in range(n_latents) if j not in latents][0]] = uniform(g, 0.3, 1.5)  # and so does another one
        cases[name] = {"args": [h, z, _decoder(g, n_latents, n_hidden), latents]}
    return cases


def _ablate_projection(h, z, W_dec, latents):
    for j in latents:
        d = W_dec[j] / W_dec[j].norm()
        h = h - (h @ d)[:, None] * d
    return h


def _ablate_in_place(h, z, W_dec, latents):
    h -= z[:, latents] @ W_dec[latents]
    return h


ABLATE_LATENTS = Exercise(
    name="ablate_latents", points=2, inputs=ablation_inputs, reference=sae.ablate_latents,
    answers=("utils.sae.ablate_latents",), atol=1e-4,
    wrong=(
        Wrong("modified_h_in_place", "the result is right, but ablate_latents changed the caller's h in place (h -= "
              "... or an indexed assignment): the caller still needs the original activations. Compute the edited h "
              "as a new tensor and leave the input as it was.", _ablate_in_place),
        Wrong("unchanged", "h came back unchanged: subtract each chosen latent's contribution, its activation times "
              "its decoder direction.", lambda h, z, D, ls: h),
        Wrong("projected_direction", "you projected the latent's direction out of h, which is the raw-direction "
              "ablation of lesson 05: it changes every input. Ablating a latent subtracts only what the latent "
              "contributed, z[:, j] * W_dec[j], so inputs on which it did not fire are left alone.",
              _ablate_projection),
        Wrong("fired_mask", "weight each direction by the latent's activation z[:, j], not by whether it fired.",
              lambda h, z, D, ls: h - (z[:, ls] > 0).float() @ D[ls]),
        Wrong("all_latents", "you removed every latent's contribution; only the ones listed in `latents`.",
              lambda h, z, D, ls: h - z @ D),
    ),
    hints={"one latent": "Subtract z[:, j] * W_dec[j] for the chosen latent j only; inputs where it is silent stay.",
           "several latents": "Subtract z[:, j] * W_dec[j] for every j in `latents`, and nothing else."},
    spec="Return a new (batch, n_hidden) tensor h - sum over j in latents of z[:, j] * W_dec[j], leaving the input h "
         "as it was.",
    passed="ablate_latents: subtracts z[:, j] * W_dec[j] for the chosen latents only, and leaves h alone",
)

EXERCISES = [SAE_ENCODE, SAE_LOSS, NORMALIZE_DECODER, MATCH_FEATURES, ABLATE_LATENTS]
