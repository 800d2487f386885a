"""Momentum, batch size, BatchNorm's eps and LayerNorm in place of BatchNorm, at fixed steps (section 5 of the
page)."""

from __future__ import annotations

from .measure import acc_at, drift, summary
from .net import NetSetup, train_run
from .params import Params


def net_momentum_batch(p: Params, s: NetSetup) -> dict:
    """Momentum (Wan et al.'s sqrt(2 lambda_e / (1 + mu))) and batch size (temperature lr / B) at fixed steps."""
    steps = p.short_epochs * s.steps_per_epoch
    lr, wd = p.lr, p.weight_decay
    runs = []
    k = p.split_factor
    extra = [] if p.bn_eps == 1e-5 else [("plain SGD, BN eps 1e-5 (PyTorch default)", {"bn_eps": 1e-5}, lr, wd)]
    # reviewer 2, point 3 and reviewer 3: LayerNorm makes the layers scale-invariant too; the split runs (same
    # lambda_e, lr x k) test "lambda_e alone sets the equilibrium" for both normalizations
    for name, kw, lr_i, wd_i in [("plain SGD", {}, lr, wd), *extra,
                                 (f"momentum {p.momentum}, lr x (1 - momentum)", {"momentum": p.momentum},
                                  lr * (1 - p.momentum), wd),
                                 (f"batch {p.batch_size_small}", {"batch_size": p.batch_size_small}, lr, wd),
                                 (f"batch {p.batch_size_large}", {"batch_size": p.batch_size_large}, lr, wd),
                                 (f"BatchNorm, lr x {k:g}, wd / {k:g}", {}, lr * k, wd / k),
                                 ("LayerNorm", {"norm": "layer"}, lr, wd),
                                 (f"LayerNorm, lr x {k:g}, wd / {k:g}", {"norm": "layer"}, lr * k, wd / k)]:
        r = train_run(p, s, [(steps, lr_i, wd_i)], label=name, **kw)
        summ = summary(r, steps // 2, steps, lr_i, wd_i)
        runs.append({"name": name, "lr": lr_i, "weight_decay": wd_i, "momentum": r["momentum"],
                     "batch_size": r["batch_size"], "norm": kw.get("norm", "batch"), "equilibrium": summ,
                     "acc": acc_at(r, steps // 2, steps), "train_acc": float(r["history"]["train_acc"][-1]),
                     # momentum mu at lr (1 - mu) moves like plain SGD at lr: time unit (1 - mu) / (lr wd)
                     "drift": drift(r, steps, (1 - r["momentum"]) / (lr_i * wd_i)),
                     "norms": {"step": r["norms"]["step"], "angular": r["norms"]["angular"],
                               "effective_lr": r["norms"]["effective_lr"]}})
    return {"runs": runs, "steps": steps}
