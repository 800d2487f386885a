import pytest
import torch

from repro.data.patches import apply_patches, make_patches


def _batch(n=4000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    patches = make_patches(10, generator=gen)
    x = torch.randn(n, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    carries = torch.rand(n, generator=gen) < 0.8
    return patches, x, y, carries, apply_patches(x, y, patches, carries, gen)


def test_official_pattern_statistics():
    patches = make_patches(10, generator=torch.Generator().manual_seed(0))
    assert patches.z.shape == (3, 7, 7) and patches.zeta.shape == (10, 3, 7, 7)
    assert patches.zeta.abs().max() <= 0.1 and patches.zeta.abs().max() > 0.09
    assert 1.0 < patches.z.std() < 1.5  # z_scale 1.25 over 147 entries


def test_patch_is_written_at_the_centre_as_z_plus_signed_class_pattern():
    patches, x, y, carries, out = _batch()
    block = (slice(None), slice(None), slice(12, 19), slice(12, 19))
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[12:19, 12:19] = False
    assert torch.equal(out[~carries], x[~carries])  # images without a patch are untouched
    # (block - z) = s * scale * zeta_y: one coefficient per image
    diff, zeta = (out[block] - patches.z).flatten(1), patches.zeta[y].flatten(1)
    coef = (diff * zeta).sum(1) / (zeta * zeta).sum(1)
    assert torch.allclose(diff[carries], coef[carries, None] * zeta[carries], atol=1e-5)
    c = coef[carries]
    zeroed = (out[carries][:, :, outside] == 0).all(dim=(1, 2))
    # patch-only images: zero outside the patch, zeta scaled by 1.75 U(0, 1) with a random sign
    assert abs(zeroed.float().mean() - 0.2) < 0.03
    assert (c[zeroed].abs() <= 1.75 + 1e-4).all() and abs(c[zeroed].abs().mean() - 0.875) < 0.1
    # patched images keep their pixels outside the block and carry exactly +-zeta_y
    assert torch.equal(out[carries][~zeroed][:, :, outside], x[carries][~zeroed][:, :, outside])
    assert torch.allclose(c[~zeroed].abs(), torch.ones(()), atol=1e-4)
    assert abs((c > 0).float().mean() - 0.5) < 0.04  # the sign is a fair coin


def test_patch_only_set_zeroes_every_image_and_input_is_not_modified():
    patches, x, y, carries, _ = _batch(500)
    before = x.clone()
    out = apply_patches(x, y, patches, torch.zeros(500, dtype=torch.bool), torch.Generator().manual_seed(1),
                        only=True)
    assert torch.equal(x, before)
    assert (out[:, :, :12] == 0).all() and (out[:, :, 12:19, 12:19] != 0).all()


def test_draws_depend_only_on_the_generator():
    patches, x, y, carries, _ = _batch(200)
    a = apply_patches(x, y, patches, carries, torch.Generator().manual_seed(5))
    b = apply_patches(x, y, patches, carries, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize("overrides, match", [
    ({"anneal_epoch": 16, "epochs": 16}, "anneal_epoch"),
    ({"lr_small": 0.2}, "lr_small"),
    ({"network": "wrn", "wrn_depth": 12}, "6n"),
    ({"n_train": 512, "batch_size": 256}, "control"),
])
def test_bad_cifar_parameters_are_refused(overrides, match):
    from repro.experiments.learning_order import Params
    from repro.params import ConfigError
    with pytest.raises(ConfigError, match=match):
        Params.resolve("book", overrides)


def test_an_under_trained_cifar_run_is_inconclusive():
    """Two epochs of a 32-unit MLP on 512 images: far from the clean accuracy the claims need."""
    from repro.data.vision import DataError
    from repro.experiments.learning_order import Params, cifar, verdicts
    from repro.regime import INCONCLUSIVE
    from repro.store import Result

    p = Params.resolve("smoke")
    try:
        out = cifar.cifar_run(p, "small_lr", p.n_train, True, p.patch_sep, 0, torch.device("cpu"))
    except DataError:
        pytest.skip("CIFAR-10 packs not found")
    m = out["metrics"]
    assert 0 <= m["final_train"] <= 1 and 0 <= m["final_train_clean"] <= 1
    result = Result("learning_order_cifar", cifar.VERSION, "k", {}, m, {}, {})
    regime = verdicts.cifar_regime("smoke MLP", [result])
    assert regime.verdict("yes") == INCONCLUSIVE
    assert "clean test accuracy, lowest run" in regime.reason
