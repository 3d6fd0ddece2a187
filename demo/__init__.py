"""``prepaid demo``: the whole system on a temporary store, one scripted call, and what it heard.

Not part of the product's import path: the node's ``prepaid demo`` command
imports it on demand, and it needs numpy (the ``demo`` extra).

- :mod:`demo.scenario`: the demo config, the node and the two phones, the scripted call.
- :mod:`demo.phone`: a scripted SIP user agent with real RTP that records what it hears
  (the demo's carrier and agent, and a peer for the end-to-end tests).
- :mod:`demo.web`: a PayPal that signs its webhook, for the mid-call top-up.
- :mod:`demo.report`: the call's timeline and its verdict.
"""
