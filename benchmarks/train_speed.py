"""How fast utils.train trains toy models, against the obvious training loop, side by side in one run.

    python benchmarks/train_speed.py [--steps-scale 1.0] [--rounds 10] [--device cuda]

For each of the course's standard configurations, both trainers start from the same weights and
train for the same number of steps with the same hyperparameters:
  utils.train: fused Adam, closed-form gradients, one uniform draw per feature (utils.ToyModel);
  reference:   per step, draw values and a mask, forward with einsum, the loss, autograd backward,
               torch.optim.Adam, i.e. the loop one writes first.
Speed: the two trainers take turns, --rounds times, each training a copy of the start for a fifth of the
configuration's steps, and each keeps its fastest turn: this machine's speed drifts by tens of percent
within seconds, and short alternated turns expose both to the same drift. Then each trains once for all
the steps, for the final losses. It prints steps per second for both and their ratio, the FLOP rate
training reaches as a fraction of this machine's measured matmul throughput, the traffic model's fraction
of the measured memory bandwidth, the rate the random draw alone allows (torch's CPU generator is serial:
a step cannot be faster than drawing its bits), and both final losses on one large fixed batch (they must
agree within 5% relative or 1e-3 absolute: different random batches, same optimum).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

import utils
from utils.device import default_device

LOSS_TOLERANCE = (0.05, 1e-3)  # relative, absolute


def reference_train(W: torch.Tensor, b: torch.Tensor, sparsity: torch.Tensor, importance: torch.Tensor,
                    steps: int, batch_size: int, lr: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The straightforward loop. W: (i, h, f), b, sparsity, importance: (i, f). Returns trained (W, b)."""
    W, b = W.clone().requires_grad_(), b.clone().requires_grad_()
    optimizer = torch.optim.Adam([W, b], lr=lr)
    generator = torch.Generator(device=W.device).manual_seed(seed)
    shape = (batch_size, *sparsity.shape)
    for _ in range(steps):
        values = torch.rand(shape, generator=generator, device=W.device)
        active = torch.rand(shape, generator=generator, device=W.device) >= sparsity
        x = values * active
        h = torch.einsum("ihf,bif->bih", W, x)
        x_hat = torch.relu(torch.einsum("ihf,bih->bif", W, h) + b)
        loss = (importance * (x - x_hat) ** 2).mean(dim=(0, 2))
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
    return W.detach(), b.detach()


def matmul_flops_per_second(device: torch.device, size: int = 1024, repeats: int = 20) -> float:
    """This machine's float32 matmul throughput, the yardstick for how well training uses it."""
    a = torch.randn(size, size, device=device)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def bandwidth_bytes_per_second(device: torch.device, mib: int = 256, repeats: int = 5) -> float:
    """This machine's memory bandwidth: bytes read and written per second by a large copy (past any cache)."""
    a = torch.ones(mib * 2**18, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        b.copy_(a)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * a.numel() * 4 * repeats / (time.perf_counter() - start)


def batch_bytes_per_step(model: utils.ToyModel, batch_size: int) -> float:
    """The issue's traffic model of an unfused step: about ten batch-sized float32 tensors (the draw, x, the
    pre-activation, the error, its gradient) written or read. The limit it gives is the step rate of such a
    step at the measured bandwidth; a chunked step keeps most of that traffic in cache."""
    return 10 * 4 * batch_size * model.n_instances * model.n_features


def flops_per_step(model: utils.ToyModel, batch_size: int) -> float:
    """Forward (encode + decode) is 4*B*I*H*F multiply-adds counted as FLOPs; backward about twice that."""
    return 3 * 4 * batch_size * model.n_instances * model.n_hidden * model.n_features


def timed(fn) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn()
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def best_alternated(fns: list, rounds: int) -> list[float]:
    """Run fns in turn, `rounds` times; each one's fastest time in seconds."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            best[k] = min(best[k], timed(fn)[1])
    return best


def draw_seconds_per_step(model: utils.ToyModel, batch_size: int, repeats: int = 20) -> float:
    """The time one step's random bits take to draw (24 of every 32 bits used, as sparse_features draws them)."""
    generator = torch.Generator(device=model.W.device).manual_seed(0)
    bits = torch.empty((batch_size * model.n_instances * model.n_features + 1) // 2, dtype=torch.int64,
                       device=model.W.device)
    return min(timed(lambda: bits.random_(generator=generator))[1] for _ in range(repeats))


def configurations() -> list[tuple[str, dict, int]]:
    """(label, ToyModel arguments, steps): the configurations the lessons and the paper tests train."""
    sweep = torch.tensor([1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001])
    return [
        ("5->2, 10 instances", dict(n_features=5, n_hidden=2, n_instances=10, sparsity=0.95), 3000),
        ("20->5, 7 sparsities", dict(n_features=20, n_hidden=5, n_instances=7, sparsity=1 - sweep,
                                     importance=0.7 ** torch.arange(20.0)), 3000),
        ("100->20, 20 instances", dict(n_features=100, n_hidden=20, n_instances=20, sparsity=0.9,
                                       importance=0.9 ** torch.arange(100.0)), 600),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every step count (e.g. 0.2 for a quick look)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rounds", type=int, default=10, help="alternated timed turns of each trainer; the fastest counts")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when torch sees a GPU)")
    args = parser.parse_args()
    device = default_device(args.device)
    peak = matmul_flops_per_second(device)
    bandwidth = bandwidth_bytes_per_second(device)
    print(f"device {device}, {torch.get_num_threads()} threads, matmul {peak / 1e9:.1f} GFLOP/s, "
          f"copy bandwidth {bandwidth / 1e9:.1f} GB/s\n")
    header = (f"{'configuration':24} {'utils':>10} {'reference':>10} {'ratio':>6} {'of matmul':>9} {'of memory':>9}"
              f" {'draw limit':>10}  final loss utils / reference")
    print(header)
    print("-" * len(header))
    for label, kwargs, steps in configurations():
        steps = max(10, int(steps * args.steps_scale))
        model = utils.ToyModel(**kwargs, device=device, seed=0)
        W0, b0 = model.W.detach().clone(), model.b_final.detach().clone()
        # Warm up both (kernel selection, allocator, lazy imports) on a throwaway copy before timing.
        utils.train(copy.deepcopy(model), 20, args.batch_size, args.lr, progress=False)
        reference_train(W0, b0, model.sparsity, model.importance, 20, args.batch_size, args.lr, seed=1)
        turn = max(10, steps // 5)
        fast_seconds, slow_seconds = (seconds / turn for seconds in best_alternated([
            lambda: utils.train(copy.deepcopy(model), turn, args.batch_size, args.lr, seed=1, progress=False),
            lambda: reference_train(W0, b0, model.sparsity, model.importance, turn, args.batch_size, args.lr, seed=1),
        ], args.rounds))
        draw_limit = 1 / draw_seconds_per_step(model, args.batch_size)
        utils.train(model, steps, args.batch_size, args.lr, seed=1, progress=False)
        W, b = reference_train(W0, b0, model.sparsity, model.importance, steps, args.batch_size, args.lr, seed=1)
        reference = utils.ToyModel(**kwargs, device=device, seed=0)
        with torch.no_grad():
            reference.W.copy_(W)
            reference.b_final.copy_(b)
        fast_loss, slow_loss = utils.evaluate_loss(model).mean().item(), utils.evaluate_loss(reference).mean().item()
        same = abs(fast_loss - slow_loss) <= max(LOSS_TOLERANCE[0] * slow_loss, LOSS_TOLERANCE[1])
        fraction = flops_per_step(model, args.batch_size) / fast_seconds / peak
        memory = batch_bytes_per_step(model, args.batch_size) / fast_seconds / bandwidth
        print(f"{label:24} {1 / fast_seconds:7.0f}/s {1 / slow_seconds:7.0f}/s {slow_seconds / fast_seconds:5.2f}x "
              f"{100 * fraction:8.1f}% {100 * memory:8.1f}% {draw_limit:8.0f}/s  {fast_loss:.5f} / {slow_loss:.5f} "
              f"{'(agree)' if same else '(DIFFER)'}")


if __name__ == "__main__":
    main()
