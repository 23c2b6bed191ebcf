"""The Logger and Metrics of every webbugger function (Powertools, JSON logs and EMF metrics).

Powertools reads its own ``POWERTOOLS_*`` variables when these are built; no AWS call happens.
"""

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

logger = Logger(service="webbugger")
metrics = Metrics(namespace="webbugger", service="webbugger")

__all__ = ["MetricUnit", "logger", "metrics"]
