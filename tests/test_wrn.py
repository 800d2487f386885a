import pytest
import torch

from repro.models.wrn import ActNoise, WideResNet, set_act_noise


@pytest.mark.parametrize("widen, expected", [(10, 17_116_634), (4, 2_748_890)])
def test_parameter_counts_match_the_published_ones(widen, expected):
    # WRN-16-10: Li et al.'s network (analytic count); WRN-16-4: the published WRN table's 2,748,890
    assert sum(p.numel() for p in WideResNet(16, widen).parameters()) == expected


def test_shapes_and_bad_depth():
    model = WideResNet(10, 1)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        WideResNet(15, 1)


def test_noise_is_one_map_shared_over_batch_and_channels_and_off_in_eval():
    layer = ActNoise()
    layer.std = 0.5
    x = torch.zeros(4, 3, 8, 8)
    noise = layer.train()(x)
    assert torch.equal(noise, noise[:1, :1].expand_as(noise)) and noise.std() > 0.3
    assert torch.equal(layer.eval()(x), x)
    layer.train().shared = False
    iid = layer(x)
    assert not torch.equal(iid[0, 0], iid[1, 0])


def test_set_act_noise_reaches_every_preactivation():
    model = WideResNet(10, 1)
    set_act_noise(model, 0.4)
    layers = [m for m in model.modules() if isinstance(m, ActNoise)]
    assert len(layers) == 2 * 1 * 3 + 1 and all(m.std == 0.4 for m in layers)  # two per block, plus the last
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), model(x))  # evaluation is clean


def test_noise_on_features_is_one_vector_shared_by_the_batch():
    from repro.models.wrn import NoisyMLP
    noise = ActNoise()
    noise.std = 0.4
    out = noise(torch.zeros(8, 16))
    assert torch.equal(out, out[:1].expand(8, 16)) and out.std() > 0.1
    noise.shared = False
    out = noise(torch.zeros(8, 16))
    assert not torch.allclose(out[0], out[1])
    model = NoisyMLP(width=32)
    set_act_noise(model, 0.4)
    assert model(torch.zeros(4, 3, 32, 32)).shape == (4, 10)
    assert sum(isinstance(m, ActNoise) for m in model.modules()) == 2
