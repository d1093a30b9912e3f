"""Metrics. Each is registered with its direction and range; see ``base.Metric``."""

from ..registry import Registry

METRICS: Registry = Registry("metric", __name__)

from .base import Metric, MetricInputs  # noqa: E402


def get_metric(name: str, **kwargs) -> Metric:
    return METRICS.get(name)(**kwargs)


__all__ = ["METRICS", "Metric", "MetricInputs", "get_metric"]
