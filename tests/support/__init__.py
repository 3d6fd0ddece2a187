"""What tests of several parts share and that is not a fixture: peers, rigs, raw SIP, processes to start.

Fixtures live in ``conftest.py``; the modules here are plain helpers that tests import
(and some are run as ``python -m tests.support.NAME`` in a subprocess of their own).
"""
