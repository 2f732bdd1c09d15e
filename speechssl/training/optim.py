"""AdamW with a per-step schedule, and parameter groups without weight decay."""

from typing import Dict, List

import torch

from .config import OptimConfig


def warmup_polynomial(step: int, warmup: int, total: int, power: float, end_ratio: float) -> float:
    """LR multiplier: linear warmup to 1 over ``warmup`` steps, then ``(1 - progress)^power`` decay
    down to ``end_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup))
    return end_ratio + (1 - end_ratio) * (1 - progress) ** power


def build_optimizer(params, cfg: OptimConfig, scheduler_fn=None):
    """AdamW (decoupled weight decay, as fairseq's adam) with a per-step schedule."""
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    fn = scheduler_fn or (
        lambda s: warmup_polynomial(
            s, cfg.warmup_steps, cfg.total_steps, cfg.power, cfg.end_lr / cfg.lr if cfg.lr else 0.0
        )
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}


def no_decay_groups(module: torch.nn.Module, weight_decay: float) -> List[Dict]:
    """Biases, norms and embeddings-like vectors take no weight decay."""
    decay, plain = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (plain if p.ndim < 2 or "norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
