"""Training on a GPU reaches the CPU's final losses (skipped where torch sees no GPU)."""

import pytest
import torch

from utils import ToyModel, evaluate_loss, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("n_features, n_hidden", [(5, 2), (20, 5)])
def test_cuda_training_reaches_the_cpu_losses(n_features, n_hidden):
    """Different random streams per device, same optimum: within 5% relative or 1e-3 absolute (the benchmark's)."""
    losses = {}
    for device in ("cpu", "cuda"):
        model = ToyModel(n_features, n_hidden, n_instances=4, sparsity=0.9, importance=0.9 ** torch.arange(n_features),
                         device=device, seed=0)
        history = train(model, steps=1500, lr=1e-2, progress=False)
        assert history.device.type == "cpu" and torch.isfinite(history).all()
        losses[device] = evaluate_loss(model.to("cpu")).mean().item()
    assert abs(losses["cuda"] - losses["cpu"]) <= max(0.05 * losses["cpu"], 1e-3), losses


def test_cuda_closed_form_gradients_match_autograd():
    model = ToyModel(6, 3, n_instances=4, sparsity=0.8, device="cuda", seed=1)
    loss = model.sample_loss_and_grads(64, torch.Generator(device="cuda").manual_seed(2))
    grads = model.W.grad.clone(), model.b_final.grad.clone()
    x = model.generate_batch(64, torch.Generator(device="cuda").manual_seed(2))
    model.zero_grad()
    reference = model.loss(x, model(x))
    reference.sum().backward()
    torch.testing.assert_close(loss, reference.detach())
    torch.testing.assert_close(grads[0], model.W.grad, rtol=1e-4, atol=1e-6)
