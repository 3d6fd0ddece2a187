"""Tests of the node: config, reload, logs, metrics, faults, several nodes, and calls end to end through a whole node."""
