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
