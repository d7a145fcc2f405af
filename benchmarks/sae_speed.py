"""SAE training speed: utils.sae.train_sae against the obvious autograd loop, side by side in one run.

    python benchmarks/sae_speed.py [--steps 1000] [--repeats 3]

Both train the same SAEs from the same initial weights on the same batches (the toy model's hidden
activations, drawn with the same generator), with fused Adam, unit decoder rows after every step and no
resampling; only the gradients differ: train_sae writes them out by hand (utils.sae.sae_gradients), the loop
asks autograd. Prints steps per CPU second for each (one torch thread, so CPU time is the work done, whatever
else the machine runs), the ratio and both final losses (equal to float rounding).
The configurations are lesson 06's: the pentagon SAE (2 -> 10 latents, 4 instances) and the sycophancy SAEs
(3 -> 16 latents, 8 instances, one per seed of lesson 05's model).
"""

from __future__ import annotations

import argparse
import time

import torch

from utils import ToyModel
from utils import sycophancy as syc
from utils.sae import SparseAutoencoder, train_sae


def autograd_loop(sae: SparseAutoencoder, model, steps: int, batch_size: int, lr: float) -> torch.Tensor:
    """The obvious training loop; returns the last step's loss (n_instances,)."""
    optimizer, generator = torch.optim.Adam(sae.parameters(), lr=lr, fused=True), torch.Generator().manual_seed(0)
    for _ in range(steps):
        with torch.no_grad():
            h = model.hidden(model.generate_batch(batch_size, generator)).expand(-1, sae.n_instances, -1)
        z, h_hat = sae(h)
        loss = sae.loss(h, z, h_hat)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        sae.normalize_decoder()
    return loss.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in the lessons
    configs = {
        "pentagon: 2 -> 10 latents, 4 SAEs": (ToyModel(5, 2, sparsity=0.95, seed=0), 2, 10, 4, 0.3),
        "sycophancy: 3 -> 16 latents, 8 SAEs": (syc.SycophancyModel(3, n_instances=8, seed=0), 3, 16, 8, 0.1),
    }
    print(f"{args.steps} steps, batch 1024, 1 torch thread, steps per CPU second, best of {args.repeats}\n")
    print(f"{'configuration':38} {'train_sae':>12} {'autograd loop':>14} {'ratio':>6}  final loss, train_sae / loop")
    for label, (model, n_input, n_latents, n_instances, l1) in configs.items():
        best = {"train_sae": float("inf"), "loop": float("inf")}
        for _ in range(args.repeats):  # interleaved, best of each: the machine may be busy with other work
            fast, slow = (SparseAutoencoder(n_input, n_latents, n_instances, l1_coeff=l1, seed=0) for _ in range(2))
            start = time.process_time()
            run = train_sae(fast, model, steps=args.steps, batch_size=1024, lr=1e-2, resample_every=None,
                            progress=False)
            best["train_sae"] = min(best["train_sae"], time.process_time() - start)
            start = time.process_time()
            slow_loss = autograd_loop(slow, model, args.steps, 1024, 1e-2)
            best["loop"] = min(best["loop"], time.process_time() - start)
        fast_rate, slow_rate = args.steps / best["train_sae"], args.steps / best["loop"]
        print(f"{label:38} {fast_rate:8.0f} st/s {slow_rate:10.0f} st/s {fast_rate / slow_rate:5.2f}x  "
              f"{run['loss'][-1].mean():.5f} / {slow_loss.mean():.5f}")

if __name__ == "__main__":
    main()
