"""The provider portal: its own HTTP listener, logins and roles, and the pages of the "Payment" area.

``view`` is the contract between the server and the pages; ``pages/`` holds the pages.
"""
