"""Visible checks of lesson 06 (sparse autoencoders).

sae_encode, normalize_decoder and match_features use the default probe, `calls`. Two exercises need more:
  - sae_loss: "one number" may be a scalar tensor, a one-element tensor or a float; the feature turns any
    of these into a 0-d tensor (anything else, e.g. one loss per input, is judged as it is);
  - ablate_latents: the probe also returns the h it passed in, as it is after the call, and the feature
    says whether it still equals the input (an ablation that edits the caller's h in place is a mistake
    even when the value it returns is right).
"""

from __future__ import annotations

from typing import Any

import torch

from utils.checks import LessonChecks, Plain, fresh, raised, to_plain


def _one_number(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        return value.reshape(()).double()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    return value


def loss_features(raw: Plain, inputs: Plain) -> Plain:
    """{case: the loss as a 0-d tensor} when it is one number, in whatever form; anything else unchanged."""
    return {case: _one_number(value) for case, value in raw.items()}


def probe_ablate_latents(ablate_latents: Any, inputs: Plain) -> Plain:
    """{case: {"h": what it returned, "h after the call": the h it was given, as the call left it}}."""
    out = {}
    for case, spec in inputs.items():
        args, kwargs = fresh(spec.get("args", [])), fresh(spec.get("kwargs", {}))
        try:
            result = to_plain(ablate_latents(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - which error the learner raised is part of what is judged
            result = raised(error)
        out[case] = {"h": result, "h after the call": to_plain(args[0]) if args else None}
    return out


def ablation_features(raw: Plain, inputs: Plain) -> Plain:
    """{case: {"ablated h": the result, "input h left unchanged": bool}}; the comparison uses the inputs given."""
    judged = {}
    for case, spec in inputs.items():
        data = raw.get(case)
        if not isinstance(data, dict) or "h" not in data:
            judged[case] = data
            continue
        given, after = spec["args"][0], data.get("h after the call")
        unchanged = (isinstance(after, torch.Tensor) and after.shape == given.shape and after.dtype == given.dtype
                     and torch.equal(after, given))
        judged[case] = {"ablated h": data["h"], "input h left unchanged": bool(unchanged)}
    return judged


checks = LessonChecks("06_sparse_autoencoders", probes={"ablate_latents": probe_ablate_latents},
                      features={"sae_loss": loss_features, "ablate_latents": ablation_features})
check = checks.check
