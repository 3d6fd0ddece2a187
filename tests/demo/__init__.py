"""Tests of `prepaid demo` and its phones (demo/)."""
