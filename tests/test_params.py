import dataclasses

import pytest

from repro.chapters import CHAPTERS
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


@dataclasses.dataclass(frozen=True)
class Lists(Params):
    networks: str = param("F1,C1", "networks", items=("F1", "C1", "C2"))
    lrs: str = param("0.1,1.6", "learning rates", items=float, gt=0)
    batch_sizes: str = param("32,128", "batch sizes", items=int, ge=1, le=4096)
    label: str = param("run", "a free string")


@pytest.mark.parametrize("name, value, message", [
    ("networks", "F1,F1", "Parameter networks lists F1 more than once; give each value once."),
    ("networks", "C1,F1,C1", "Parameter networks lists C1 more than once; give each value once."),
    ("networks", "F1,F2", "Parameter networks may list only F1, C1, C2; got 'F2'."),
    ("networks", "F1,,C1", "Parameter networks needs comma-separated values such as 'F1,C1', with none empty; got "
                           "'F1,,C1'."),
    ("networks", ",".join(["F1"] * 3001), "Parameter networks is 9002 characters long; at most 200 are allowed."),
    ("lrs", "0.1,1e-1", "Parameter lrs lists 1e-1 more than once; give each value once."),
    ("lrs", "0.1,nan", "Parameter lrs expects comma-separated numbers such as '0.1,1.6'; got '0.1,nan'."),
    ("lrs", "0.1,-2", "Parameter lrs: every value must be > 0, got '-2'."),
    ("batch_sizes", "32,1.5", "Parameter batch_sizes expects comma-separated integers such as '32,128'; got "
                              "'32,1.5'."),
    ("batch_sizes", "32,8192", "Parameter batch_sizes: every value must be >= 1 and <= 4096, got '8192'."),
    ("label", "x" * 201, "Parameter label is 201 characters long; at most 200 are allowed."),
])
def test_list_parameters_refuse_repeats_unknown_entries_and_absurd_lengths(name, value, message):
    with pytest.raises(ConfigError) as err:
        Lists.resolve("book", {name: value})
    assert str(err.value) == message


def test_list_parameters_give_their_entries_converted():
    p = Lists.resolve("book", {"lrs": "0.5,2e-1", "batch_sizes": "64", "label": "x" * 200})
    assert p.listed("lrs") == [0.5, 0.2] and p.listed("batch_sizes") == [64] and p.listed("networks") == ["F1", "C1"]
    assert {r["name"]: r["type"] for r in Lists.describe()} == {"networks": "list", "lrs": "list",
                                                                 "batch_sizes": "list", "label": "str"}
    with pytest.raises(TypeError, match="items= belongs to a string parameter"):
        param(3, "not a string", items=int)


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_every_chapters_presets_resolve_to_the_defaults_updated_by_the_preset(chapter):
    """Each preset names only fields, holds values that pass the checks, and changes exactly what it names; smoke
    and paper each change something."""
    cls = CHAPTERS[chapter].params
    book = cls().to_dict()
    assert cls.resolve("book").to_dict() == book
    for preset in ("smoke", "paper"):
        changes = cls.PRESETS.get(preset, {})
        assert set(changes) <= set(book) and changes
        resolved = cls.resolve(preset).to_dict()
        assert resolved == {**book, **changes}
        assert all(type(resolved[k]) is type(book[k]) for k in book)
