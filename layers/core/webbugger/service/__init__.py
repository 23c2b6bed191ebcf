"""What the admin API and the CLI do, in one place: manage stored links (:mod:`.links`), mint
tracking URLs (:mod:`.mint`), read, export and erase beacons (:mod:`.beacons`) and read the
daily counters (:mod:`.stats`).

The admin function's routes and the CLI's local backend both call these; the CLI's deployed
backend calls the admin API. Types are reached through the registry (``webbugger.plugins``),
never by importing a plugin. Bad input raises a :class:`webbugger.errors.WebbuggerError`
subclass, which each caller turns into its own answer (an HTTP error, one line on stderr).
"""
