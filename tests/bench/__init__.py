"""The benchmarks' own helpers that earn a test (bench/bencode.py, rtpengine's ng wire format)."""
