"""Customer pictures (inbound MMS links) are fetched only from the SMS provider's media hosts.

A callback names each picture by URL, and whoever can post a callback chooses that URL. So a
link is fetched only when its scheme, host and port are on the list (``INBOUND_MEDIA_HOSTS``;
by default Twilio's media hosts, which CRM Text's links point at: crmtext-api.md §3.3), every
redirect is followed by hand and checked again, and the host's DNS answer is checked before
connecting: an address that is private, loopback, link-local or otherwise not public is refused
unless the host was listed by the operator (tests and on-premise setups list theirs). The
connection then goes to the address that was checked (no second DNS look-up), with the TLS name
and ``Host`` header of the listed host. A download has a total deadline and a byte cap.

A link that is not fetched raises :class:`MediaRefused`, a download that fails
:class:`MediaFailed`; the message of each is a short reason in plain words for staff.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

# Twilio's media hosts: the links CRM Text passes on are https://api.twilio.com/.../Media/ME...,
# which redirect to the stored file on s3-external-1.amazonaws.com (public media) or on
# mms.twiliocdn.com (media behind HTTP authentication). Twilio support article 223183748.
DEFAULT_INBOUND_MEDIA_HOSTS = ("api.twilio.com", "mms.twiliocdn.com", "s3-external-1.amazonaws.com")
# Public hosts that may never be reached at a private address, even when listed.
PUBLIC_HOSTS = frozenset(DEFAULT_INBOUND_MEDIA_HOSTS)

MAX_REDIRECTS = 3
MAX_PICTURES = 10  # per text: Twilio's own limit for one MMS (up to 10 media files)
MAX_PICTURE_BYTES = 5 * 1024 * 1024  # Twilio: at most 5 MB of media per message
READ_TIMEOUT = 5.0  # one network wait; the deadline is checked between them

Resolver = Callable[[str, int], list[str]]


class MediaFailed(ValueError):
    """A download from a trusted host that did not work (too slow, too big, not a picture, an
    error answer). The message is a short reason for staff; the link may be shown."""


class MediaRefused(MediaFailed):
    """A link smsbridge will not fetch at all (a host not on the list, a private address, too
    many redirects). The message is a short reason for staff; the link is not shown."""


@dataclass(frozen=True)
class MediaHost:
    """One entry of ``INBOUND_MEDIA_HOSTS``: links to exactly this scheme, host and port."""

    scheme: str  # https, or http when the entry says so (local setups)
    host: str  # lower case, ASCII (IDNA), IPv6 without brackets
    port: int

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        prefix = "" if self.scheme == "https" else "http://"
        return prefix + host + ("" if self.port == default else f":{self.port}")

    @property
    def private_ok(self) -> bool:
        """May this host be reached at a private address? Only a host the operator listed
        that is not one of the known public provider hosts."""
        return self.host not in PUBLIC_HOSTS


def parse_host(entry: str) -> MediaHost:
    """``host``, ``host:port``, ``[v6]:port`` or ``http://host:port``; ValueError names the
    problem."""
    text = entry.strip()
    if not text:
        raise ValueError("an empty entry")
    if "://" not in text:
        text = "https://" + text
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError(f"{entry!r} is not a host or host:port ({exc})") from None
    scheme = url.scheme
    rest = text.split("://", 1)[1]
    if scheme not in ("http", "https"):
        raise ValueError(f"{entry!r}: only https:// (the default) or http:// may be given")
    if url.userinfo or url.query or url.fragment or rest.rstrip("/").count("/") or "@" in rest:
        raise ValueError(f"{entry!r} must be a host or host:port only, no path or user")
    if not 0 < _port_of(url) <= 65535:
        raise ValueError(f"{entry!r} is not a host or host:port (port out of range)")
    host = _host_of(url)
    if not host or "*" in host:
        raise ValueError(f"{entry!r} must name one host exactly (no wildcards)")
    return MediaHost(scheme, host, _port_of(url))


def parse_hosts(raw: str) -> tuple[str, ...]:
    """The comma-separated entries of ``INBOUND_MEDIA_HOSTS``, each checked (ValueError)."""
    entries = tuple(part.strip() for part in raw.split(",") if part.strip())
    for entry in entries:
        parse_host(entry)
    return entries


def media_hosts(entries: Iterable[str]) -> tuple[MediaHost, ...]:
    return tuple(parse_host(entry) for entry in entries)


def _host_of(url: httpx.URL) -> str:
    host = url.raw_host.decode("ascii", "replace").lower().rstrip(".")
    return host.removeprefix("[").removesuffix("]")


def _port_of(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _where(host: str, port: int, scheme: str) -> str:
    return MediaHost(scheme, host, port).label


def check_link(link: str, hosts: Iterable[MediaHost], *, redirected: bool = False) -> MediaHost:
    """The listed host ``link`` points at, parsed the way the HTTP client will parse it; else
    :class:`MediaRefused` (``redirected``: the link came from a redirect)."""
    try:
        url = httpx.URL(link)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise MediaRefused("its address is not a valid web address") from None
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise MediaRefused("its address is not a web address")
    if url.userinfo:
        raise MediaRefused("its address carries a user name or password")
    host, port = _host_of(url), _port_of(url)
    if not 0 < port <= 65535:
        raise MediaRefused("its address is not a valid web address")
    for listed in hosts:
        if (listed.scheme, listed.host, listed.port) == (url.scheme, host, port):
            return listed
    where = _where(host, port, url.scheme)
    what = f"its link redirected to {where}" if redirected else f"its address is on {where}"
    raise MediaRefused(
        f"{what}, which is not one of the picture hosts smsbridge trusts (INBOUND_MEDIA_HOSTS)"
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (DNS)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise MediaFailed(f"{host} could not be found ({exc})") from None
    return [str(info[4][0]) for info in infos]


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def pick_address(host: MediaHost, resolver: Resolver = resolve) -> str:
    """The address to connect to: every address the host resolves to must be public, unless
    the operator listed this host (then any address will do)."""
    addresses = resolver(host.host, host.port)
    if not addresses:
        raise MediaFailed(f"{host.label} could not be found")
    if not host.private_ok:
        for address in addresses:
            if not _public(address):
                raise MediaRefused(
                    f"{host.label} resolved to a private address ({address}), which smsbridge "
                    "never fetches from"
                )
    return addresses[0]


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str  # e.g. image/jpeg (no parameters)


def fetch(
    http: httpx.Client,
    link: str,
    hosts: Iterable[MediaHost],
    *,
    deadline: float,
    max_bytes: int = MAX_PICTURE_BYTES,
    resolver: Resolver = resolve,
    clock: Callable[[], float] = time.monotonic,
) -> Fetched:
    """Download an inbound picture: only from listed hosts, every redirect re-checked (at most
    MAX_REDIRECTS), within ``deadline`` seconds in all and ``max_bytes``; else MediaRefused (not
    fetched) or MediaFailed (fetching did not work)."""
    hosts = tuple(hosts)
    end = clock() + deadline
    url = link
    for hop in range(MAX_REDIRECTS + 1):
        host = check_link(url, hosts, redirected=hop > 0)
        address = pick_address(host, resolver)
        logical = httpx.URL(url)
        try:
            pinned = logical.copy_with(host=address)
        except (httpx.InvalidURL, ValueError):
            raise MediaFailed(f"{host.label} has an address smsbridge cannot use") from None
        extensions = {"sni_hostname": host.host} if host.scheme == "https" else {}
        headers = {"Host": logical.netloc.decode("ascii"), "Accept": "image/*"}
        try:
            with http.stream(
                "GET",
                pinned,
                headers=headers,
                extensions=extensions,
                follow_redirects=False,
                timeout=httpx.Timeout(_left(end, clock, deadline)),
            ) as response:
                if response.is_redirect:
                    try:
                        url = str(logical.join(response.headers.get("location", "")))
                    except (httpx.InvalidURL, ValueError):
                        raise MediaRefused("its link redirected to an invalid address") from None
                    continue
                return _read(response, end, clock, deadline, max_bytes)
        except httpx.TimeoutException:
            raise MediaFailed(_too_slow(deadline)) from None
        except httpx.HTTPError as exc:
            raise MediaFailed(f"the picture host could not be reached ({exc})") from None
    raise MediaRefused(f"its link redirected more than {MAX_REDIRECTS} times")


def _left(end: float, clock: Callable[[], float], deadline: float) -> float:
    left = end - clock()
    if left <= 0:
        raise MediaFailed(_too_slow(deadline))
    return min(left, READ_TIMEOUT)


def _too_slow(deadline: float) -> str:
    return f"it did not arrive within {deadline:g} seconds"


def _read(
    response: httpx.Response,
    end: float,
    clock: Callable[[], float],
    deadline: float,
    max_bytes: int,
) -> Fetched:
    if response.status_code != 200:
        raise MediaFailed(f"the picture host answered {response.status_code}")
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not kind.startswith("image/"):
        raise MediaFailed(f"it is not a picture ({kind or 'no type given'})")
    mib = 1024 * 1024
    too_big = "it is larger than " + (
        f"{max_bytes // mib} MB" if max_bytes >= mib else f"{max_bytes:,} bytes"
    )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise MediaFailed(too_big)
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise MediaFailed(too_big)
        chunks.append(chunk)
        _left(end, clock, deadline)
    return Fetched(b"".join(chunks), kind)
