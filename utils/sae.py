"""Sparse autoencoders that take features back out of superposition (lesson 06).

A sparse autoencoder (SAE) reads a model's hidden activations h (n_input numbers) and rewrites each one
as a sparse, non-negative combination of many more learned directions (n_latents > n_input):

    z = ReLU((h - b_dec) @ W_enc + b_enc)         (n_latents,)   which latents fire, and how much
    h_hat = z @ W_dec + b_dec                      (n_input,)     each row of W_dec is one latent's direction

trained to reconstruct h while keeping z sparse: loss = ||h - h_hat||^2 + l1_coeff * ||z||_1. The
standard recipe (Bricken et al., 2023, "Towards Monosemanticity") adds two things: decoder rows are kept
at unit norm (lesson 06 asks why), and latents that stop firing are resampled towards inputs the SAE
reconstructs badly. Many SAEs train at once, one per instance, exactly like utils.ToyModel.

How good an SAE is, in the measures SAE papers report (Bricken et al., 2023; Gao et al., 2024; Rajamanoharan
et al., 2024): `l0` (active latents per input), `fraction_of_variance_unexplained`, `dead_fraction`,
`shrinkage` and `downstream_loss` (the model's loss with the SAE's reconstruction spliced in); and, since a
toy model's true features are known, `feature_recovery` (a one-to-one matching of latents to features).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from utils.device import default_device, make_generator
from utils.model import _check_positive_int


class SparseAutoencoder(nn.Module):
    """n_instances independent sparse autoencoders, trained together.

    Attributes:
        W_enc: (n_instances, n_input, n_latents) encoder weights.
        b_enc: (n_instances, n_latents) encoder bias.
        W_dec: (n_instances, n_latents, n_input) decoder; row W_dec[i, j] is latent j's direction, unit norm.
        b_dec: (n_instances, n_input) decoder bias, also subtracted before encoding.
        l1_coeff: (n_instances,) buffer, the weight of the sparsity penalty.
    """

    def __init__(self, n_input: int, n_latents: int, n_instances: int = 1, *, l1_coeff: float | torch.Tensor = 0.1,
                 device: str | torch.device | None = None, seed: int = 0) -> None:
        super().__init__()
        for value, name in ((n_input, "n_input"), (n_latents, "n_latents"), (n_instances, "n_instances")):
            _check_positive_int(value, name, "e.g. SparseAutoencoder(n_input=2, n_latents=10).")
        l1 = torch.as_tensor(l1_coeff, dtype=torch.float32).flatten()
        if l1.numel() not in (1, n_instances) or not torch.isfinite(l1).all() or (l1 < 0).any():
            raise ValueError(f"l1_coeff must be a finite float >= 0 or one per instance ({n_instances},), "
                             f"got {l1_coeff!r}.")
        self.n_input, self.n_latents, self.n_instances = n_input, n_latents, n_instances
        device = default_device(device)
        g = make_generator(seed, torch.device("cpu"))
        W_dec = torch.randn(n_instances, n_latents, n_input, generator=g)
        W_dec /= W_dec.norm(dim=-1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec.to(device))
        # tied at the start, free after; contiguous, as fused Adam needs of a parameter and the .grad set by hand
        self.W_enc = nn.Parameter(W_dec.transpose(1, 2).contiguous().to(device))
        self.b_enc = nn.Parameter(torch.zeros(n_instances, n_latents, device=device))
        self.b_dec = nn.Parameter(torch.zeros(n_instances, n_input, device=device))
        self.register_buffer("l1_coeff", l1.expand(n_instances).clone().to(device))

    def _check_input(self, h: torch.Tensor) -> None:
        if h.ndim != 3 or tuple(h.shape[1:]) != (self.n_instances, self.n_input):
            raise ValueError(f"h has shape {tuple(h.shape)}; expected (batch, n_instances, n_input) = "
                             f"(batch, {self.n_instances}, {self.n_input}). For one instance use h[:, None, :].")

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        """Latent activations z: (batch, n_instances, n_input) -> (batch, n_instances, n_latents), all >= 0."""
        self._check_input(h)
        return self.activation(torch.einsum("bid,idl->bil", h - self.b_dec, self.W_enc) + self.b_enc)

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """z from the pre-activations, any shape (..., n_latents): ReLU here; a variant (e.g. top-k) overrides it.

        Training differentiates it as "the gradient passes where z > 0", true of ReLU and of top-k alike.
        """
        return torch.relu(pre)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction h_hat: (batch, n_instances, n_latents) -> (batch, n_instances, n_input)."""
        return torch.einsum("bil,ild->bid", z, self.W_dec) + self.b_dec

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, h_hat) for h of shape (batch, n_instances, n_input)."""
        z = self.encode(h)
        return z, self.decode(z)

    def loss(self, h: torch.Tensor, z: torch.Tensor, h_hat: torch.Tensor) -> torch.Tensor:
        """Per instance (n_instances,): mean over the batch of ||h - h_hat||^2 + l1_coeff * ||z||_1."""
        return ((h - h_hat) ** 2).sum(-1).mean(0) + self.l1_coeff * z.abs().sum(-1).mean(0)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Put every decoder row back at unit norm (after every optimiser step)."""
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def resample(self, dead: torch.Tensor, h: torch.Tensor, optimizer: torch.optim.Optimizer,
                 generator: torch.Generator) -> None:
        """Give each dead latent the direction of an input the SAE reconstructs badly.

        dead: (n_instances, n_latents) bool; h: (batch, n_instances, n_input). Inputs are drawn with
        probability proportional to their squared reconstruction loss (Bricken et al., 2023); the latent's
        decoder row becomes the centred input's direction, its encoder column the same direction scaled
        to 0.2 times the mean encoder norm of the live latents, its bias 0, and its Adam state is cleared.
        """
        if not dead.any():
            return
        _, h_hat = self(h)
        weights = ((h - h_hat) ** 2).sum(-1).square().T + 1e-12                    # (n_instances, batch)
        rows = torch.multinomial(weights, self.n_latents, replacement=True, generator=generator)
        chosen = (h - self.b_dec).transpose(0, 1).gather(1, rows[..., None].expand(-1, -1, self.n_input))
        directions = chosen / chosen.norm(dim=-1, keepdim=True).clamp_min(1e-8)     # (n_instances, n_latents, n_input)
        enc_norms = self.W_enc.norm(dim=1)                                          # (n_instances, n_latents)
        alive = (~dead).float()
        scale = 0.2 * (enc_norms * alive).sum(1, keepdim=True) / alive.sum(1, keepdim=True).clamp_min(1)
        scale = torch.where(alive.sum(1, keepdim=True) > 0, scale, torch.ones_like(scale))
        self.W_dec.copy_(torch.where(dead[..., None], directions, self.W_dec))
        self.W_enc.copy_(torch.where(dead[:, None, :], (directions * scale[..., None]).transpose(1, 2), self.W_enc))
        self.b_enc.copy_(torch.where(dead, torch.zeros_like(self.b_enc), self.b_enc))
        masks = {self.W_dec: dead[..., None], self.W_enc: dead[:, None, :], self.b_enc: dead}
        for param, mask in masks.items():
            for key in ("exp_avg", "exp_avg_sq"):
                state = optimizer.state.get(param, {})
                if key in state:
                    state[key].masked_fill_(mask.expand_as(state[key]), 0.0)


class TopKSparseAutoencoder(SparseAutoencoder):
    """Top-k sparse autoencoders (Gao et al., 2024): z = ReLU of each input's k largest pre-activations, 0 elsewhere.

    The sparsity is set by k instead of an L1 penalty (l1_coeff is 0): at most k latents fire per input, and
    the activations that do fire are not shrunk towards zero. Same parameters, and same `train_sae`, as
    SparseAutoencoder; only `activation` differs.
    """

    def __init__(self, n_input: int, n_latents: int, n_instances: int = 1, *, k: int,
                 device: str | torch.device | None = None, seed: int = 0) -> None:
        _check_positive_int(k, "k", "the number of latents kept per input, e.g. TopKSparseAutoencoder(32, 64, k=4).")
        if k > n_latents:
            raise ValueError(f"k={k} is more than n_latents={n_latents}: an input cannot keep more latents than exist.")
        super().__init__(n_input, n_latents, n_instances, l1_coeff=0.0, device=device, seed=seed)
        self.k = k

    @staticmethod
    def top_k(pre: torch.Tensor, k: int) -> torch.Tensor:
        """ReLU of the k largest entries along the last axis, 0 elsewhere: pre (..., n_latents) -> the same shape."""
        top = pre.topk(k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        return self.top_k(pre, self.k)

    def extra_repr(self) -> str:
        return f"n_input={self.n_input}, n_latents={self.n_latents}, n_instances={self.n_instances}, k={self.k}"


def sae_gradients(sae: SparseAutoencoder, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Set every parameter's .grad to that of sae.loss(h, *sae(h)).sum(), written out by hand.

    h: (batch, n_instances, n_input). Autograd gives the same gradients (tests/test_sae.py checks it) but
    records and replays about twice as many small operations, which is most of the time for SAEs this size.
    With r = h_hat - h and B the batch size: dL/dh_hat = 2r/B, dL/dz = (2r/B) W_dec^T + l1/B (z >= 0, so
    |z| = z), and dL/dpre = dL/dz where z > 0. Works on instance-first (n_instances, batch, .) tensors so
    that every product is one batched matmul.

    Returns:
        (loss (n_instances,), fired (n_instances, n_latents): which latents were active on some input).
    """
    x = h.transpose(0, 1)                                                         # (i, b, d)
    batch = x.shape[1]
    centred = x - sae.b_dec[:, None, :]
    z = sae.activation(torch.baddbmm(sae.b_enc[:, None, :], centred, sae.W_enc))   # (i, b, l)
    error = torch.baddbmm(sae.b_dec[:, None, :], z, sae.W_dec).sub_(x)            # h_hat - h: (i, b, d)
    l1 = sae.l1_coeff[:, None]
    loss = error.square().sum(-1).mean(1) + sae.l1_coeff * z.sum(-1).mean(1)
    d_hat = error.mul_(2 / batch)                                                 # dL/dh_hat (reuses error)
    active = z > 0
    d_pre = torch.baddbmm((l1 / batch)[..., None], d_hat, sae.W_dec.transpose(1, 2)).mul_(active)  # (i, b, l)
    d_b_enc = d_pre.sum(1)
    sae.W_dec.grad = torch.bmm(z.transpose(1, 2), d_hat)
    sae.W_enc.grad = torch.bmm(centred.transpose(1, 2), d_pre)
    sae.b_enc.grad = d_b_enc
    sae.b_dec.grad = d_hat.sum(1) - torch.bmm(d_b_enc[:, None, :], sae.W_enc.transpose(1, 2))[:, 0]
    return loss, active.any(1)


def _hand_written_gradients_apply(sae: SparseAutoencoder) -> bool:
    """Whether sae_gradients' formulas are this SAE's: SparseAutoencoder's encode, decode and loss, with ReLU or
    TopKSparseAutoencoder's top-k as the activation (z >= 0, and the gradient passes exactly where z > 0)."""
    def same(name: str, base: type) -> bool:
        return getattr(type(sae), name, None) is getattr(base, name)

    activation = same("activation", SparseAutoencoder) or (same("activation", TopKSparseAutoencoder)
                                                          and same("top_k", TopKSparseAutoencoder))
    return activation and all(same(name, SparseAutoencoder) for name in ("encode", "decode", "forward", "loss"))


def _autograd_gradients(sae: SparseAutoencoder, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sae_gradients' results by autograd: for a subclass whose forward pass or loss the hand-written formulas do
    not know, so that it never trains on gradients of another loss."""
    with torch.enable_grad():
        z, h_hat = sae(h)
        loss = sae.loss(h, z, h_hat)
        sae.zero_grad(set_to_none=True)
        loss.sum().backward()
    return loss.detach(), (z.detach() > 0).any(0)


def _activation_sampler(source: nn.Module | torch.Tensor, sae: SparseAutoencoder,
                        device: torch.device) -> Callable[[int, torch.Generator], torch.Tensor]:
    """draw(batch_size, generator) -> (batch_size, 1 or sae.n_instances, n_input): fresh toy-model activations,
    or rows drawn with replacement from a fixed tensor of activations."""
    if isinstance(source, torch.Tensor):
        data = source[:, None, :] if source.ndim == 2 else source
        if data.ndim != 3 or data.shape[1] not in (1, sae.n_instances) or data.shape[2] != sae.n_input or not len(data):
            raise ValueError(f"the activations have shape {tuple(source.shape)}; expected (n, n_input) = (n, "
                             f"{sae.n_input}) or (n, n_instances, n_input) = (n, {sae.n_instances}, {sae.n_input}).")
        data = data.detach().to(device)
        return lambda n, g: data[torch.randint(len(data), (n,), generator=g, device=device)]
    if source.n_instances not in (1, sae.n_instances) or source.W.shape[1] != sae.n_input:
        raise ValueError(f"the toy model has {source.n_instances} instances and {source.W.shape[1]} hidden dimensions; "
                         f"the SAE reads n_input={sae.n_input} numbers and has {sae.n_instances} instances (the toy "
                         "model needs the same number of instances, or exactly one).")
    return lambda n, g: source.hidden(source.generate_batch(n, g)).to(device)


def train_sae(sae: SparseAutoencoder, model: nn.Module | torch.Tensor, steps: int = 5000, batch_size: int = 1024,
              lr: float = 1e-3, resample_every: int | None = 1000, seed: int = 0, progress: bool = True) -> dict:
    """Train `sae` on the hidden activations of a (frozen) toy model, or on a fixed set of activations, all instances at once.

    `model` is a utils.ToyModel (or SycophancyModel) with either sae.n_instances instances (SAE k reads
    toy model k) or one instance (every SAE reads the same model, e.g. a sweep over l1_coeff); or a tensor
    of activations recorded from any network, (n, n_input) or (n, sae.n_instances, n_input), from which each
    batch is drawn with replacement (lesson 08: a digit classifier's hidden layer). After each
    Adam step the decoder rows are put back at unit norm; every `resample_every` steps, latents that did
    not fire once since the last check are resampled (None: never).

    Returns:
        {"loss": (steps, n_instances) CPU tensor, "dead": (n_instances,) how many latents never fired in
        the last window of steps, "resampled": how many latents were resampled in all}.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got steps={steps}, batch_size={batch_size}.")
    device = sae.W_dec.device
    draw = _activation_sampler(model, sae, device)
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr, fused=True)
    generator = make_generator(seed, device)
    window = resample_every or steps
    fired = torch.zeros(sae.n_instances, sae.n_latents, dtype=torch.bool, device=device)
    history: list[torch.Tensor] = []
    resampled = 0
    gradients = sae_gradients if _hand_written_gradients_apply(sae) else _autograd_gradients
    bar = tqdm(range(1, steps + 1), disable=not progress, desc="training SAE", unit="step", mininterval=0.5)
    for step in bar:
        with torch.no_grad():
            h = draw(batch_size, generator).expand(-1, sae.n_instances, -1)
            loss, fired_now = gradients(sae, h)
        optimizer.step()
        sae.normalize_decoder()
        fired |= fired_now
        history.append(loss)
        if step % window == 0 and step < steps:
            if resample_every is not None:
                resampled += int((~fired).sum())
                sae.resample(~fired, h, optimizer, generator)
            fired = torch.zeros_like(fired)
        if progress and step % 500 == 0:
            bar.set_postfix(loss=f"{loss.mean().item():.3g}")
    return {"loss": torch.stack(history).cpu(), "dead": (~fired).sum(-1).cpu(), "resampled": resampled}


def match_one_to_one(cos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy one-to-one matching of latents to features: the answer to lesson 06's `match_features`.

    cos: (n_latents, n_features) signed cosines, -inf where a latent may not be used. Repeatedly takes the
    largest remaining entry, matches its latent and feature, and removes both, so no latent serves two
    features. Where every feature's best latent is a different one, this gives each feature its best latent,
    which is also what the optimal assignment (the Hungarian algorithm) gives; otherwise the two can differ.

    Returns:
        (cosine, latent), both (n_features,): the matched latent's cosine and index, or (nan, -1) for a
        feature left without a latent (fewer usable latents than features).
    """
    n_latents, n_features = cos.shape
    remaining = cos.detach().clone()
    cosine = torch.full((n_features,), float("nan"), dtype=cos.dtype)
    latent = torch.full((n_features,), -1, dtype=torch.long)
    for _ in range(min(n_latents, n_features)):
        flat = int(remaining.argmax())
        j, f = divmod(flat, n_features)
        if remaining[j, f] == float("-inf"):
            break
        cosine[f], latent[f] = cos[j, f], j
        remaining[j, :], remaining[:, f] = float("-inf"), float("-inf")
    return cosine, latent


def feature_recovery(W_dec: torch.Tensor, W: torch.Tensor, threshold: float = 0.99,
                     alive: torch.Tensor | None = None) -> dict:
    """How well one SAE's latents match the toy model's true feature directions, one latent per feature.

    W_dec: (n_latents, n_hidden), one latent direction per row; W: (n_hidden, n_features), one feature per
    column; alive: optional (n_latents,) bool, the latents that fire at all (a dead latent recovers nothing,
    whatever its direction). Cosines are SIGNED (latents only fire positively, so a latent pointing the
    opposite way is a different feature), and the matching is one-to-one (`match_one_to_one`).

    The threshold is strict on purpose: in 2 or 3 dimensions a handful of RANDOM directions already come
    within cos 0.9 of most features (lesson 06 measures it); compare any score with `random_dictionary_recovery`.

    Returns:
        {"cosine": (n_features,), "latent": (n_features,) int64 (-1: unmatched), "recovered": fraction of
        features matched with cosine > threshold}.
    """
    if W_dec.ndim != 2 or W.ndim != 2 or W_dec.shape[1] != W.shape[0]:
        raise ValueError(f"W_dec {tuple(W_dec.shape)} must be (n_latents, n_hidden) and W {tuple(W.shape)} "
                         "(n_hidden, n_features), with the same n_hidden.")
    cos = (W_dec / W_dec.norm(dim=1, keepdim=True)) @ (W / W.norm(dim=0, keepdim=True))   # (n_latents, n_features)
    if alive is not None:
        cos = cos.masked_fill(~alive.to(torch.bool)[:, None], float("-inf"))
    cosine, latent = match_one_to_one(cos)
    return {"cosine": cosine, "latent": latent, "recovered": float((cosine > threshold).float().mean())}


def random_dictionary_recovery(W: torch.Tensor, n_latents: int, n_draws: int = 200, threshold: float = 0.99,
                               seed: int = 0) -> torch.Tensor:
    """The chance baseline of `feature_recovery`: its score for untrained dictionaries of random directions.

    W: (n_hidden, n_features) the true features. Each draw is n_latents directions uniform on the sphere
    (Gaussian rows). Returns (n_draws,): the fraction of features each random dictionary "recovers".
    """
    g = torch.Generator().manual_seed(seed)
    W = W.detach().cpu()
    draws = torch.randn(n_draws, n_latents, W.shape[0], generator=g, dtype=W.dtype)
    return torch.tensor([feature_recovery(D, W, threshold)["recovered"] for D in draws])


# --- the measures SAE papers report --------------------------------------------------------------

def l0(z: torch.Tensor) -> torch.Tensor:
    """Mean number of active latents (z > 0) per input: z (batch, *instances, n_latents) -> (*instances)."""
    return (z > 0).float().sum(-1).mean(0)


def fraction_of_variance_unexplained(h: torch.Tensor, h_hat: torch.Tensor) -> torch.Tensor:
    """sum ||h - h_hat||^2 / sum ||h - mean(h)||^2 over the batch: h, h_hat (batch, *instances, n_input) -> (*instances).

    0 is a perfect reconstruction; 1 is no better than always answering the mean activation.
    """
    return ((h - h_hat) ** 2).sum((0, -1)) / ((h - h.mean(0)) ** 2).sum((0, -1)).clamp_min(1e-12)


def dead_fraction(z: torch.Tensor) -> torch.Tensor:
    """Fraction of latents that fire on no input of the batch: z (batch, *instances, n_latents) -> (*instances)."""
    return (~(z > 0).any(0)).float().mean(-1)


def shrinkage(h: torch.Tensor, h_hat: torch.Tensor) -> torch.Tensor:
    """Mean of ||h_hat|| / ||h|| over the inputs with h != 0: h, h_hat (batch, *instances, n_input) -> (*instances).

    Call it on inputs with exactly one active feature: there the ideal SAE gives a ratio of 1, and the L1
    penalty pulls it below 1 (the activations are shrunk towards zero).
    """
    norm = h.norm(dim=-1)
    nonzero = (norm > 0).float()
    ratio = h_hat.norm(dim=-1) / norm.clamp_min(1e-12)
    return (ratio * nonzero).sum(0) / nonzero.sum(0).clamp_min(1)


@torch.no_grad()
def downstream_loss(model: nn.Module, sae: SparseAutoencoder, x: torch.Tensor) -> dict:
    """The toy model's own loss when its hidden layer is replaced by the SAE's reconstruction.

    model: a utils.ToyModel with one instance or sae.n_instances; x: (batch, model.n_instances, n_features)
    its inputs. Every value is (sae.n_instances,): "clean" the model as it is, "spliced" with h replaced by
    h_hat, "zero" with h replaced by 0 (the model sees nothing), and "recovered" = (zero - spliced) /
    (zero - clean), the fraction of the loss the SAE's reconstruction recovers (1: as good as the model).
    """
    h = model.hidden(x).expand(-1, sae.n_instances, -1)
    _, h_hat = sae(h)
    W, b = model.W.expand(sae.n_instances, -1, -1), model.b_final.expand(sae.n_instances, -1)

    def loss_from(hidden: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("bih,ihf->bif", hidden, W) + b
        out = torch.relu(out) if model.activation == "relu" else out
        return model.loss(x.expand(-1, sae.n_instances, -1), out)

    clean, spliced, zero = loss_from(h), loss_from(h_hat), loss_from(torch.zeros_like(h))
    return {"clean": clean, "spliced": spliced, "zero": zero,
            "recovered": (zero - spliced) / (zero - clean).clamp_min(1e-12)}


def latents_for_feature(z: torch.Tensor, feature: torch.Tensor, min_correlation: float = 0.5) -> list[int]:
    """Latents whose activation goes with a known feature: Pearson correlation > min_correlation.

    z: (batch, n_latents) SAE activations, feature: (batch,) the true feature's values on the same inputs.
    A toy model lets us label inputs with the truth; with a real model one labels examples instead. An SAE
    may split one feature over several latents (here: agreement alone, agreement with a positive user).
    """
    zc, fc = z - z.mean(0), feature - feature.mean()
    correlation = (zc * fc[:, None]).sum(0) / (zc.norm(dim=0) * fc.norm()).clamp_min(1e-12)
    return (correlation > min_correlation).nonzero().flatten().tolist()


def ablate_latents(h: torch.Tensor, z: torch.Tensor, W_dec: torch.Tensor, latents: list[int]) -> torch.Tensor:
    """Remove some latents' contributions from h: h - sum_j z[:, j] W_dec[j] (the SAE's error term stays).

    h: (batch, n_hidden), z: (batch, n_latents) from the SAE, W_dec: (n_latents, n_hidden).
    Unlike ablating a direction, this only changes the inputs on which those latents fire.
    """
    return h - z[:, latents] @ W_dec[latents]
