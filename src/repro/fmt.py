"""The book's one number format. No dependencies: compute, verdicts, tables and prose all format through here."""

from __future__ import annotations

import math


def number(value, digits: int = 3) -> str:
    """A number to `digits` significant figures: 0.00123, 0.123, 12.3, 1,230; integers as they are; scientific
    notation only below 0.001 or from a million on; NaN (not measured, not reported) as a dash."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if hasattr(value, "item") and not isinstance(value, int | float):  # a NumPy or torch scalar
        value = value.item()
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6):
        return f"{int(value):,}"
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if not isinstance(value, float) or not math.isfinite(value):
        return str(value)
    if value != 0 and not 1e-3 <= abs(value) < 1e6:
        return f"{value:.{digits - 1}e}"
    rounded = float(f"{value:.{digits}g}")
    if rounded == 0:
        return "0"
    return f"{rounded:,.{max(digits - 1 - math.floor(math.log10(abs(rounded))), 0)}f}"


def pm(mean, spread, digits: int = 3) -> str:
    """`mean ± spread` (a seed spread or an interval's half width), each in the book's format."""
    return f"{number(mean, digits)} ± {number(spread, digits)}"


def signed(value, digits: int = 3) -> str:
    """A difference with its sign always shown: +0.0123, −0.0456 (a true minus sign)."""
    text = number(value, digits)
    if text in ("–", "0") or text.startswith("-"):
        return text.replace("-", "−", 1)
    return f"+{text}"


def percent(fraction, digits: int = 3) -> str:
    """A fraction in [0, 1] as a percentage: 0.978 -> 97.8%."""
    if isinstance(fraction, float) and math.isnan(fraction):
        return "–"
    return f"{number(100 * float(fraction), digits)}%"


def ratio(value, digits: int = 3) -> str:
    """A multiplicative factor: 3.15×."""
    return f"{number(value, digits)}×"
