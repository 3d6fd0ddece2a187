"""Helpers shared by the tests (rigs, fakes, peers); no tests here."""
