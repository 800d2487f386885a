"""The training loops of the book, and why there is more than one.

Minibatch training of a network on MNIST or CIFAR goes through one loop, `train` (train/loop.py): data resident on
the device, per-step schedules of learning rate and weight decay, SGD (momentum, Nesterov), Adam or Adagrad,
callbacks, checkpoints. Sharp minima (Keskar et al.'s runs and Hoffer et al.'s recipe), learning order on
CIFAR-10, the intrinsic-LR network and every run of the capstone use it.

The other loops exist because their experiments are not minibatch training of one network, and each is vectorised
over what its experiment sweeps, which `train` cannot be:

- `catapult.nets.gd_squared_loss`: full-batch gradient descent on a flat parameter vector (torch.func), so that
  the NTK's and the Hessian's top eigenvalues can be measured on the same vector along the run. The catapult
  networks and the edge-of-stability runs share it.
- `catapult.linear.linear_sweep`: full-batch GD of a deep linear network at every learning rate of the sweep at
  once, one weight stack per layer with a leading run axis.
- `repro.models.uv.trajectory`: the uv model's exact dynamics in (f, lambda), two numbers per run, batched over
  width, initialisation and learning rate.
- `convex.schedules.early_stopped_gd`: full-batch GD on many least-squares problems at once, through their
  Hessians (a step costs O(d^2), not O(n d)), each annealing and stopping at its own training loss.
- `intrinsic_lr.toy.toy_sgd`: online SGD with weight decay on many scale-invariant toy problems at once, fresh
  data every step (no dataset to hold).
- `learning_order.setting.train_batch`: many two-layer networks of Li et al.'s theory setting at once, with the
  paper's noise and its per-run stopping rules (anneal at a training loss, stop at another).
"""

from repro.train.loop import History, Schedule, StepInfo, evaluate, normalize, train

__all__ = ["History", "Schedule", "StepInfo", "evaluate", "normalize", "train"]
