"""The benchmark runner: preparation -> generation -> defense -> practical settings -> evaluation."""

from .config import BenchConfig, load_config
from .runner import run

__all__ = ["BenchConfig", "load_config", "run"]
