"""The gate a client's SDP and ICE candidates pass before aiortc sees them.

aiortc's SDP parser trusts its input (`assert`, bare `int()`, dict lookups, no size or m-line
limit) and aioice connects to any candidate address it is given. So the relay reads every offer
here first, with its own small line-by-line parser that never raises anything but SdpRejected:
size and line bounds, audio and video only over DTLS-SRTP with Opus and VP8 on offer, the
attributes aiortc converts checked for the shape it expects, and every candidate checked against
an address policy (no loopback, link-local, multicast, unspecified or cloud-metadata address) so
a client cannot point the relay's packets at the relay's own network. docs/signalling.md lists the
rules clients see.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

# A Chromium offer with only VP8 and Opus costs ~1 KB per media section: a class of 31 with
# everyone on camera needs ~65 sections.
MAX_SDP_BYTES = 128 * 1024
# A VP8-and-Opus-only browser section is ~25-60 lines; this only stops line floods.
MAX_SDP_LINES = 4096
MAX_CANDIDATES = 20
MAX_CANDIDATE_CHARS = 1024
MEDIA_PROFILE = "UDP/TLS/RTP/SAVPF"

# The codec every participant must offer for each kind: (name, clock rate, channels).
REQUIRED_CODECS = {"audio": ("opus", 48000, 2), "video": ("vp8", 90000, None)}

# Cloud instance metadata services: AWS, GCP, Azure, Oracle (169.254.169.254), AWS ECS
# (169.254.170.2), Alibaba (100.100.100.200), AWS IPv6 (fd00:ec2::254), GCP IPv6 (fd20:ce::254).
# Refused even when loopback is allowed: a client must never make the relay talk to them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "fd00:ec2::254",
        "fd20:ce::254",
    )
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
# NAT64 embeds an IPv4 address a gateway would reach on the client's behalf.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_LINE = re.compile(r"[a-z]=[\x20-\x7e]*")
_MEDIA_LINE = re.compile(r"m=([^ ]+) ([0-9]{1,5}) ([^ ]+)((?: [^ ]+)+)")
_PAYLOAD_TYPE = re.compile(r"[0-9]{1,3}")
_RTPMAP = re.compile(r"([0-9]{1,3}) ([A-Za-z0-9_.-]{1,32})/([0-9]{1,6})(?:/([0-9]{1,2}))?")
_FMTP = re.compile(r"([0-9]{1,3}) ([^ ].*)")
_FMTP_INT_PARAMETERS = frozenset(
    {"apt", "max-fr", "max-fs", "maxplaybackrate", "minptime", "stereo", "useinbandfec"}
)
_EXTMAP = re.compile(r"([0-9]{1,3})(?:/(?:sendonly|recvonly|sendrecv|inactive))? [^ ]+")
_FINGERPRINT = re.compile(r"[A-Za-z0-9-]{1,16} [0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){15,63}")
_SSRC = re.compile(r"([0-9]{1,10}) [^ :]+:.*")
_SSRC_GROUP = re.compile(r"[A-Za-z0-9-]{1,16}((?: [0-9]{1,10})+)")
_CONNECTION = re.compile(r"IN (?:IP4|IP6) [^ ]+")
_RTCP = re.compile(r"([0-9]{1,5})(?: IN (?:IP4|IP6) [^ ]+)?")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]{1,32}")
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]{1,256}")
_FOUNDATION = re.compile(r"[A-Za-z0-9+/]{1,32}")
_MDNS_NAME = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.local", re.IGNORECASE
)
_CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
_TCP_TYPES = frozenset({"active", "passive", "so"})
_GROUP_ATTRIBUTES = frozenset({"group", "msid-semantic"})
_SETUP_ROLES = frozenset({"actpass", "active", "passive"})
# aiortc asserts against these (they clash with RTCP packet types under rtcp-mux).
_FORBIDDEN_PAYLOAD_TYPES = range(72, 77)
_MAX_UINT32 = 2**32 - 1


class SdpRejected(ValueError):  # noqa: N818 -- the name the relay and its tests share
    """An offer or candidate the relay will not hand to aiortc; `detail` says why, for people."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class _Section:
    """What the gate remembers of one media section (or of the session part, kind None)."""

    number: int
    kind: str | None = None
    port: int = 0
    payload_types: frozenset[int] = frozenset()
    codecs: dict[int, tuple[str, int, int | None]] = field(default_factory=dict)
    attributes: set[str] = field(default_factory=set)

    def name(self) -> str:
        return "The session part" if self.kind is None else f"Media section {self.number}"


def check_offer(sdp: str, *, max_media_sections: int, allow_loopback: bool) -> None:
    """Raise SdpRejected unless `sdp` is an offer the relay may hand to aiortc."""
    if len(sdp) > MAX_SDP_BYTES or len(sdp.encode(errors="surrogatepass")) > MAX_SDP_BYTES:
        raise SdpRejected(f"The offer is larger than {MAX_SDP_BYTES // 1024} KiB.")
    if not sdp.isascii():
        raise SdpRejected("The offer holds characters other than plain ASCII.")
    if sdp.count("\n") >= MAX_SDP_LINES:
        raise SdpRejected(f"The offer has more than {MAX_SDP_LINES} lines.")
    lines = [line.removesuffix("\r") for line in sdp.rstrip("\r\n").split("\n")]
    if not lines or lines[0] != "v=0":
        raise SdpRejected("An offer starts with the line v=0.")
    for number, line in enumerate(lines, start=1):
        if not _LINE.fullmatch(line):
            raise SdpRejected(f"Line {number} of the offer is not an SDP line.")
    media_count = sum(line.startswith("m=") for line in lines)
    if media_count > max_media_sections:
        raise SdpRejected(
            f"The offer has {media_count} media sections; "
            f"this lesson allows at most {max_media_sections}."
        )
    if media_count == 0:
        raise SdpRejected("The offer has no media sections.")
    candidates = sum(line.startswith("a=candidate:") for line in lines)
    if candidates > MAX_CANDIDATES:
        raise SdpRejected(
            f"The offer has {candidates} candidates; the relay takes at most {MAX_CANDIDATES}."
        )

    session = _Section(number=0)
    sections: list[_Section] = []
    current = session
    for line in lines[1:]:
        if line.startswith("m="):
            current = _media_section(line, number=len(sections) + 1)
            sections.append(current)
        else:
            _check_line(line, current, allow_loopback=allow_loopback)
    for section in sections:
        _check_section(section, session)


def check_candidate(candidate: str, *, allow_loopback: bool) -> None:
    """Raise SdpRejected unless `candidate` (an a=candidate value, "candidate:" optional) is safe.

    The relay calls this for every trickled candidate, and check_offer for every candidate in an
    offer; the caller still counts a peer's trickled candidates against MAX_CANDIDATES.
    """
    if len(candidate) > MAX_CANDIDATE_CHARS:
        raise SdpRejected(f"A candidate is longer than {MAX_CANDIDATE_CHARS} characters.")
    if not (candidate.isascii() and candidate.isprintable()):
        raise SdpRejected("A candidate holds characters other than printable ASCII.")
    value = candidate.removeprefix("a=").removeprefix("candidate:")
    bits = value.split(" ")
    if len(bits) < 8 or len(bits) % 2:
        raise SdpRejected(
            "A candidate reads: foundation component transport priority address port typ type, "
            "then name-value pairs."
        )
    foundation, component, transport, priority, address, port, typ, kind = bits[:8]
    if not _FOUNDATION.fullmatch(foundation):
        raise SdpRejected("A candidate's foundation is not 1 to 32 ICE characters.")
    if not _bounded_int(component, 1, 256):
        raise SdpRejected("A candidate's component is not a number from 1 to 256.")
    if transport.lower() not in ("udp", "tcp"):
        raise SdpRejected(f"A candidate's transport is {transport!r}; only UDP and TCP are used.")
    if not _bounded_int(priority, 1, _MAX_UINT32):
        raise SdpRejected("A candidate's priority is not a number from 1 to 4294967295.")
    if not _bounded_int(port, 1, 65535):
        raise SdpRejected("A candidate's port is not a number from 1 to 65535.")
    if typ != "typ" or kind not in _CANDIDATE_TYPES:
        raise SdpRejected("A candidate's type is not host, srflx, prflx or relay.")
    _check_candidate_extensions(bits[8:])
    refusal = address_refusal(address, allow_loopback=allow_loopback)
    if refusal:
        raise SdpRejected(f"A candidate's address {address} is refused: {refusal}.")


def address_refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why the relay must not send to `address` (an IP or an mDNS name), or None if it may."""
    if _MDNS_NAME.fullmatch(address):
        # The browser's own hidden host address; aioice resolves it on the local link only.
        return None
    if "%" in address:
        # Python parses IPv6 scope ids; only link-local addresses need them and they are refused.
        return "scoped addresses are not used"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "it is neither an IP address nor a browser's mDNS name"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & _MAX_UINT32)
    if ip in METADATA_ADDRESSES:
        return "it is a cloud metadata address"
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "it is an unspecified address"
    if ip.is_multicast:
        return "it is a multicast address"
    if ip.is_link_local:
        return "it is a link-local address"
    if ip.is_loopback:
        return None if allow_loopback else "it is a loopback address"
    if ip.is_reserved:
        return "it is a reserved address"
    return None


def _bounded_int(text: str, low: int, high: int) -> bool:
    # isdigit() would accept other scripts' digits, and int() would accept "+1", " 1" or "1_0".
    return text.isascii() and text.isdigit() and len(text) <= 10 and low <= int(text) <= high


def _check_candidate_extensions(pairs: list[str]) -> None:
    for index in range(0, len(pairs), 2):
        name, value = pairs[index], pairs[index + 1]
        if not _TOKEN.fullmatch(name) or not value:
            raise SdpRejected("A candidate's extensions are not name-value pairs.")
        if name == "rport" and not _bounded_int(value, 0, 65535):
            raise SdpRejected("A candidate's rport is not a port number.")
        if name == "tcptype" and value not in _TCP_TYPES:
            raise SdpRejected("A candidate's tcptype is not active, passive or so.")


def _media_section(line: str, *, number: int) -> _Section:
    match = _MEDIA_LINE.fullmatch(line)
    if not match:
        raise SdpRejected(f"Media section {number} has a malformed m= line.")
    kind, port, profile, formats = match.groups()
    if kind == "application":
        raise SdpRejected(f"Media section {number} is a data channel; lessons use none.")
    if kind not in REQUIRED_CODECS:
        raise SdpRejected(f"Media section {number} is {kind!r}; only audio and video are allowed.")
    if profile != MEDIA_PROFILE:
        raise SdpRejected(f"Media section {number} is not {MEDIA_PROFILE} (DTLS-SRTP).")
    if int(port) > 65535:
        raise SdpRejected(f"Media section {number} has a port over 65535.")
    payload_types = set()
    for text in formats.split():
        if not _PAYLOAD_TYPE.fullmatch(text) or not _is_payload_type(int(text)):
            raise SdpRejected(f"Media section {number} lists a payload type that is not valid.")
        payload_types.add(int(text))
    return _Section(
        number=number, kind=kind, port=int(port), payload_types=frozenset(payload_types)
    )


def _is_payload_type(value: int) -> bool:
    return 0 <= value <= 127 and value not in _FORBIDDEN_PAYLOAD_TYPES


def _check_line(line: str, section: _Section, *, allow_loopback: bool) -> None:
    """Check one line after v= against the shape aiortc's parser assumes for it."""
    if line.startswith("c="):
        if not _CONNECTION.fullmatch(line[2:]):
            raise SdpRejected(f"{section.name()} has a malformed c= line.")
        return
    if not line.startswith("a="):
        return
    name, colon, value = line[2:].partition(":")
    section.attributes.add(name)
    checker = _ATTRIBUTE_CHECKS.get(name)
    if checker is None and name not in _GROUP_ATTRIBUTES:
        return
    # aiortc reads these attributes' values as strings; without a colon it gets None.
    if not colon or (checker is not None and not checker(value, section, allow_loopback)):
        raise SdpRejected(f"{section.name()} has a malformed a={name} line.")


def _check_rtpmap(value: str, section: _Section, allow_loopback: bool) -> bool:
    match = _RTPMAP.fullmatch(value)
    if not match or section.kind is None:
        return False
    payload_type, name, clock_rate, channels = match.groups()
    if int(payload_type) not in section.payload_types:
        return False
    section.codecs[int(payload_type)] = (
        name.lower(),
        int(clock_rate),
        int(channels) if channels else None,
    )
    return True


def _check_fmtp(value: str, section: _Section, allow_loopback: bool) -> bool:
    # aiortc looks the payload type up among this section's codecs and fails if it is absent,
    # and converts some parameters with a bare int().
    match = _FMTP.fullmatch(value)
    if match is None or int(match.group(1)) not in section.codecs:
        return False
    for parameter in match.group(2).split(";"):
        name, _, number = parameter.partition("=")
        if name in _FMTP_INT_PARAMETERS and not _bounded_int(number, 0, _MAX_UINT32):
            return False
    return True


def _check_rtcp_feedback(value: str, section: _Section, allow_loopback: bool) -> bool:
    target, _, feedback = value.partition(" ")
    if not feedback:
        return False
    return target == "*" or (
        _PAYLOAD_TYPE.fullmatch(target) is not None and int(target) in section.payload_types
    )


def _check_extmap(value: str, section: _Section, allow_loopback: bool) -> bool:
    match = _EXTMAP.fullmatch(value)
    return match is not None and 1 <= int(match.group(1)) <= 255


def _check_ssrc(value: str, section: _Section, allow_loopback: bool) -> bool:
    match = _SSRC.fullmatch(value)
    return match is not None and int(match.group(1)) <= _MAX_UINT32


def _check_ssrc_group(value: str, section: _Section, allow_loopback: bool) -> bool:
    match = _SSRC_GROUP.fullmatch(value)
    return match is not None and all(int(ssrc) <= _MAX_UINT32 for ssrc in match.group(1).split())


def _check_rtcp(value: str, section: _Section, allow_loopback: bool) -> bool:
    match = _RTCP.fullmatch(value)
    return match is not None and int(match.group(1)) <= 65535


def _check_candidate_line(value: str, section: _Section, allow_loopback: bool) -> bool:
    check_candidate(value, allow_loopback=allow_loopback)
    return True


_ATTRIBUTE_CHECKS: dict[str, Callable[[str, _Section, bool], bool]] = {
    "rtpmap": _check_rtpmap,
    "fmtp": _check_fmtp,
    # Data channels are refused, but aiortc converts these in any section.
    "max-message-size": lambda value, section, allow_loopback: _bounded_int(value, 0, _MAX_UINT32),
    "sctp-port": lambda value, section, allow_loopback: _bounded_int(value, 0, 65535),
    "sctpmap": lambda value, section, allow_loopback: False,
    "rtcp-fb": _check_rtcp_feedback,
    "extmap": _check_extmap,
    "ssrc": _check_ssrc,
    "ssrc-group": _check_ssrc_group,
    "rtcp": _check_rtcp,
    "candidate": _check_candidate_line,
    "fingerprint": lambda value, section, allow_loopback: bool(_FINGERPRINT.fullmatch(value)),
    "setup": lambda value, section, allow_loopback: value in _SETUP_ROLES,
    "mid": lambda value, section, allow_loopback: bool(_TOKEN.fullmatch(value)),
    "ice-ufrag": lambda value, section, allow_loopback: bool(_ICE_CHARS.fullmatch(value)),
    "ice-pwd": lambda value, section, allow_loopback: bool(_ICE_CHARS.fullmatch(value)),
}


def _check_section(section: _Section, session: _Section) -> None:
    """A live section offers the required codec and the ICE and DTLS parameters to connect."""
    if section.kind is None:
        return
    codec_name, clock_rate, channels = REQUIRED_CODECS[section.kind]
    if (codec_name, clock_rate, channels) not in section.codecs.values():
        rate = f"{codec_name}/{clock_rate}" + (f"/{channels}" if channels else "")
        raise SdpRejected(f"{section.name()} ({section.kind}) does not offer {rate}.")
    if section.port == 0:
        # A stopped transceiver: nothing will connect over it.
        return
    for attribute in ("ice-ufrag", "ice-pwd", "fingerprint"):
        if attribute not in section.attributes | session.attributes:
            raise SdpRejected(f"{section.name()} has no a={attribute}.")
