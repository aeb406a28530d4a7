"""Which IP addresses a download may connect to; IPv6 forms that carry an IPv4 are judged by that IPv4."""

from __future__ import annotations

import ipaddress

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints are refused even when their range is otherwise allowed.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known prefix (RFC 6052): DNS64 networks reach public IPv4 here
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use prefix (RFC 8215)
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible form (RFC 4291)


def carried_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, each with the name of the form that carries it."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped:
        return [("IPv4-mapped", ip.ipv4_mapped)]
    if ip.sixtofour:
        return [("6to4", ip.sixtofour)]
    if ip.teredo:
        server, client = ip.teredo
        return [("Teredo", server), ("Teredo", client)]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return [("NAT64", low32)]
    if ip in _COMPATIBLE and not (ip.is_loopback or ip.is_unspecified):
        return [("IPv4-compatible", low32)]
    return []


def _plain_reason(ip: IP) -> str | None:
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:  # 0.0.0.0 and :: reach this machine on Linux
        return "an unspecified address (it reaches this machine)"
    if ip.is_private or ip.is_reserved or ip.is_multicast or not ip.is_global:
        return "a private or reserved address"
    return None


def refused_ip(ip: IP) -> str | None:
    """Why a connection to `ip` is refused ("a loopback address"…), or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        for form, inner in carried_ipv4(ip):
            if reason := _plain_reason(inner):
                article = "an" if form.startswith("IPv4") else "a"
                return f"{article} {form} address carrying {inner}, {reason}"
        if ip.ipv4_mapped or ip in _NAT64:
            return None  # judged by the IPv4 they carry: the prefix itself is reserved only by form
    return _plain_reason(ip)
