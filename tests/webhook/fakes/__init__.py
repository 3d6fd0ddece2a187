"""Fake PayPal, Klarna and paysafecard servers (twisted.web, 127.0.0.1, port 0) speaking the documented shapes."""
