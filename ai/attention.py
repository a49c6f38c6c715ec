"""Attention U-Net gate coefficients: forward hooks on MONAI's attention gates capture what they weigh skips by.

MONAI's ``AttentionUnet`` returns only its logits. Each of its ``AttentionBlock`` gates computes coefficients
in 0..1 (the sigmoid output of its ``psi`` branch) and multiplies the skip connection's features by them; the
hooks here keep those coefficients from the ordinary forward pass, so showing them costs no extra pass.
"""

from __future__ import annotations

from contextlib import contextmanager

from viewer.core.errors import ModelError


def attention_gates(network) -> list[str]:
    """Names of ``network``'s attention gates (MONAI AttentionBlock modules), finest first: the outermost
    gate weighs the full-resolution skip connection, each nested one a coarser level."""
    from monai.networks.nets.attentionunet import AttentionBlock

    names = [n for n, m in network.named_modules() if isinstance(m, AttentionBlock)]
    return sorted(names, key=lambda n: n.count("."))


def resolve_gate(network, name: str | None, model_id: str = "model") -> str:
    """The gate ``name`` names (a gate or its ``.psi`` branch; None = the finest gate); ModelError when the
    network has no attention gates or no gate of that name (listing the gates)."""
    gates = attention_gates(network)
    if not gates:
        raise ModelError(f"{model_id} has no attention gates ({type(network).__name__}): the attention method "
                         "needs an Attention U-Net")
    if name is None:
        return gates[0]
    gate = name.removesuffix(".psi")
    if gate not in gates:
        raise ModelError(f"{model_id} has no attention gate {name!r}; its gates (finest first): {', '.join(gates)}")
    return gate


@contextmanager
def captured_gates(network, names: list[str]):
    """Within the block, every forward pass of ``network`` stores each named gate's coefficients
    (B, 1, *its level's size) in the yielded dict under the gate's name (the last pass's values)."""
    modules = dict(network.named_modules())
    captured: dict = {}
    hooks = [modules[n].psi.register_forward_hook(lambda _m, _i, out, n=n: captured.__setitem__(n, out))
             for n in names]
    try:
        yield captured
    finally:
        for h in hooks:
            h.remove()


def gate_maps(network, x, names: list[str] | None = None):
    """(logits, {gate name: coefficients upsampled (trilinear) to ``x``'s spatial size, (B, 1, ...)}) of one
    forward pass of ``network`` on ``x`` (B, C, ...); ``names`` default to every gate (attention_gates)."""
    import torch

    names = attention_gates(network) if names is None else names
    with captured_gates(network, names) as captured:
        logits = network(x)
    mode = "trilinear" if x.ndim == 5 else "bilinear"
    return logits, {n: torch.nn.functional.interpolate(captured[n].float(), size=x.shape[2:], mode=mode,
                                                       align_corners=False) for n in names}
