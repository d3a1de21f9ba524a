"""Golden tensors for Pictor's ops, computed by PyTorch (Debian python3-torch 1.13, CPU, float64 then stored as F32).

For each case: the inputs, a fixed projection "proj", the output y = op(inputs) and the gradients of sum(y * w) with respect
to each differentiable input. Computed in float64 so the goldens carry no float32 rounding of their own.

    python3 tools/reference/make_op_goldens.py   # writes tests/fixtures/ops_golden.safetensors
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20261122)
out = {}


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def case(name, inputs, fn, ints=None):
    """inputs: dict name -> float32 array (differentiable); ints: dict name -> int64 array (not)."""
    ints = ints or {}
    ts = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in inputs.items()}
    its = {k: torch.tensor(v) for k, v in ints.items()}
    y = fn(**ts, **its)
    w = torch.tensor(randn(*y.shape).astype(np.float64))
    (y * w).sum().backward()
    for k, v in inputs.items():
        out[f"{name}.{k}"] = v
        out[f"{name}.grad.{k}"] = ts[k].grad.numpy().astype(np.float32)
    for k, v in ints.items():
        out[f"{name}.{k}"] = v.astype(np.int64)
    out[f"{name}.proj"] = w.numpy().astype(np.float32)
    out[f"{name}.y"] = y.detach().numpy().astype(np.float32)


def attention(q, k, v, causal, pad):
    # softmax(q k^T / sqrt(d) + mask) v, written out (torch 1.13 has no F.scaled_dot_product_attention)
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    tq, tk = q.shape[-2], k.shape[-2]
    if causal:
        i = torch.arange(tq)[:, None]
        j = torch.arange(tk)[None, :]
        s = s.masked_fill(j > i + (tk - tq), float("-inf"))
    if pad is not None:
        s = s.masked_fill(pad.bool()[:, None, None, :], float("-inf"))
    return torch.softmax(s, -1) @ v


case("conv2d_s2_p1_g2", {"x": randn(2, 4, 7, 6), "w": randn(6, 2, 3, 3), "b": randn(6)},
     lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2))
case("conv2d_1x1", {"x": randn(2, 4, 5, 5), "w": randn(3, 4, 1, 1), "b": randn(3)},
     lambda x, w, b: F.conv2d(x, w, b))
case("linear", {"x": randn(3, 5, 8), "w": randn(6, 8), "b": randn(6)}, lambda x, w, b: F.linear(x, w, b))
case("matmul_batched", {"a": randn(2, 3, 4), "b": randn(2, 4, 5)}, lambda a, b: a @ b)
case("groupnorm", {"x": randn(2, 8, 4, 4), "g": randn(8), "b": randn(8)}, lambda x, g, b: F.group_norm(x, 4, g, b, 1e-5))
case("layernorm", {"x": randn(3, 5, 16), "g": randn(16), "b": randn(16)}, lambda x, g, b: F.layer_norm(x, (16,), g, b, 1e-5))
case("softmax", {"x": randn(4, 9)}, lambda x: torch.softmax(x, -1))
case("log_softmax", {"x": randn(4, 9)}, lambda x: torch.log_softmax(x, -1))
case("cross_entropy", {"x": randn(6, 10)}, lambda x, t: F.cross_entropy(x, t, ignore_index=-100, label_smoothing=0.1),
     ints={"t": np.array([1, 9, -100, 0, 4, 4])})
case("attention_causal_pad", {"q": randn(2, 4, 6, 8), "k": randn(2, 4, 6, 8), "v": randn(2, 4, 6, 8)},
     lambda q, k, v, pad: attention(q, k, v, True, pad),
     ints={"pad": np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]])})
case("attention_cross", {"q": randn(2, 4, 5, 8), "k": randn(2, 4, 7, 8), "v": randn(2, 4, 7, 8)},
     lambda q, k, v: attention(q, k, v, False, None))
case("gelu", {"x": randn(50)}, lambda x: F.gelu(x))
case("gelu_tanh", {"x": randn(50)}, lambda x: F.gelu(x, approximate="tanh"))
case("silu", {"x": randn(50)}, lambda x: F.silu(x))
case("upsample", {"x": randn(2, 3, 4, 4)}, lambda x: F.interpolate(x, scale_factor=2, mode="nearest"))
case("avgpool", {"x": randn(2, 3, 6, 6)}, lambda x: F.avg_pool2d(x, 2))
case("embedding", {"w": randn(10, 6)}, lambda w, ids: F.embedding(ids, w), ints={"ids": np.array([3, 0, 9, 3, 7, 1, 0])})
case("gather", {"x": randn(3, 4, 5)}, lambda x, i: torch.gather(x, 2, i), ints={"i": rng.integers(0, 5, (3, 4, 2))})
case("mse", {"a": randn(5, 7), "b": randn(5, 7)}, lambda a, b: F.mse_loss(a, b))
case("sum_mean_max", {"x": randn(3, 4, 5)}, lambda x: x.sum(1) + x.mean(1) + x.max(1).values)

case("add_broadcast", {"a": randn(2, 3, 4), "b": randn(3, 1)}, lambda a, b: a + b)
case("sub_broadcast", {"a": randn(2, 3, 4), "b": randn(4)}, lambda a, b: a - b)
case("mul_broadcast", {"a": randn(2, 3, 4), "b": randn(2, 1, 4)}, lambda a, b: a * b)
case("div_broadcast", {"a": randn(2, 3, 4), "b": np.abs(randn(3, 1)) + 0.5}, lambda a, b: a / b)
case("unary_chain", {"x": np.abs(randn(3, 7)) + 0.2},
     lambda x: torch.exp(-x) + torch.log(x) + torch.sqrt(x) + x * x + torch.tanh(x) + torch.sigmoid(x) + torch.relu(x - 1.0))
case("concat_narrow", {"a": randn(2, 3, 4), "b": randn(2, 2, 4)}, lambda a, b: torch.cat([a, b], 1).narrow(2, 1, 2))
case("permute_expand", {"x": randn(2, 3, 1)}, lambda x: x.expand(2, 3, 5).permute(2, 0, 1).contiguous())
case("dropout_mask", {"x": randn(4, 6)}, lambda x, m: x * m.to(x.dtype) / 0.75,
     ints={"m": (rng.random((4, 6)) >= 0.25).astype(np.int64)})

def spectral_norm(w, u0, v0, iterations):
    # PyTorch's own parametrisation (torch.nn.utils.parametrizations.spectral_norm's module), its buffers set to ours
    sn = torch.nn.utils.parametrizations._SpectralNorm(w.detach(), n_power_iterations=iterations, dim=0, eps=1e-12)
    with torch.no_grad():
        sn._u.copy_(torch.tensor(u0.astype(np.float64)))
        sn._v.copy_(torch.tensor(v0.astype(np.float64)))
    sn.train()
    return sn(w)


sn_u, sn_v = randn(6), randn(18)
out["spectral_norm.u0"], out["spectral_norm.v0"] = sn_u, sn_v
case("spectral_norm", {"w": randn(6, 2, 3, 3)}, lambda w: spectral_norm(w, sn_u, sn_v, 3))

case("leaky_relu", {"x": randn(50)}, lambda x: F.leaky_relu(x, 0.1))

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "ops_golden.safetensors")
st.save(path, out, {"made_by": "tools/reference/make_op_goldens.py", "torch": torch.__version__})
print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")
