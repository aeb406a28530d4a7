"""IPv6 forms that carry an IPv4 address are judged by the IPv4 they carry (issue 14, findings 4 and 8)."""

from __future__ import annotations

import pytest

from generators.errors import UnsafeURLError
from generators.fetch import FetchPolicy, check_url

CARRIERS = [
    ("http://[2002:7f00:1::]/", "6to4", "127.0.0.1", "loopback"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4", "169.254.169.254", "cloud metadata"),
    ("http://[2002:c0a8:101::]/", "6to4", "192.168.1.1", "private"),
    ("http://[64:ff9b::7f00:1]/", "NAT64", "127.0.0.1", "loopback"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64", "169.254.169.254", "cloud metadata"),
    ("http://[64:ff9b:1::a00:1]/", "NAT64", "10.0.0.1", "private"),
    ("http://[::7f00:1]/", "IPv4-compatible", "127.0.0.1", "loopback"),
    ("http://[::ffff:a9fe:a9fe]/", "IPv4-mapped", "169.254.169.254", "cloud metadata"),
    # Teredo: client address 127.0.0.1 stored inverted (0x80fffffe), server 65.54.227.120.
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo", "127.0.0.1", "loopback"),
]


@pytest.mark.parametrize(("url", "form", "carried", "address_class"), CARRIERS)
async def test_an_ipv6_address_carrying_a_refused_ipv4_is_refused_naming_both(url, form, carried, address_class):
    with pytest.raises(UnsafeURLError) as info:
        await check_url(url, FetchPolicy())
    message = str(info.value)
    assert form in message and carried in message and address_class in message, message


@pytest.mark.parametrize(
    "url",
    [
        "http://[2002:5db8:d70e::]/",  # 6to4 of 93.184.215.14
        "http://[64:ff9b::5db8:d70e]/",  # NAT64 (DNS64 networks) of 93.184.215.14
    ],
)
async def test_an_ipv6_address_carrying_a_public_ipv4_passes(url):
    await check_url(url, FetchPolicy())


@pytest.mark.parametrize("url", ["http://[::1]/", "http://[::]/"])
async def test_loopback_and_unspecified_ipv6_are_not_read_as_ipv4_compatible(url):
    with pytest.raises(UnsafeURLError, match="loopback|unspecified"):
        await check_url(url, FetchPolicy())
