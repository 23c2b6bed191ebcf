"""webbugger core: tracking beacons (pixels and redirects) recorded in DynamoDB.

This package is the Lambda layer's library. It knows nothing of API Gateway: handlers turn
their events into :class:`webbugger.request.IncomingRequest` and call :mod:`webbugger.tracking`.
"""

__version__ = "0.1.0"
