"""The web side of prepaid: the top-up page, payment provider hooks, the balance API."""

from .server import build_site, listen
from .settings import MerchantAccount, PageProfile, ProviderUrls, WebSettings

__all__ = ["build_site", "listen", "MerchantAccount", "PageProfile", "ProviderUrls", "WebSettings"]
