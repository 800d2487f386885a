import torch

from repro.models.keskar import C1, F1


def test_f1_shape_and_size():
    model = F1()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    # 784*512+512 + 4*(512*512+512) + 5 BN layers of 2*512 + 512*10+10
    assert sum(p.numel() for p in model.parameters()) == 401_920 + 1_050_624 + 5_120 + 5_130


def test_c1_shape():
    model = C1().eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_c2_shape_and_layers():
    from repro.models.keskar import C2

    model = C2(num_classes=100).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 100)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256] + [512] * 6
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 5
