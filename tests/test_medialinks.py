"""The media-link rules (bridge/medialinks.py): INBOUND_MEDIA_HOSTS entries, which links may be
fetched, which addresses may be connected to, redirect chains; plus a bounded fuzz run."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.config import Config, ConfigError
from bridge.medialinks import (
    DEFAULT_INBOUND_MEDIA_HOSTS,
    MAX_REDIRECTS,
    MediaFailed,
    MediaHost,
    MediaRefused,
    check_link,
    fetch,
    media_hosts,
    parse_host,
    pick_address,
)
from tests.test_config import GOOD

TWILIO = media_hosts(DEFAULT_INBOUND_MEDIA_HOSTS)
MEDIA = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"


# --- INBOUND_MEDIA_HOSTS ------------------------------------------------------------------------


def test_default_is_twilios_media_hosts_over_https() -> None:
    config = Config.from_env(GOOD)
    assert config.inbound_media_hosts == (
        "api.twilio.com",
        "mms.twiliocdn.com",
        "s3-external-1.amazonaws.com",
    )
    assert {(h.scheme, h.port) for h in media_hosts(config.inbound_media_hosts)} == {("https", 443)}


def test_entries_are_hosts_with_optional_port_and_http_only_when_written() -> None:
    config = Config.from_env(
        {**GOOD, "INBOUND_MEDIA_HOSTS": " media.example.com, 127.0.0.1:8080 ,http://[::1]:81"}
    )
    assert media_hosts(config.inbound_media_hosts) == (
        MediaHost("https", "media.example.com", 443),
        MediaHost("https", "127.0.0.1", 8080),
        MediaHost("http", "::1", 81),
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ftp://media.example.com", "'ftp://media.example.com': only https:// (the default)"),
        ("media.example.com/path", "'media.example.com/path' must be a host or host:port only"),
        ("user@media.example.com", "'user@media.example.com' must be a host or host:port only"),
        ("*.twilio.com", "'*.twilio.com' must name one host exactly (no wildcards)"),
        ("media.example.com:99999", "'media.example.com:99999' is not a host or host:port"),
    ],
)
def test_bad_entries_stop_start_up_with_the_reason(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**GOOD, "INBOUND_MEDIA_HOSTS": value})
    [message] = [p for p in caught.value.problems if p.startswith("INBOUND_MEDIA_HOSTS")]
    assert message.startswith(f"INBOUND_MEDIA_HOSTS: {problem}")


# --- which links ----------------------------------------------------------------------------------


def test_twilio_media_link_is_allowed() -> None:
    assert check_link(MEDIA, TWILIO) == MediaHost("https", "api.twilio.com", 443)
    assert check_link("https://API.Twilio.com./x", TWILIO).host == "api.twilio.com"


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        (
            "http://api.twilio.com/x",  # https only by default
            "its address is on http://api.twilio.com, which is not one of the picture hosts "
            "smsbridge trusts (INBOUND_MEDIA_HOSTS)",
        ),
        (
            "https://api.twilio.com:8443/x",
            "its address is on api.twilio.com:8443, which is not one of the picture hosts "
            "smsbridge trusts (INBOUND_MEDIA_HOSTS)",
        ),
        (
            "https://api.twilio.com.evil.example/x",
            "its address is on api.twilio.com.evil.example, which is not one of the picture "
            "hosts smsbridge trusts (INBOUND_MEDIA_HOSTS)",
        ),
        ("https://api.twilio.com@169.254.169.254/x", "its address carries a user name or password"),
        ("file:///etc/passwd", "its address is not a web address"),
        ("https://[::1/x", "its address is not a valid web address"),
    ],
)
def test_other_links_are_refused_with_a_plain_reason(link: str, reason: str) -> None:
    with pytest.raises(MediaRefused) as caught:
        check_link(link, TWILIO)
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_a_public_host_resolving_to_a_non_public_address_is_refused(address: str) -> None:
    twilio = MediaHost("https", "api.twilio.com", 443)
    with pytest.raises(MediaRefused) as caught:
        pick_address(twilio, lambda host, port: ["54.1.2.3", address])
    assert str(caught.value) == (
        f"api.twilio.com resolved to a private address ({address}), which smsbridge never "
        "fetches from"
    )


def test_a_host_the_operator_listed_may_be_private() -> None:
    on_premise = parse_host("media.store.internal")
    assert pick_address(on_premise, lambda host, port: ["10.0.0.5"]) == "10.0.0.5"
    assert pick_address(TWILIO[0], lambda host, port: ["54.1.2.3"]) == "54.1.2.3"


# --- redirect chains over real HTTP ---------------------------------------------------------------


class Chain:
    """127.0.0.1 servers: ``/hop/N`` redirects to ``/hop/N-1`` on the next server; ``/hop/0``
    answers a picture."""

    def __init__(self, count: int) -> None:
        self.servers: list[ThreadingHTTPServer] = []
        self.hits: list[str] = []
        chain = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                chain.hits.append(f"{self.server.server_address[1]}{self.path}")
                n = int(self.path.rsplit("/", 1)[1])
                if n == 0:
                    self.send_response(200)
                    self.send_header("Content-Type", "image/gif")
                    self.send_header("Content-Length", "6")
                    self.end_headers()
                    self.wfile.write(b"GIF89a")
                    return
                index = chain.servers.index(self.server)  # type: ignore[arg-type]
                target = chain.origins[(index + 1) % len(chain.origins)]
                self.send_response(307)
                self.send_header("Location", f"{target}/hop/{n - 1}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        for _ in range(count):
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
        self.origins = [f"http://127.0.0.1:{s.server_address[1]}" for s in self.servers]

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def chain() -> Iterator[Chain]:
    c = Chain(2)
    yield c
    c.stop()


def test_redirects_between_listed_hosts_are_followed_up_to_the_limit(chain: Chain) -> None:
    hosts = media_hosts(chain.origins)
    with httpx.Client() as http:
        got = fetch(http, f"{chain.origins[0]}/hop/{MAX_REDIRECTS}", hosts, deadline=10)
        assert (got.data, got.content_type) == (b"GIF89a", "image/gif")
        chain.hits.clear()
        with pytest.raises(MediaRefused) as caught:
            fetch(http, f"{chain.origins[0]}/hop/{MAX_REDIRECTS + 1}", hosts, deadline=10)
    assert str(caught.value) == "its link redirected more than 3 times"
    assert len(chain.hits) == MAX_REDIRECTS + 1  # the last redirect was not followed


def test_the_byte_cap_stops_a_download(chain: Chain) -> None:
    with httpx.Client() as http, pytest.raises(MediaFailed) as caught:
        fetch(
            http, f"{chain.origins[0]}/hop/0", media_hosts(chain.origins), deadline=10, max_bytes=5
        )
    assert str(caught.value) == "it is larger than 5 bytes"


def test_https_goes_to_the_checked_address_and_checks_the_listed_name(tmp_path: Path) -> None:
    """The connection is pinned to the address that was checked (no second DNS look-up), and
    TLS still verifies the certificate against the listed host's name (SNI)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=media.test",
         "-addext", "subjectAltName=DNS:media.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"png")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    to_here = lambda host, port: ["127.0.0.1"]  # noqa: E731  # DNS: media.test is here
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as http:
            got = fetch(
                http, f"https://media.test:{port}/p", [parse_host(f"media.test:{port}")],
                deadline=10, resolver=to_here,
            )  # fmt: skip
            assert (got.data, hosts) == (b"png", [f"media.test:{port}"])
            with pytest.raises(MediaFailed) as caught:
                fetch(
                    http, f"https://other.test:{port}/p", [parse_host(f"other.test:{port}")],
                    deadline=10, resolver=to_here,
                )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert "certificate is not valid for 'other.test'" in str(caught.value)
    assert len(hosts) == 1


# --- fuzz ---------------------------------------------------------------------------------------

HOSTS = (*TWILIO, parse_host("http://127.0.0.1:8080"), parse_host("[::1]:8443"))
PIECES = st.sampled_from(
    [
        "http://", "https://", "HTTPS://", "//", "api.twilio.com", "mms.twiliocdn.com",
        "127.0.0.1", "[::1]", "localhost", "169.254.169.254", "@", ":", ":8080", ":443",
        ":0", ":65536", "/", "\\", "?", "#", "%2e", "%00", ".", "..", "evil.example", " ",
        "\t", "\n", "ſ", "ａ", "xn--", "user:pw@", "[", "]", "0x7f.1", "2130706433",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=8).map("".join) | st.text(max_size=60))
def test_fuzz_link_checks_only_allow_exact_listed_origins(link: str) -> None:
    """Whatever the link: check_link either refuses it with MediaRefused, or names a listed
    host that is exactly the scheme, host and port the HTTP client would connect to."""
    try:
        host = check_link(link, HOSTS)
    except MediaRefused as exc:
        assert str(exc)
        return
    url = httpx.URL(link)
    assert host in HOSTS
    assert url.scheme == host.scheme
    assert url.raw_host.decode().lower().strip("[]").rstrip(".") == host.host
    assert (url.port or {"http": 80, "https": 443}[url.scheme]) == host.port
    assert not url.userinfo


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_host_entries_parse_or_say_why(entry: str) -> None:
    try:
        host = parse_host(entry)
    except ValueError as exc:
        assert str(exc)
        return
    assert host.scheme in ("http", "https") and 0 <= host.port <= 65535
    assert check_link(f"{host.scheme}://{host.label.split('://')[-1]}/x", [host]) == host


LOCATIONS = st.sampled_from(
    [
        "/x", "", "//evil.example/x", "http://10.0.0.1/", "https://api.twilio.com@x/",
        "https://mms.twiliocdn.com/f", "https://s3-external-1.amazonaws.com/b/k",
        "http://api.twilio.com/x", "https://api.twilio.com:8443/", "https://[::1]/",
        "HTTPS://MMS.TWILIOCDN.COM./y", "https://169.254.169.254/latest/meta-data",
        "http://[::1", "https://%zz/", "https://mms.twiliocdn.com:99999/", "\\evil.example",
    ]
)  # fmt: skip
TWILIO_NAMES = {"api.twilio.com", "mms.twiliocdn.com", "s3-external-1.amazonaws.com"}


@settings(max_examples=300, deadline=None)
@given(st.lists(LOCATIONS, max_size=6))
def test_fuzz_redirect_chains_never_reach_an_unlisted_host(locations: list[str]) -> None:
    """A provider link answered by a chain of redirects (a mock transport: no network). Every
    request goes to the checked address with a listed host's name; a chain longer than
    MAX_REDIRECTS or through an unlisted host ends in MediaRefused; only a clean chain
    returns the picture."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) <= len(locations):
            return httpx.Response(302, headers={"Location": locations[len(requests) - 1]})
        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=b"png")

    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        try:
            got = fetch(http, MEDIA, TWILIO, deadline=5, resolver=lambda h, p: ["54.1.2.3"])
        except MediaFailed:  # refused, or a redirect httpx itself cannot read
            got = None
    for request in requests:
        assert request.url.host == "54.1.2.3"  # pinned: no second DNS look-up
        name = request.headers["host"].lower().rstrip(".")
        assert name in TWILIO_NAMES
        assert request.extensions["sni_hostname"] == name
    assert len(requests) <= MAX_REDIRECTS + 1
    if got is not None:
        assert got.data == b"png" and len(requests) == len(locations) + 1
