"""The fleet: every nginx that checks links keeps its keys and revocations in step with the app.

:mod:`signing.fleet.protocol` holds what the app and the agents agree on (the only part an app
server imports); :mod:`signing.fleet.agent` is the agent beside each nginx, the one module of
this package with network I/O, subprocesses and signals (``python -m signing sync-keys``).
"""
