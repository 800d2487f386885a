"""Chapter parameters: flat, typed, range-checked dataclasses with presets.

Every chapter has one `Params` subclass. Its field defaults are the `book` preset, the other presets override
some of them, and a user overrides any of them by name. Validation happens here, before any training, so a
bad value stops the run with one sentence that says what to do.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from typing import Any, ClassVar, Self

PRESET_NAMES = ("smoke", "book", "paper")


class ConfigError(ValueError):
    """A bad parameter or preset; the message is one sentence that says how to fix it."""


def param(default: Any, help: str, *, gt: float | None = None, ge: float | None = None,
          le: float | None = None, lt: float | None = None, choices: tuple | None = None,
          items: tuple | type | None = None) -> Any:
    """A chapter parameter with its one-line help and its valid range.

    `items` makes a string parameter a comma-separated list: a tuple of the values it may list (each at most
    once), or `int` or `float` for a list of numbers, each within the bounds. `Params.listed(name)` gives the
    list."""
    bounds = {"gt": gt, "ge": ge, "le": le, "lt": lt}
    if items is not None and not isinstance(default, str):
        raise TypeError("items= belongs to a string parameter, a comma-separated list")
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "items": items,
                                                        **{k: v for k, v in bounds.items() if v is not None}})


_RANGE_TEXT = {"gt": ">", "ge": ">=", "le": "<=", "lt": "<"}
_RANGE_OK = {"gt": lambda v, b: v > b, "ge": lambda v, b: v >= b,
             "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}
_TYPE_WORD = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
# Command-line numbers are plain ASCII decimals: Python's int() and float() would also take '1_000', Arabic-Indic
# digits, 'nan' and 'inf', none of which a user means as a learning rate or a batch size.
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# Every integer parameter is a size, a count or a seed: beyond 32 bits it is a typo, and torch and NumPy would fail
# on it deep inside a run.
INT_MAX = 2**31 - 1
# String parameters are choices or comma-separated lists; nothing else may reach the notebook's source.
_STR_TEXT = re.compile(r"[A-Za-z0-9_.,+\-]*")
_STR_ALLOWED = "letters, digits and the characters , . _ + -"
# A longer string is a slip of the keyboard or of a script (a list pasted thousands of times); every string
# parameter stops there, list or not.
STR_MAX = 200


def _show(value: Any) -> str:
    """The value as the user typed it, cut short so that the message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}...{text[-6:]}"


def parse_number(text: str, typ: type[int] | type[float]) -> int | float:
    """A number typed on the command line: a plain ASCII decimal, finite, an integer within +-INT_MAX. Raises
    ValueError with the end of a sentence that says what is expected ("must be a finite number")."""
    text = text.strip()
    if not (_INT_TEXT if typ is int else _FLOAT_TEXT).fullmatch(text):
        if typ is float and text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ValueError("must be a finite number")
        raise ValueError(f"expects {_TYPE_WORD[typ]}")
    if typ is int and len(text.lstrip("+-")) > 12:  # int() refuses thousands of digits with its own error
        raise ValueError(f"must lie within +-{INT_MAX}")
    return _check_number(typ(text))


def _check_number(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if isinstance(value, int) and abs(value) > INT_MAX:
        raise ValueError(f"must lie within +-{INT_MAX}")
    return value


def bounds_text(rules: dict[str, Any]) -> str:
    """'> 0 and <= 1' for the bounds among `rules` (the keys gt, ge, le, lt)."""
    return " and ".join(f"{text} {rules[rule]}" for rule, text in _RANGE_TEXT.items() if rule in rules)


def out_of_bounds(value: float, rules: dict[str, Any]) -> bool:
    return any(rule in rules and not _RANGE_OK[rule](value, rules[rule]) for rule in _RANGE_TEXT)


def _coerce(name: str, typ: type, value: Any) -> Any:
    """Convert a value (a Python object or a command-line string) to the field's type, or say why not."""
    wrong = ConfigError(f"Parameter {name} expects {_TYPE_WORD[typ]}, got {_show(value)}.")
    try:
        if isinstance(value, str) and typ is not str:
            text = value.strip()
            if typ is bool:
                if text.lower() in ("true", "1", "yes"):
                    return True
                if text.lower() in ("false", "0", "no"):
                    return False
                raise wrong
            return parse_number(text, typ)
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise wrong
        if typ in (int, float):
            return _check_number(value)
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"Parameter {name} {err}, got {_show(value)}.") from None
    if typ is not str:
        return value
    if len(value) > STR_MAX:
        raise ConfigError(f"Parameter {name} is {len(value)} characters long; at most {STR_MAX} are allowed.")
    if not _STR_TEXT.fullmatch(value):
        raise ConfigError(f"Parameter {name} may only hold {_STR_ALLOWED}; got {_show(value)}.")
    return value


def _split_items(name: str, text: str, items: tuple | type, rules: dict[str, Any], example: str) -> list:
    """The entries of a comma-separated list parameter, each converted and checked, none repeated."""
    entries = [e.strip() for e in text.split(",")]
    if any(e == "" for e in entries):
        raise ConfigError(f"Parameter {name} needs comma-separated values such as {example!r}, with none empty; "
                          f"got {_show(text)}.")
    values = []
    for entry in entries:
        if isinstance(items, tuple):
            if entry not in items:
                raise ConfigError(f"Parameter {name} may list only {', '.join(map(str, items))}; got {_show(entry)}.")
            value = entry
        else:
            try:
                value = parse_number(entry, items)
            except ValueError:
                kind = "integers" if items is int else "numbers"
                raise ConfigError(f"Parameter {name} expects comma-separated {kind} such as {example!r}; got "
                                  f"{_show(text)}.") from None
            if out_of_bounds(value, rules):
                raise ConfigError(f"Parameter {name}: every value must be {bounds_text(rules)}, got {_show(entry)}.")
        if value in values:
            raise ConfigError(f"Parameter {name} lists {entry} more than once; give each value once.")
        values.append(value)
    return values


@dataclasses.dataclass(frozen=True)
class Params:
    """Base class of a chapter's parameters. Subclasses set PRESETS and may add cross-field checks in check()."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _coerce(f.name, hints[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ConfigError(f"Parameter {f.name} must be one of {', '.join(map(str, choices))}; "
                                  f"got {_show(value)}.")
            if f.metadata.get("items") is not None:
                _split_items(f.name, value, f.metadata["items"], f.metadata, f.default)
                continue  # the bounds are each entry's
            for rule, text in _RANGE_TEXT.items():
                if rule in f.metadata and not _RANGE_OK[rule](value, f.metadata[rule]):
                    raise ConfigError(f"Parameter {f.name} must be {text} {f.metadata[rule]}, got {_show(value)}.")
        self.check()

    def check(self) -> None:
        """Cross-field constraints; raise ConfigError with one clear sentence."""

    def listed(self, name: str) -> list:
        """The entries of the list parameter `name` (declared with items=), converted: numbers or choices."""
        f = next(f for f in dataclasses.fields(self) if f.name == name)
        return _split_items(name, getattr(self, name), f.metadata["items"], f.metadata, f.default)

    def datasets(self) -> list[tuple[str, str]]:
        """The (dataset, split) pairs these parameters read, so that the runner can check them before the run."""
        return []

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """One row per parameter: name, type, book default, other presets' values, help."""
        hints = typing.get_type_hints(cls)
        rows = []
        for f in dataclasses.fields(cls):
            items = f.metadata.get("items")
            kind = "list" if items is not None else hints[f.name].__name__
            row = {"name": f.name, "type": kind, "default": f.default}
            for preset in PRESET_NAMES:
                if preset != "book":
                    row[preset] = cls.PRESETS.get(preset, {}).get(f.name, f.default)
            row["help"] = f.metadata["help"]
            rows.append(row)
        return rows

    @classmethod
    def resolve(cls, preset: str = "book", overrides: dict[str, Any] | None = None) -> Self:
        """Defaults, then the preset's values, then the user's overrides (strings from the command line or
        Python values), validated."""
        if preset not in PRESET_NAMES:
            raise ConfigError(f"Unknown preset {_show(preset)}; choose one of {', '.join(PRESET_NAMES)}.")
        overrides = dict(overrides or {})
        known = cls.names()
        for name in overrides:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" Did you mean {close[0]}?" if close else ""
                raise ConfigError(f"Unknown parameter {_show(name)} for {cls.__qualname__};{hint} "
                                  f"known parameters: {', '.join(known)}.")
        return cls(**{**cls.PRESETS.get(preset, {}), **overrides})

    @classmethod
    def from_namespace(cls, namespace: dict[str, Any]) -> Self:
        """Build from a notebook's globals after papermill injected the parameters."""
        missing = [n for n in cls.names() if n not in namespace]
        if missing:
            raise ConfigError(f"The parameters cell does not define {', '.join(missing)}.")
        return cls(**{n: namespace[n] for n in cls.names()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)
