import math

import pytest
import torch

from repro.data import VisionData
from repro.metrics import norms
from repro.models.bn import BNMLP
from repro.train import loop


def toy_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = (torch.rand(n, 1, 6, 6, generator=g) * 60 + y[:, None, None, None] * 50).to(torch.uint8)
    return VisionData(x, y, 4)


def make_model(seed=0):
    torch.manual_seed(seed)
    return BNMLP(36, 4, width=16)


def test_same_seed_same_numbers_and_learning():
    data, test = toy_data(), toy_data(128, seed=1)
    runs = []
    for _ in range(2):
        m = make_model()
        h = loop.train(m, data, steps=60, batch_size=32, schedule=loop.constant(0.1, 1e-3), seed=5, test_data=test,
                       eval_every=20)
        runs.append((h, torch.cat([p.detach().flatten() for p in m.parameters()])))
    assert runs[0][0].test_acc == runs[1][0].test_acc and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0].step == [20, 40, 60]
    assert runs[0][0].test_acc[-1] > 0.9


def test_schedule_callbacks_and_epochs():
    data = toy_data(100)
    seen, epochs = [], []
    m = make_model()
    sched = loop.piecewise([(5, 0.1, 0.0), (5, 0.01, 0.5)])
    loop.train(m, data, steps=10, batch_size=30, schedule=sched, seed=0,
               on_step=lambda i: seen.append((i.step, i.epoch, i.lr, i.weight_decay)),
               on_epoch=lambda e, _: epochs.append(e))
    assert [s[0] for s in seen] == list(range(10))
    assert [s[1] for s in seen] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]  # 3 full batches of 30 per epoch of 100
    assert seen[4][2:] == (0.1, 0.0) and seen[5][2:] == (0.01, 0.5)
    assert epochs == [1, 2, 3, 4]


def test_each_epoch_is_a_permutation():
    data = toy_data(90)
    data.y = torch.arange(90)  # labels as example ids (the loss does not care here)
    data.num_classes = 90
    torch.manual_seed(0)
    m = BNMLP(36, 90, width=8)
    ids = []
    orig = loop.F.cross_entropy

    def spy(out, y, **kw):
        ids.append(y.clone())
        return orig(out, y, **kw)

    loop.F.cross_entropy = spy
    try:
        loop.train(m, data, steps=6, batch_size=30, schedule=loop.constant(0.01, 0.0), seed=0)
    finally:
        loop.F.cross_entropy = orig
    first, second = torch.cat(ids[:3]), torch.cat(ids[3:6])
    assert sorted(first.tolist()) == list(range(90)) == sorted(second.tolist())
    assert not torch.equal(first, second)


def test_augment_batch_shapes_and_flip():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
    out = loop.augment_batch(x, torch.Generator().manual_seed(0), pad=0)
    assert out.shape == x.shape
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))


def _sha(t: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]


def test_augmentation_and_patches_draw_the_same_numbers_as_before():
    """The checksums were computed from the code before its random draws reached the device by one
    non-blocking copy (when they were copied one by one, blocking): the same crops, flips, patch signs and
    patch-only choices for the same seed, the generator left in the same state, and the same trained weights."""
    from repro.data.patches import apply_patches, make_patches

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 32, 32), generator=g, dtype=torch.uint8)
    gen = torch.Generator().manual_seed(1)
    assert _sha(loop.augment_batch(x, gen)) == "acf594a15653eb78"
    assert int(torch.randint(0, 10**9, (1,), generator=gen)) == 573870055
    gp = torch.Generator().manual_seed(2)
    p = make_patches(10, 3, generator=gp)
    xf = torch.randn(64, 3, 32, 32, generator=gp)
    y = torch.randint(0, 10, (64,), generator=gp)
    carries = torch.rand(64, generator=gp) < 0.5
    assert _sha(apply_patches(xf, y, p, carries, gp)) == "92b2f30306216dca"
    assert _sha(apply_patches(torch.zeros_like(xf), y, p, carries, gp, only=True)) == "1ee97c956700c555"
    assert int(torch.randint(0, 10**9, (1,), generator=gp)) == 352039897
    data = VisionData(x, torch.randint(0, 10, (64,), generator=g), 10)
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    from repro.device import num_threads

    with num_threads(1):  # the checksum was taken with one thread
        loop.train(m, data, steps=6, batch_size=16, schedule=loop.constant(0.1, 0.0), seed=3, augment=True)
    assert _sha(torch.cat([q.detach().flatten() for q in m.parameters()])) == "d904c9b197300652"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_draws_reach_the_gpu_unchanged():
    """On CUDA the draws travel by a non-blocking copy from pinned memory: the same crops and flips as on a
    CPU, and the same patches up to float rounding."""
    from repro.data.patches import apply_patches, make_patches

    x = torch.randint(0, 256, (64, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    on_gpu = loop.augment_batch(x.cuda(), torch.Generator().manual_seed(1))
    torch.cuda.synchronize()
    assert torch.equal(on_gpu.cpu(), loop.augment_batch(x, torch.Generator().manual_seed(1)))
    p = make_patches(10, 3, generator=torch.Generator().manual_seed(2))
    xf, y, carries = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,)), torch.rand(64) < 0.5
    cpu = apply_patches(xf, y, p, carries, torch.Generator().manual_seed(3))
    gpu = apply_patches(xf.cuda(), y.cuda(), p.to("cuda"), carries.cuda(), torch.Generator().manual_seed(3))
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-6, atol=1e-6)


def test_batch_larger_than_data_is_refused():
    with pytest.raises(ValueError, match="larger than the training set"):
        loop.train(make_model(), toy_data(16), steps=1, batch_size=32, schedule=loop.constant(0.1, 0), seed=0)


def test_norm_tracker_measures_angle_norm_and_grad():
    data = toy_data()
    m = make_model()
    tr = norms.NormTracker(m, every=1)
    w0 = m.linears[1].weight.detach().clone()
    loop.train(m, data, steps=1, batch_size=32, schedule=loop.constant(0.5, 0.1), seed=0, on_step=tr)
    w1 = m.linears[1].weight.detach()
    grad = m.linears[1].weight.grad
    assert tr.sq_norm["layer2"][0] == pytest.approx(float(w1.pow(2).sum()), rel=1e-5)
    cos = float((w0 * w1).sum() / (w0.norm() * w1.norm()))
    assert tr.angular["layer2"][0] == pytest.approx(math.acos(min(cos, 1.0)), rel=1e-3)
    assert tr.grad_sq["layer2"][0] == pytest.approx(float(grad.pow(2).sum() * w0.pow(2).sum()), rel=1e-5)
    # the loss gradient of a scale-invariant weight is orthogonal to it
    assert abs(float((grad * w0).sum())) < 1e-4 * float(grad.norm() * w0.norm())


def test_angle_is_accurate_for_tiny_angles():
    a = torch.tensor([1.0, 0.0], dtype=torch.float32)
    b = torch.tensor([1.0, 1e-5], dtype=torch.float32)
    assert float(norms.angle(a, b)) == pytest.approx(1e-5, rel=1e-3)


def test_norm_tracker_windows_end_at_schedule_changes():
    m = make_model()
    tr = norms.NormTracker(m, every=4)
    loop.train(m, toy_data(), steps=10, batch_size=32, schedule=loop.piecewise([(6, 0.1, 0.01), (4, 0.01, 0.01)]),
               seed=0, on_step=tr)
    assert tr.step == [4, 6, 10] and tr.lr == [0.1, 0.1, 0.01]


def test_an_interrupted_run_resumes_from_its_checkpoint_exactly(tmp_path):
    from repro.checkpoint import Checkpoint

    data, test = toy_data(), toy_data(128, seed=1)
    kw = dict(steps=64, batch_size=32, schedule=loop.piecewise([(30, 0.1, 1e-3), (1, 0.01, 1e-3)]), seed=3,
              momentum=0.9, test_data=test, eval_every=16)
    whole = make_model()
    h_whole = loop.train(whole, data, **kw)

    ckpt = Checkpoint("toy", "run", every=2, root=tmp_path)

    def stop_after_epoch_4(epoch, model):
        if epoch == 4:
            raise KeyboardInterrupt  # the machine was taken away
    with pytest.raises(KeyboardInterrupt):
        loop.train(make_model(), data, checkpoint=ckpt, on_epoch=stop_after_epoch_4, **kw)
    assert ckpt.load()["epoch"] == 4

    resumed = make_model(seed=1)  # different weights: everything must come from the checkpoint
    h_resumed = loop.train(resumed, data, checkpoint=ckpt, **kw)
    assert h_resumed.to_dict() == h_whole.to_dict()
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(),
                                                  strict=True))
    assert not ckpt.path.exists()  # a finished run leaves no checkpoint behind


def test_fast_path_is_off_on_cpu_and_can_be_forced():
    data = toy_data(64)
    m = make_model()
    h = loop.train(m, data, steps=4, batch_size=16, schedule=loop.constant(0.1, 0.0), seed=0, fast=True)
    assert math.isfinite(h.train_loss[-1])  # bf16 autocast on the CPU still trains


def test_transform_sees_each_normalised_batch_with_its_indices():
    data = toy_data(96)
    seen = []

    def transform(x, idx, gen):
        seen.append(idx.clone())
        assert x.dtype == torch.float32 and abs(float(x.mean())) < 1.5  # normalised, not raw uint8
        return torch.zeros_like(x)  # the model sees only what the transform returns

    m = make_model()
    h = loop.train(m, data, steps=6, batch_size=32, schedule=loop.constant(0.1, 0.0), seed=0, momentum=0.9,
                   nesterov=True, transform=transform, test_data=data)
    assert sorted(torch.cat(seen[:3]).tolist()) == list(range(96))  # one epoch = one permutation
    assert h.test_acc[-1] < 0.6  # trained on blanks, it cannot have learned the classes
