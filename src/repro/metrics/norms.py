"""Scale invariance and its measurements: which weights are scale-invariant, their norms, angular updates,
effective learning rates, and the equilibrium values the theory predicts (Li, Lyu, Arora 2020, section 4 of
the references).

For a scale-invariant weight w (L(cw) = L(w) for c > 0) the gradient is orthogonal to w and scales as 1/|w|,
so G = |grad L(w)| |w| does not depend on the scale. SGD with weight decay, w <- (1 - lr wd) w - lr grad, gives
    |w_{t+1}|^2 = (1 - lr wd)^2 |w_t|^2 + lr^2 G_t^2 / |w_t|^2,
whose fixed point, and the per-step rotation there, depend on lr and wd through lambda_e = lr * wd only.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def scale_invariant_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The model's scale-invariant parameter groups (each group jointly: L(c w_group) = L(w_group))."""
    groups = getattr(model, "scale_invariant_groups", None)
    return groups() if groups is not None else {}


def flat(params: list[torch.Tensor]) -> torch.Tensor:
    """The tensors as one vector: a view of a single tensor, a copy of several."""
    if len(params) == 1:
        return params[0].detach().reshape(-1)
    return torch.cat([p.detach().reshape(-1) for p in params])


def angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle between two vectors, accurate for tiny angles (2 asin(|a/|a| - b/|b|| / 2), not acos)."""
    return 2 * torch.asin(((a / a.norm()) - (b / b.norm())).norm().clamp(max=2.0) / 2)


# ------------------------------------------------------------------------------------- predicted equilibrium


def equilibrium_sq_norm(lr: float, weight_decay: float, grad_sq: float) -> float:
    """|w|^2 at the fixed point of the norm recursion with constant G^2 = grad_sq:
    |w|^4 = lr G^2 / (wd (2 - lr wd)), i.e. about lr G^2 / (2 wd) (references, section 4b)."""
    return math.sqrt(lr * grad_sq / (weight_decay * (2 - lr * weight_decay)))


def equilibrium_angular_update(intrinsic_lr: float) -> float:
    """Per-step rotation at the fixed point: cos(dtheta) = 1 - lambda_e exactly for the recursion with constant
    G; about sqrt(2 lambda_e) (references, section 4b)."""
    return math.acos(1 - intrinsic_lr)


def approx_angular_update(intrinsic_lr: float, momentum: float = 0.0) -> float:
    """sqrt(2 lambda_e / (1 + momentum)): Li, Lyu, Arora for momentum 0; Wan et al. (Spherical Motion
    Dynamics) with heavy-ball momentum."""
    return math.sqrt(2 * intrinsic_lr / (1 + momentum))


def equilibrium_effective_lr(lr: float, weight_decay: float, grad_sq: float) -> float:
    """lr / |w|^2 at the fixed point: sqrt(lambda_e (2 - lambda_e) / G^2), a function of lambda_e and G only."""
    return lr / equilibrium_sq_norm(lr, weight_decay, grad_sq)


def relaxation_steps(intrinsic_lr: float, start_ratio: float, tol: float) -> float:
    """Steps for |w|^2 to come within a relative `tol` of equilibrium, from |w0|^2 = start_ratio * |w*|^2, in
    the continuous limit of the recursion: |w|^4 - |w*|^4 decays as exp(-4 lambda_e t)."""
    gap0 = abs(start_ratio**2 - 1)
    gap = (1 + tol) ** 2 - 1 if start_ratio > 1 else 1 - (1 - tol) ** 2
    return math.log(gap0 / gap) / (4 * intrinsic_lr) if gap0 > gap else 0.0


# ------------------------------------------------------------------------------------------------ tracking


class NormTracker:
    """A per-step callback for repro.train.train: for every scale-invariant group it measures, at every step,
    the squared norm after the step, the angular update of the step, G^2 = |grad|^2 |w|^2 (the scale-free
    gradient size) and the radial part of the gradient, and keeps window averages every `every` steps (one
    device sync per window).

    Recorded per window w (lists indexed by window, `step` = steps done at its end):
      sq_norm[g]      |w|^2 at the end of the window
      angular[g]      root-mean-square angular update over the window (radians per step)
      grad_sq[g]      mean G^2 over the window
      radial[g]       mean cos(w, grad) over the window: exactly 0 for a scale-invariant group, whose gradient is
                      orthogonal to w; negative where a larger norm lowers the loss (a normalization's eps no longer
                      small against the variance it divides by), which holds the norm above the recursion's
      effective_lr[g] lr / |w|^2 at the end of the window
    """

    def __init__(self, model: nn.Module, every: int = 10):
        self.groups = scale_invariant_groups(model)
        if not self.groups:
            raise ValueError(f"{type(model).__name__} declares no scale-invariant parameter groups.")
        self.every = every
        # each group's weight before the step as a unit vector and its norm: five passes over it per step
        start = {g: flat(ps) for g, ps in self.groups.items()}
        self.norm = {g: w.norm() for g, w in start.items()}
        self.unit = {g: w / self.norm[g] for g, w in start.items()}
        device = next(iter(start.values())).device
        self._acc = torch.zeros(len(self.groups), 3, device=device, dtype=torch.float64)
        self._n = 0
        self._sched: tuple[float, float] | None = None
        self.step: list[int] = []
        self.lr: list[float] = []
        self.weight_decay: list[float] = []
        self.sq_norm: dict[str, list[float]] = {g: [] for g in self.groups}
        self.angular: dict[str, list[float]] = {g: [] for g in self.groups}
        self.grad_sq: dict[str, list[float]] = {g: [] for g in self.groups}
        self.radial: dict[str, list[float]] = {g: [] for g in self.groups}
        self.effective_lr: dict[str, list[float]] = {g: [] for g in self.groups}

    def _flush(self, steps_done: int) -> None:
        acc = (self._acc / self._n).cpu()
        sq_t = torch.stack(list(self.norm.values())).double().pow(2).cpu()
        lr, wd = self._sched
        self.step.append(steps_done)
        self.lr.append(lr), self.weight_decay.append(wd)
        for i, g in enumerate(self.groups):
            self.angular[g].append(math.sqrt(float(acc[i, 0])))
            self.grad_sq[g].append(float(acc[i, 1]))
            self.radial[g].append(float(acc[i, 2]))
            self.sq_norm[g].append(float(sq_t[i]))
            self.effective_lr[g].append(lr / float(sq_t[i]))
        self._acc.zero_()
        self._n = 0

    @torch.no_grad()
    def __call__(self, info) -> None:
        # a window never straddles a change of lr or weight decay, so a drop is seen at its exact step
        if self._n and (info.lr, info.weight_decay) != self._sched:
            self._flush(info.step)
        self._sched = (info.lr, info.weight_decay)
        for i, (g, ps) in enumerate(self.groups.items()):
            new = flat(ps)
            grad = flat([p.grad for p in ps])  # the gradient at the weight before the step
            norm = new.norm()
            unit = new / norm
            # the angle from the unit vectors' distance, accurate for tiny angles (acos of their dot is not)
            self._acc[i, 0] += (2 * torch.asin(torch.dist(unit, self.unit[g]).clamp(max=2.0) / 2)).double() ** 2
            grad_sq = torch.dot(grad, grad).double()
            self._acc[i, 1] += grad_sq * self.norm[g].double() ** 2
            self._acc[i, 2] += torch.dot(grad, self.unit[g]).double() / grad_sq.sqrt().clamp(min=1e-300)
            self.unit[g], self.norm[g] = unit, norm
        self._n += 1
        if self._n == self.every:
            self._flush(info.step + 1)

    def state_dict(self) -> dict:
        """Everything needed to continue exactly (a checkpointed run resumed by repro.train.train)."""
        return {"unit": self.unit, "norm": self.norm, "acc": self._acc, "n": self._n, "sched": self._sched,
                **self.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        device = self._acc.device
        self.unit = {g: v.to(device) for g, v in state["unit"].items()}
        self.norm = {g: v.to(device) for g, v in state["norm"].items()}
        self._acc, self._n, self._sched = state["acc"].to(device), state["n"], state["sched"]
        for name in ("step", "lr", "weight_decay", "sq_norm", "angular", "grad_sq", "radial", "effective_lr"):
            setattr(self, name, state[name])

    def to_dict(self) -> dict:
        return {"step": self.step, "lr": self.lr, "weight_decay": self.weight_decay, "sq_norm": self.sq_norm,
                "angular": self.angular, "grad_sq": self.grad_sq, "radial": self.radial,
                "effective_lr": self.effective_lr}
