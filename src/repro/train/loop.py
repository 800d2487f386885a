"""The minibatch training loop of every network trained on MNIST or CIFAR (see repro/train/__init__.py for the others).

The data stay on the device as uint8; each epoch draws one permutation from an explicit generator and takes
batches by slicing it; normalisation (and optional crop/flip augmentation) happens batch-wise on the device;
the optimizer (SGD, Adam or Adagrad) has its learning rate and weight decay set from a schedule at every step.
Nothing synchronises with the device inside the loop except the evaluations and what a callback asks for (the
random draws of the CPU generator reach the GPU by non-blocking copies from pinned memory), so the same loop is
fast on a GPU and exact on a CPU (same seed, same CPU: same numbers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from repro.checkpoint import Checkpoint
from repro.data import VisionData
from repro.device import to_device

# step -> (learning rate, weight decay) for that step
Schedule = Callable[[int], tuple[float, float]]
# (normalised batch, its indices into the training set, the loop's CPU generator) -> batch
Transform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def constant(lr: float, weight_decay: float) -> Schedule:
    return lambda step: (lr, weight_decay)


def piecewise(phases: list[tuple[int, float, float]]) -> Schedule:
    """Phases (steps, lr, weight_decay) one after the other; the last one continues forever."""
    bounds, total = [], 0
    for steps, lr, wd in phases:
        total += steps
        bounds.append((total, lr, wd))

    def schedule(step: int) -> tuple[float, float]:
        for end, lr, wd in bounds:
            if step < end:
                return lr, wd
        return bounds[-1][1], bounds[-1][2]
    return schedule


@dataclasses.dataclass
class StepInfo:
    """What a per-step callback sees, right after optimizer.step(): p.grad still holds this step's loss
    gradient (torch's SGD adds weight decay out of place), `loss` is a device tensor (not synchronised)."""

    step: int
    epoch: int
    lr: float
    weight_decay: float
    loss: torch.Tensor
    model: nn.Module
    optimizer: torch.optim.Optimizer


@dataclasses.dataclass
class History:
    """Evaluations at the steps in `step` (after that many updates); train_loss is the mean minibatch loss
    since the previous evaluation."""

    step: list[int] = dataclasses.field(default_factory=list)
    train_loss: list[float] = dataclasses.field(default_factory=list)
    test_loss: list[float] = dataclasses.field(default_factory=list)
    test_acc: list[float] = dataclasses.field(default_factory=list)
    train_acc: list[float] = dataclasses.field(default_factory=list)
    lr: list[float] = dataclasses.field(default_factory=list)
    weight_decay: list[float] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, list]:
        return dataclasses.asdict(self)


def channel_stats(data: VisionData) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the uint8 images, as (1, C, 1, 1) float tensors on the data's device."""
    x = data.x.float() / 255
    return x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255 - mean) / std


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crops after zero padding by `pad` and random horizontal flips, for a whole batch at once.
    The random numbers come from a CPU generator, so they do not depend on the device; on CUDA they travel in
    one non-blocking copy (repro.device.to_device), so the host never waits for the GPU here."""
    n, c, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    draws = to_device(torch.cat([shifts, flips[None].long()]), x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = draws[0][:, None] + torch.arange(h, device=x.device)
    cols = draws[1][:, None] + torch.arange(w, device=x.device)
    cols = torch.where(draws[2][:, None].bool(), cols.flip(1), cols)
    idx = torch.arange(n, device=x.device)
    return padded.permute(0, 2, 3, 1)[idx[:, None, None], rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@torch.no_grad()
def evaluate(model: nn.Module, data: VisionData, mean: torch.Tensor, std: torch.Tensor,
             batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode; restores the model's mode."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=data.x.device)
    correct = torch.zeros((), device=data.x.device, dtype=torch.long)
    for i in range(0, len(data), batch_size):
        out = model(normalize(data.x[i:i + batch_size], mean, std))
        y = data.y[i:i + batch_size]
        loss += F.cross_entropy(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    model.train(was_training)
    return float(loss) / len(data), float(correct) / len(data)


def train(model: nn.Module, data: VisionData, *, steps: int, batch_size: int, schedule: Schedule, seed: int,
          momentum: float = 0.0, test_data: VisionData | None = None, train_eval_data: VisionData | None = None,
          eval_every: int = 0, on_step: Callable[[StepInfo], None] | None = None,
          on_epoch: Callable[[int, nn.Module], None] | None = None, augment: bool = False,
          stats: tuple[torch.Tensor, torch.Tensor] | None = None, progress: str | None = None,
          optimizer: str = "sgd", nesterov: bool = False, fast: bool | None = None, compile: bool = False,
          checkpoint: Checkpoint | None = None, transform: Transform | None = None) -> History:
    """Train `model` (already on the data's device) for `steps` SGD steps of `batch_size` examples.

    Each epoch is one permutation of the training set (the last incomplete batch is dropped, so every step sees
    `batch_size` examples). `schedule(step)` gives (lr, weight_decay) for each step; weight decay is torch's
    coupled L2 term, applied to every parameter. Evaluations (every `eval_every` steps and at the end) use
    `test_data` and, if given, `train_eval_data`, in eval mode. `progress` is a tqdm description (None: quiet).
    `optimizer` is "sgd" (with `momentum`, Nesterov's if `nesterov`), "adam" or "adagrad" (torch's defaults
    otherwise). `transform(x, idx, generator)` edits each normalised (and augmented) batch `x` of training
    examples `idx` before the forward pass, e.g. to write a patch into it.

    `fast` (default: on CUDA only) runs the forward and the loss under bf16 autocast, where BatchNorm stays in
    fp32, with conv nets in channels_last; evaluation stays fp32. `compile` wraps the model in torch.compile.
    `checkpoint` saves the model, optimizer, generator and history at the end of every `checkpoint.every`
    epochs and resumes from the last save, so an interrupted run continues where it stopped (exactly, on a
    CPU); an `on_step` callback with state_dict()/load_state_dict() (NormTracker) is saved and restored with
    it, other callbacks' state is not, so runs that need it should not resume.
    """
    if batch_size > len(data):
        raise ValueError(f"batch_size ({batch_size}) is larger than the training set ({len(data)}).")
    device = data.x.device
    mean, std = stats if stats is not None else channel_stats(data)
    gen = torch.Generator().manual_seed(seed)
    lr0, wd0 = schedule(0)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr0, momentum=momentum, weight_decay=wd0, nesterov=nesterov)
    elif optimizer in ("adam", "adagrad"):
        cls = torch.optim.Adam if optimizer == "adam" else torch.optim.Adagrad
        opt = cls(model.parameters(), lr=lr0, weight_decay=wd0)
    else:
        raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adagrad', got {optimizer!r}.")
    fast = device.type == "cuda" if fast is None else fast
    channels_last = fast and data.x.ndim == 4
    if channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    per_epoch = len(data) // batch_size
    hist = History()
    loss_sum = torch.zeros((), device=device)
    since = 0
    step, epoch = 0, 0
    state = checkpoint.load(device) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        step, epoch, since, hist = state["step"], state["epoch"], state["since"], History(**state["history"])
        loss_sum = torch.tensor(state["loss_sum"], device=device)
        if "on_step" in state:
            on_step.load_state_dict(state["on_step"])
    bar = None
    if progress is not None:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=progress, mininterval=2.0, leave=False)

    def record(step: int) -> None:
        nonlocal since, loss_sum
        hist.step.append(step)
        hist.train_loss.append(float(loss_sum) / max(since, 1))
        loss_sum, since = torch.zeros((), device=device), 0
        lr, wd = schedule(max(step - 1, 0))
        hist.lr.append(lr), hist.weight_decay.append(wd)
        if test_data is not None:
            tl, ta = evaluate(model, test_data, mean, std)
            hist.test_loss.append(tl), hist.test_acc.append(ta)
        if train_eval_data is not None:
            hist.train_acc.append(evaluate(model, train_eval_data, mean, std)[1])

    model.train()
    while step < steps:
        order = to_device(torch.randperm(len(data), generator=gen), device)
        for b in range(per_epoch):
            if step >= steps:
                break
            idx = order[b * batch_size:(b + 1) * batch_size]
            x = data.x[idx]
            if augment:
                x = augment_batch(x, gen)
            lr, wd = schedule(step)
            for group in opt.param_groups:
                group["lr"], group["weight_decay"] = lr, wd
            x = normalize(x, mean, std)
            if transform is not None:
                x = transform(x, idx, gen)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
                loss = F.cross_entropy(forward(x), data.y[idx])
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            since += 1
            if on_step is not None:
                on_step(StepInfo(step, epoch, lr, wd, loss.detach(), model, opt))
            step += 1
            if bar is not None:
                bar.update(1)
            if eval_every and step % eval_every == 0 and step < steps:
                record(step)
        epoch += 1
        if checkpoint is not None and checkpoint.due(epoch) and step < steps:
            checkpoint.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                             "step": step, "epoch": epoch, "since": since, "loss_sum": float(loss_sum),
                             "history": hist.to_dict(),
                             **({"on_step": on_step.state_dict()} if hasattr(on_step, "state_dict") else {})})
        if on_epoch is not None:
            on_epoch(epoch, model)
    record(steps)
    if checkpoint is not None:
        checkpoint.clear()
    if bar is not None:
        bar.close()
    return hist
