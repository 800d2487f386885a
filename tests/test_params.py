import dataclasses

import pytest

from repro.params import ConfigError, Params, param


@dataclasses.dataclass(frozen=True)
class Toy(Params):
    lr: float = param(0.1, "learning rate", gt=0)
    batch_size: int = param(32, "batch size", ge=1)
    n_train: int = param(100, "training examples", ge=1)
    nesterov: bool = param(True, "Nesterov momentum")
    model: str = param("mlp", "architecture", choices=("mlp", "cnn"))

    PRESETS = {"smoke": {"n_train": 10, "batch_size": 5}, "paper": {"n_train": 1000}}

    def check(self):
        if self.batch_size > self.n_train:
            raise ConfigError(f"batch_size ({self.batch_size}) is larger than the data ({self.n_train}).")


def test_defaults_presets_and_overrides_resolve_in_order():
    assert Toy.resolve().n_train == 100
    assert Toy.resolve("smoke").n_train == 10
    p = Toy.resolve("smoke", {"n_train": "20", "lr": "0.05", "nesterov": "false"})
    assert (p.n_train, p.batch_size, p.lr, p.nesterov) == (20, 5, 0.05, False)


def test_unknown_parameter_names_the_closest_one():
    with pytest.raises(ConfigError, match=r"Unknown parameter 'lrr'.*Did you mean lr\?"):
        Toy.resolve("book", {"lrr": "0.1"})


@pytest.mark.parametrize("name, value, message", [
    ("lr", "-0.1", r"lr must be > 0, got -0.1"),
    ("lr", "fast", r"lr expects a number, got 'fast'"),
    ("batch_size", "3.5", r"batch_size expects an integer"),
    ("batch_size", "0", r"batch_size must be >= 1"),
    ("nesterov", "maybe", r"nesterov expects true or false"),
    ("model", "vit", r"model must be one of mlp, cnn"),
    ("batch_size", "500", r"batch_size \(500\) is larger than the data \(100\)"),
])
def test_bad_values_stop_with_one_sentence(name, value, message):
    with pytest.raises(ConfigError, match=message):
        Toy.resolve("book", {name: value})


def test_unknown_preset():
    with pytest.raises(ConfigError, match="Unknown preset 'huge'; choose one of smoke, book, paper"):
        Toy.resolve("huge")


def test_python_values_are_type_checked_too():
    assert Toy(lr=1).lr == 1.0 and isinstance(Toy(lr=1).lr, float)
    with pytest.raises(ConfigError, match="batch_size expects an integer"):
        Toy(batch_size=True)
    with pytest.raises(ConfigError, match="n_train expects an integer"):
        Toy(n_train=10.0)


def test_from_namespace_and_describe():
    p = Toy.from_namespace({"lr": 0.2, "batch_size": 4, "n_train": 8, "nesterov": False, "model": "cnn",
                            "unrelated": 1})
    assert p.to_dict() == {"lr": 0.2, "batch_size": 4, "n_train": 8, "nesterov": False, "model": "cnn"}
    with pytest.raises(ConfigError, match="does not define lr"):
        Toy.from_namespace({"batch_size": 4})
    rows = {r["name"]: r for r in Toy.describe()}
    assert rows["n_train"]["default"] == 100 and rows["n_train"]["smoke"] == 10
    assert rows["n_train"]["paper"] == 1000 and rows["lr"]["help"] == "learning rate"
