"""The Logger and Metrics of every webbugger function (Powertools, JSON logs and EMF metrics).

Powertools reads its own ``POWERTOOLS_*`` variables when these are built; no AWS call happens.
Log records are ASCII JSON: a visitor's text (a spilled beacon's User-Agent, a refused path)
shows C1 controls and bidi overrides as ``\\u009b``/``\\u202e``, never raw, in a terminal that
tails the log (``make run``, ``aws logs tail``); Powertools' default writes them as they are.
"""

import json
from functools import partial

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

logger = Logger(service="webbugger", json_serializer=partial(json.dumps, default=str, separators=(",", ":")))
metrics = Metrics(namespace="webbugger", service="webbugger")

__all__ = ["MetricUnit", "logger", "metrics"]
