"""The node: the composition root that assembles the B2BUA, billing, media and the web side into one process.

Nothing in ``b2bua/`` outside this package imports it: the B2BUA proper is the
SIP side and call control, and this package is what wires it to a config file,
the store and the ``prepaid`` command.
"""
