"""Goldens for the reference models UNet-S and AR-S (tools/reference/models.py), in float64 PyTorch 1.13.

Weights come from the shared hash initialisation, so they are not stored. For each model: the inputs, the loss, and
for every parameter: 32 sampled indices, the gradient there, the gradient's L2 norm, the weights after one AdamW step
(lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01) at those indices, and the L2 norm of the whole update.

    python3 tools/reference/make_model_goldens.py   # writes tests/fixtures/models_golden.safetensors
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import models  # noqa: E402
import st  # noqa: E402

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(7)
out = {}


def record(prefix, model, loss_fn):
    models.hash_init(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = loss_fn(model)
    loss.backward()
    out[f"{prefix}.loss"] = np.array([loss.item()], dtype=np.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    for n, p in model.named_parameters():
        k = min(32, p.numel())
        idx = np.sort(rng.choice(p.numel(), size=k, replace=False)).astype(np.int64)
        g = grads[n].reshape(-1)
        out[f"{prefix}.p.{n}.idx"] = idx
        out[f"{prefix}.p.{n}.grad"] = g[idx].numpy().astype(np.float32)
        out[f"{prefix}.p.{n}.grad_norm"] = np.array([g.norm().item()], dtype=np.float32)
        out[f"{prefix}.p.{n}.after"] = p.detach().reshape(-1)[idx].numpy().astype(np.float32)
        out[f"{prefix}.p.{n}.update_norm"] = np.array([(p.detach() - before[n]).norm().item()], dtype=np.float32)
    print(f"{prefix}: loss {loss.item():.6f}, {sum(p.numel() for p in model.parameters())} parameters")


# UNet-S: epsilon-prediction MSE on a batch of 2
x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
t = np.array([17, 503], dtype=np.int64)
ctx = rng.standard_normal((2, 16, 256)).astype(np.float32)
eps = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
out.update({"unet.x": x, "unet.t": t, "unet.ctx": ctx, "unet.eps": eps})
record("unet", models.UNetS(), lambda m: F.mse_loss(m(torch.tensor(x, dtype=torch.float64), torch.tensor(t, dtype=torch.float64),
                                                        torch.tensor(ctx, dtype=torch.float64)), torch.tensor(eps, dtype=torch.float64)))

# AR-S: next-token cross-entropy on 2 sequences of 16 text + 64 image tokens
ids = np.concatenate([rng.integers(0, 4096, (2, 16)), 4096 + rng.integers(0, 512, (2, 64))], axis=1).astype(np.int64)
out["ars.ids"] = ids
record("ars", models.ArS(), lambda m: m.loss(torch.tensor(ids)))

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "models_golden.safetensors")
st.save(path, out, {"made_by": "tools/reference/make_model_goldens.py", "torch": torch.__version__})
print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")
