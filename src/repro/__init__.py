"""repro: the library behind an executable book on learning rate, batch size and generalization."""

from repro.device import get_device, seed_everything
from repro.params import ConfigError, Params
from repro.store import Result, Store

__all__ = ["ConfigError", "Params", "Result", "Store", "get_device", "seed_everything"]
__version__ = "0.1.0"
