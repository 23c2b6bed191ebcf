"""The admin API's routes, one :class:`Router` per resource (links, mint, rewrite, beacons,
stats, export, erase, openapi), their request and answer models (:mod:`admin_api.models`,
:mod:`admin_api.email_models`) and this function's settings (:mod:`admin_api.config`).
``app.py`` includes the routers and maps errors to answers.

Each route parses its parameters, calls one function of :mod:`webbugger.service` and shapes the
answer. The package sits beside ``app.py`` in the function's code (Lambda's task root, which is
on ``sys.path``; the local stack loads it the same way, see ``webbugger_cli.template``).
"""
