"""Frozen evaluation: an attentive probe (V-JEPA's) trained on cached features, swept over learning rates.

    tokens (B, N, D)  --frozen encoder, once, no_grad-->  cached in memory
    q (Q, D) learned queries; q <- q + xattn(q, LN(tokens)); q <- q + MLP(LN(q))   (one cross-attention block)
    logits = Linear(flatten(q))                                                     (B, classes)

``train_probes`` trains one probe per (lr, weight decay) on the same batches, keeps for each the epoch with
the best validation accuracy, and reports the test accuracy of the probe with the best validation accuracy
(the test split never picks anything).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class AttentiveProbe(nn.Module):
    """(B, N, D) tokens -> (B, classes) logits: ``queries`` learned tokens cross-attend over the tokens.

    The parameters and the function are V-JEPA's ``AttentiveClassifier`` (depth 1): LN on the tokens,
    multi-head cross-attention (q, k, v projections, no output projection), residual, LN, MLP, residual,
    Linear head. ``forward`` evaluates the attention in factored form, which gives the same result
    (``reference_pool`` is the direct form; a test checks they agree) at a fraction of the cost: the
    keys are never materialised (logits = LN(x) . (W_k^T q), key bias and LN shift are constant over
    tokens), and the values are projected after pooling (softmax weights sum to one). Per clip that is
    ~2 H Q N D multiply-adds instead of ~2 N D^2, which is what makes a learning-rate sweep over cached
    features cheap on a CPU.
    """

    def __init__(self, dim: int, num_classes: int, queries: int = 1, heads: int = 16, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"probe dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.query = nn.Parameter(torch.randn(1, queries, dim) * 0.02)
        self.norm_kv = nn.LayerNorm(dim, eps=1e-6)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.norm_mlp = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.head = nn.Linear(queries * dim, num_classes)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, Q, D): the queries after the cross-attention block (factored evaluation)."""
        dim = tokens.shape[-1]
        gamma, beta = self.norm_kv.weight, self.norm_kv.bias
        normed = F.layer_norm(tokens, (dim,), eps=self.norm_kv.eps)  # (B, N, D), LN without its affine
        w_k, w_v = self.kv.weight[:dim], self.kv.weight[dim:]  # (D_out, D_in) each
        q = rearrange(self.q(self.query)[0], "q (h e) -> h q e", h=self.heads)  # (H, Q, E)
        w_k = rearrange(w_k, "(h e) d -> h e d", h=self.heads)
        u = torch.einsum("hqe,hed->hqd", q, w_k) * gamma / math.sqrt(q.shape[-1])  # (H, Q, D)
        attn = torch.einsum("bnd,hqd->bhqn", normed, u).softmax(dim=-1)
        pooled = torch.einsum("bhqn,bnd->bhqd", attn, normed) * gamma + beta  # attention-weighted LN(x)
        w_v = rearrange(w_v, "(h e) d -> h e d", h=self.heads)
        values = torch.einsum("bhqd,hed->bqhe", pooled, w_v)
        attended = rearrange(values, "b q h e -> b q (h e)") + self.kv.bias[dim:]
        x = self.query + attended  # V-JEPA's cross-attention has no output projection
        return x + self.mlp(self.norm_mlp(x))

    def reference_pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """The direct form of ``pool`` (keys and values for every token), for checking."""
        k, v = rearrange(self.kv(self.norm_kv(tokens)), "b n (two h e) -> two b h n e", two=2, h=self.heads)
        q = rearrange(self.q(self.query).expand(tokens.shape[0], -1, -1), "b q (h e) -> b h q e", h=self.heads)
        attended = rearrange(F.scaled_dot_product_attention(q, k, v), "b h q e -> b q (h e)")
        x = self.query + attended
        return x + self.mlp(self.norm_mlp(x))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(rearrange(self.pool(tokens), "b q d -> b (q d)"))


class LinearProbe(nn.Module):
    """(B, F) or (B, N, D) flattened -> (B, classes): a linear classifier (the pixel baseline)."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.head = nn.Linear(in_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.flatten(1))


@dataclass
class ProbeSweepConfig:
    lrs: list[float] = field(default_factory=lambda: [1e-3, 3e-3, 1e-2, 3e-2])
    weight_decays: list[float] = field(default_factory=lambda: [0.01])
    epochs: int = 30
    batch_size: int = 16
    warmup_epochs: int = 1


@dataclass
class ProbeResult:
    """The chosen probe's accuracies and the whole sweep (one record per (lr, weight decay))."""

    val_accuracy: float
    test_accuracy: float
    lr: float
    weight_decay: float
    epoch: int
    sweep: list[dict]


@torch.no_grad()
def accuracy(model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    model.eval()
    correct = sum(int((model(features[i:i + batch_size]).argmax(-1) == labels[i:i + batch_size]).sum())
                  for i in range(0, len(labels), batch_size))
    model.train()
    return correct / max(len(labels), 1)


def train_probes(make_probe: Callable[[], nn.Module], train: tuple[torch.Tensor, torch.Tensor],
                 val: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                 cfg: ProbeSweepConfig, seed: int = 0,
                 on_epoch: Callable[[int, list[float]], None] | None = None) -> ProbeResult:
    """Train one ``make_probe()`` per (lr, wd) on cached features; pick by validation accuracy.

    ``train``/``val``/``test``: (features (M, ...), labels (M,)), all on one device, where the probes train.
    Every probe starts from the same seed (initialised on the CPU, so on every device alike) and sees the same
    batches. AdamW, linear warmup then cosine decay, cross-entropy.
    ``on_epoch(epoch, val_accuracies)`` is called after every epoch (for logging).
    """
    x_train, y_train = train
    grid = [(lr, wd) for lr in cfg.lrs for wd in cfg.weight_decays]
    probes, optims = [], []
    for lr, wd in grid:
        torch.manual_seed(seed)
        probe = make_probe().to(x_train.device)
        probes.append(probe)
        optims.append(torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=wd))
    steps_per_epoch = math.ceil(len(y_train) / cfg.batch_size)
    total, warmup = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch
    best = [{"val": -1.0, "test": 0.0, "epoch": -1} for _ in grid]
    generator = torch.Generator().manual_seed(seed)
    step = 0
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(y_train), generator=generator)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size].to(x_train.device)
            scale = (step + 1) / warmup if step < warmup else \
                0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))
            for (lr, _), probe, optim in zip(grid, probes, optims):
                for group in optim.param_groups:
                    group["lr"] = lr * scale
                loss = F.cross_entropy(probe(x_train[idx]), y_train[idx])
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
            step += 1
        val_accs = []
        for record, probe in zip(best, probes):
            val_acc = accuracy(probe, *val)
            val_accs.append(val_acc)
            if val_acc > record["val"]:
                record.update(val=val_acc, test=accuracy(probe, *test), epoch=epoch)
        if on_epoch is not None:
            on_epoch(epoch, val_accs)
    sweep = [{"lr": lr, "weight_decay": wd, "val_accuracy": r["val"], "test_accuracy": r["test"],
              "epoch": r["epoch"]} for (lr, wd), r in zip(grid, best)]
    chosen = max(range(len(grid)), key=lambda i: best[i]["val"])
    return ProbeResult(val_accuracy=best[chosen]["val"], test_accuracy=best[chosen]["test"],
                       lr=grid[chosen][0], weight_decay=grid[chosen][1], epoch=best[chosen]["epoch"], sweep=sweep)


@torch.no_grad()
def encode(encoder: nn.Module, clips: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Frozen features: (M, C, T, H, W) normalised clips -> (M, N, D), computed in batches without grad, on the
    encoder's device (the features stay there)."""
    encoder.eval()
    device = next(encoder.parameters()).device
    return torch.cat([encoder(clips[i:i + batch_size].to(device)) for i in range(0, len(clips), batch_size)])


def tubelet_pixels(clips: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """The pixel baseline's tokens: (M, C, T, H, W) -> (M, t*h*w, C*tubelet*patch*patch), (t h w) order."""
    return rearrange(clips, "m c (t pt) (h ph) (w pw) -> m (t h w) (c pt ph pw)", pt=tubelet, ph=patch, pw=patch)
