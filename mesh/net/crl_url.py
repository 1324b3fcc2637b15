"""Which CRL locations are fetched at all, and which proxies a fetcher may use.

Plain ``http://`` only: the source document's certificate requirements name an
http:// CDP, so ``https://`` is refused with that reason (a CRL is signed, so
it needs no TLS), and ``ldap://``, ``ftp://`` and the like are refused by
scheme. A refused URL is ``crl_url_unsupported`` before any request is made.
"""

from __future__ import annotations

import functools

import httpx

from mesh.errors import FailureCode, InputError, ValidationFailed

__all__ = ["check_crl_url", "check_proxy"]


def check_crl_url(url: str) -> httpx.URL:
    """Parse a CDP URL; anything but ``http://host[:port]/...`` is ``crl_url_unsupported``.

    Every handshake asks about the same few URLs: the answer (a URL or the
    refusal) is remembered per string; parsing one is ~8 us.
    """
    answer = _checked_url(url)
    if isinstance(answer, tuple):
        raise ValidationFailed(*answer) from None
    return answer


@functools.lru_cache(maxsize=256)
def _checked_url(url: str) -> httpx.URL | tuple[FailureCode, str]:
    try:
        return _parse_crl_url(url)
    except ValidationFailed as exc:
        return exc.code, exc.detail


def _parse_crl_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValidationFailed(
            FailureCode.CRL_URL_UNSUPPORTED, f"{url!r} is not a valid URL ({exc})"
        ) from None
    scheme = parsed.scheme.lower()
    if scheme == "https":
        raise ValidationFailed(
            FailureCode.CRL_URL_UNSUPPORTED,
            f"{url}: https:// CRL locations are not fetched; the certificate requirements "
            "ask for an http:// CRL Distribution Point (a CRL is signed, so it needs no TLS)",
        )
    if scheme != "http":
        raise ValidationFailed(
            FailureCode.CRL_URL_UNSUPPORTED,
            f"{url}: {scheme or 'no'} scheme; only http:// CRL locations are fetched",
        )
    if not parsed.host:
        raise ValidationFailed(FailureCode.CRL_URL_UNSUPPORTED, f"{url}: the URL names no host")
    return parsed


def check_proxy(proxy: str) -> str:
    """``proxy`` if it is an ``http(s)://host[:port]`` URL, else one clear InputError."""
    try:
        parsed = httpx.URL(proxy)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(
            f"CRL proxy {proxy!r}",
            "is not an http:// proxy URL",
            "give it as http://HOST:PORT",
        )
    return proxy
