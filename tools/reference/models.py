"""PyTorch reference implementations of Pictor's reference models, UNet-S and AR-S, with the exact module names and
layer order of src/Pictor.Models (so state-dict names match), plus the deterministic hash initialisation that both
sides use (Pictor.Models.HashInit), which lets golden tests rebuild identical weights without storing them."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

M32 = (1 << 32) - 1


def fnv1a(name):
    h = 0x811C9DC5
    for b in name.encode():
        h = ((h ^ b) * 0x01000193) & M32
    return h


def hash_uniform(name, n):
    """u_i in [-1, 1): murmur3 32-bit finaliser of (i * 0x9E3779B1 + fnv1a(name)) mod 2^32, scaled."""
    x = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64(fnv1a(name))) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(M32)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    return x.astype(np.float64) / 2147483648.0 - 1.0


def hash_init(model):
    """Rank-1 'norm'/'ln' weights: 1 + 0.1u; other rank-1: 0.1u; rank >= 2: u * sqrt(3 / fan_in)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            u = hash_uniform(name, p.numel())
            leaf = name.split(".")[-2] if "." in name else name
            if p.dim() == 1:
                v = 1 + 0.1 * u if name.endswith("weight") and ("norm" in leaf or leaf.startswith("ln")) else 0.1 * u
            else:
                v = u * math.sqrt(3.0 / (p.numel() // p.shape[0]))
            # round to float32 first, as Pictor stores its weights
            p.copy_(torch.tensor(v.astype(np.float32).astype(np.float64).reshape(p.shape), dtype=p.dtype))


class MHA(nn.Module):
    def __init__(self, dim, heads, head_dim, ctx_dim=None, qkv_bias=True):
        super().__init__()
        inner, ctx_dim = heads * head_dim, ctx_dim or dim
        self.heads, self.hd = heads, head_dim
        self.q = nn.Linear(dim, inner, bias=qkv_bias)
        self.k = nn.Linear(ctx_dim, inner, bias=qkv_bias)
        self.v = nn.Linear(ctx_dim, inner, bias=qkv_bias)
        self.out = nn.Linear(inner, dim)

    def forward(self, x, ctx=None, causal=False):
        ctx = x if ctx is None else ctx
        B, T, _ = x.shape
        S = ctx.shape[1]
        q = self.q(x).view(B, T, self.heads, self.hd).transpose(1, 2)
        k = self.k(ctx).view(B, S, self.heads, self.hd).transpose(1, 2)
        v = self.v(ctx).view(B, S, self.heads, self.hd).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        if causal:
            s = s.masked_fill(torch.ones(T, S, dtype=torch.bool).triu(1 + S - T), float("-inf"))
        o = torch.softmax(s, -1) @ v
        return self.out(o.transpose(1, 2).reshape(B, T, self.heads * self.hd))


# ------------------------------------------------------------------------------------------------ UNet-S
class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(32, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, t):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(t))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class AttnBlock(nn.Module):
    def __init__(self, c, heads, head_dim, ctx_dim):
        super().__init__()
        self.norm = nn.GroupNorm(32, c)
        self.proj_in = nn.Conv2d(c, c, 1)
        self.ln1 = nn.LayerNorm(c)
        self.attn1 = MHA(c, heads, head_dim, qkv_bias=False)
        self.ln2 = nn.LayerNorm(c)
        self.attn2 = MHA(c, heads, head_dim, ctx_dim, qkv_bias=False)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x, ctx):
        B, C, H, W = x.shape
        h = self.proj_in(self.norm(x)).reshape(B, C, H * W).transpose(1, 2)
        h = h + self.attn1(self.ln1(h))
        h = h + self.attn2(self.ln2(h), ctx)
        h = h.transpose(1, 2).reshape(B, C, H, W)
        return x + self.proj_out(h)


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half).to(t.dtype)
    a = t[:, None] * freqs[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class UNetS(nn.Module):
    """channels (64, 128, 128), attention at levels 1 and 2, 2 blocks down / 3 up per level, 4 heads x 32."""

    def __init__(self, ch=(64, 128, 128), attn=(False, True, True), blocks=2, ctx_dim=256, heads=4, head_dim=32, temb=256, tdim=64):
        super().__init__()
        self.tdim = tdim
        self.time = nn.Module()
        self.time.fc1 = nn.Linear(tdim, temb)
        self.time.fc2 = nn.Linear(temb, temb)
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.enc_res, self.enc_attn, self.down = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        skips, c = [ch[0]], ch[0]
        for lvl, co in enumerate(ch):
            for _ in range(blocks):
                self.enc_res.append(ResBlock(c, co, temb))
                c = co
                if attn[lvl]:
                    self.enc_attn.append(AttnBlock(c, heads, head_dim, ctx_dim))
                skips.append(c)
            if lvl != len(ch) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid_res1 = ResBlock(c, c, temb)
        self.mid_attn = AttnBlock(c, heads, head_dim, ctx_dim)
        self.mid_res2 = ResBlock(c, c, temb)
        self.dec_res, self.dec_attn, self.up = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for lvl in reversed(range(len(ch))):
            co = ch[lvl]
            for _ in range(blocks + 1):
                self.dec_res.append(ResBlock(c + skips.pop(), co, temb))
                c = co
                if attn[lvl]:
                    self.dec_attn.append(AttnBlock(c, heads, head_dim, ctx_dim))
            if lvl != 0:
                self.up.append(nn.Conv2d(c, c, 3, padding=1))
        self.norm_out = nn.GroupNorm(32, c)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)
        self.cfg = (ch, attn, blocks)

    def forward(self, x, t, ctx):
        ch, attn, blocks = self.cfg
        temb = self.time.fc2(F.silu(self.time.fc1(timestep_embedding(t, self.tdim))))
        h = self.conv_in(x)
        hs = [h]
        ri = ai = 0
        for lvl in range(len(ch)):
            for _ in range(blocks):
                h = self.enc_res[ri](h, temb); ri += 1
                if attn[lvl]:
                    h = self.enc_attn[ai](h, ctx); ai += 1
                hs.append(h)
            if lvl != len(ch) - 1:
                h = self.down[lvl](h)
                hs.append(h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, temb), ctx), temb)
        ri = ai = ui = 0
        for lvl in reversed(range(len(ch))):
            for _ in range(blocks + 1):
                h = self.dec_res[ri](torch.cat([h, hs.pop()], 1), temb); ri += 1
                if attn[lvl]:
                    h = self.dec_attn[ai](h, ctx); ai += 1
            if lvl != 0:
                h = self.up[ui](F.interpolate(h, scale_factor=2, mode="nearest")); ui += 1
        return self.conv_out(F.silu(self.norm_out(h)))


# ------------------------------------------------------------------------------------------------ AR-S
class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = MHA(d, heads, d // heads)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(d, 4 * d)
        self.mlp.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x), causal=True)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.ln2(x))))


class ArS(nn.Module):
    """Decoder-only transformer over [16 text tokens (vocab 4096); 64 image tokens (codebook 512)], one vocabulary
    of 4096 + 512 ids (image ids offset by 4096), learned positions, 8 pre-LN blocks, d 256, 8 heads."""

    def __init__(self, layers=8, d=256, heads=8, text_vocab=4096, image_vocab=512, text_len=16, image_len=64):
        super().__init__()
        self.tok_emb = nn.Embedding(text_vocab + image_vocab, d)
        self.pos_emb = nn.Parameter(torch.zeros(text_len + image_len, d))
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, text_vocab + image_vocab, bias=False)

    def forward(self, ids):
        x = self.tok_emb(ids) + self.pos_emb[: ids.shape[1]]
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x))

    def loss(self, ids):
        logits = self.forward(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
