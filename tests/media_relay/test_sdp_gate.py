"""The SDP gate: what an offer and a candidate must be before aiortc sees them."""

from __future__ import annotations

import random

import pytest
from aiortc import RTCPeerConnection
from aiortc.sdp import SessionDescription

from media_relay.sdp_gate import (
    MAX_CANDIDATES,
    MAX_SDP_BYTES,
    MAX_SDP_LINES,
    SdpRejected,
    check_candidate,
    check_offer,
)

FINGERPRINT = (
    "AE:20:DE:FA:E3:79:2F:C1:61:C1:B8:8D:72:94:86:69:"
    "A8:E9:00:97:0E:92:5F:DA:00:5E:05:DC:56:25:5B:79"
)

# A real offer from Chromium 156 as the lesson page makes it: microphone, camera and screen
# `sendonly`, one `recvonly` audio and video slot, VP8 and Opus only, max-bundle, mDNS host
# candidates (a page that has not asked for the camera hides its addresses).
CHROMIUM_OFFER = """\
v=0
o=- 3389347389447788228 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1 2 3 4
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1150837606 1 udp 2113937151 {host_a} 43202 typ host generation 0 network-cost 999
a=candidate:1139412950 1 udp 2113942271 {host_b} 45896 typ host generation 0 network-cost 999
a=ice-ufrag:d3f9
a=ice-pwd:dd/LexaMTIVAO2uAqCvoRA8l
a=ice-options:trickle
a=fingerprint:sha-256 {fingerprint}
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendonly
a=msid:- 83ec2fb7-e932-47e8-b311-57efea25707f
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=ssrc:2910894660 cname:XCGEro+ncK7TxIDJ
a=ssrc:2910894660 msid:- 83ec2fb7-e932-47e8-b311-57efea25707f
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:d3f9
a=ice-pwd:dd/LexaMTIVAO2uAqCvoRA8l
a=ice-options:trickle
a=fingerprint:sha-256 {fingerprint}
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendonly
a=msid:- e43060c4-fe13-432b-878e-f64df0b75441
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=ssrc:3984169503 cname:XCGEro+ncK7TxIDJ
a=ssrc:3984169503 msid:- e43060c4-fe13-432b-878e-f64df0b75441
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:d3f9
a=ice-pwd:dd/LexaMTIVAO2uAqCvoRA8l
a=ice-options:trickle
a=fingerprint:sha-256 {fingerprint}
a=setup:actpass
a=mid:2
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendonly
a=msid:- ab659a50-cece-49a1-8344-9fc56c138fa9
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=ssrc:3215913514 cname:XCGEro+ncK7TxIDJ
a=ssrc:3215913514 msid:- ab659a50-cece-49a1-8344-9fc56c138fa9
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:d3f9
a=ice-pwd:dd/LexaMTIVAO2uAqCvoRA8l
a=ice-options:trickle
a=fingerprint:sha-256 {fingerprint}
a=setup:actpass
a=mid:3
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:d3f9
a=ice-pwd:dd/LexaMTIVAO2uAqCvoRA8l
a=ice-options:trickle
a=fingerprint:sha-256 {fingerprint}
a=setup:actpass
a=mid:4
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
""".format(
    fingerprint=FINGERPRINT,
    host_a="65cebc34-3995-423e-a58b-7f39b5f52e4f.local",
    host_b="36d73c5b-664b-4961-a689-93c5055a6b0b.local",
).replace("\n", "\r\n")
SECTIONS = CHROMIUM_OFFER.count("m=")


def check(sdp: str, *, max_media_sections: int = SECTIONS, allow_loopback: bool = False) -> None:
    check_offer(sdp, max_media_sections=max_media_sections, allow_loopback=allow_loopback)


def rejection(sdp: str, *, max_media_sections: int = SECTIONS, allow_loopback: bool = False) -> str:
    with pytest.raises(SdpRejected) as raised:
        check(sdp, max_media_sections=max_media_sections, allow_loopback=allow_loopback)
    return raised.value.detail


def edit(old: str, new: str, *, count: int = -1) -> str:
    assert old in CHROMIUM_OFFER
    return CHROMIUM_OFFER.replace(old, new, count)


def without(prefix: str) -> str:
    lines = CHROMIUM_OFFER.split("\r\n")
    assert any(line.startswith(prefix) for line in lines)
    return "\r\n".join(line for line in lines if not line.startswith(prefix))


def test_a_chromium_offer_passes():
    check(CHROMIUM_OFFER)
    check(CHROMIUM_OFFER, allow_loopback=True)
    SessionDescription.parse(CHROMIUM_OFFER)


async def make_aiortc_offer() -> str:
    pc = RTCPeerConnection()
    try:
        for kind in ("audio", "video", "video"):
            pc.addTransceiver(kind, direction="sendonly")
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


@pytest.mark.asyncio
async def test_an_aiortc_offer_passes_when_loopback_is_allowed():
    """aiortc offers G.722, PCMU, H.264 and rtx beside Opus and VP8; offering more is fine."""
    sdp = await make_aiortc_offer()
    assert sdp.count("m=") == 5
    check(sdp, allow_loopback=True)


def test_the_offer_may_end_with_or_without_a_line_break():
    check(CHROMIUM_OFFER.rstrip("\r\n"))
    check(CHROMIUM_OFFER.replace("\r\n", "\n"))


def test_an_offer_over_the_size_cap_is_refused():
    padding = "a=x-pad:" + "p" * 1000 + "\r\n"
    sdp = CHROMIUM_OFFER + padding * ((MAX_SDP_BYTES - len(CHROMIUM_OFFER)) // len(padding) + 1)
    assert len(sdp) > MAX_SDP_BYTES
    assert rejection(sdp) == f"The offer is larger than {MAX_SDP_BYTES // 1024} KiB."


def test_an_offer_under_the_size_cap_in_many_small_lines_is_refused_for_its_lines():
    sdp = CHROMIUM_OFFER + "a=x\r\n" * MAX_SDP_LINES
    assert len(sdp) <= MAX_SDP_BYTES
    assert rejection(sdp) == f"The offer has more than {MAX_SDP_LINES} lines."


def test_41_media_sections_are_refused_when_the_lesson_needs_35():
    # Lean receive sections: real browser ones are ~1 KB and 41 of them pass 32 KiB.
    section = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n"
    sdp = CHROMIUM_OFFER + section * (41 - SECTIONS)
    assert sdp.count("m=") == 41
    assert (
        rejection(sdp, max_media_sections=35)
        == "The offer has 41 media sections; this lesson allows at most 35."
    )


def test_thousands_of_bare_m_lines_are_counted_and_refused():
    sdp = "v=0\r\n" + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" * 900
    assert "900 media sections" in rejection(sdp, max_media_sections=35)


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        pytest.param("", "v=0", id="empty"),
        pytest.param("\r\n", "v=0", id="a blank line"),
        pytest.param("v=1\r\n", "v=0", id="another version"),
        pytest.param(CHROMIUM_OFFER[5:], "v=0", id="no version line"),
        pytest.param(" " + CHROMIUM_OFFER, "v=0", id="leading space"),
        pytest.param(CHROMIUM_OFFER.replace("s=-", "s=\u00e9"), "ASCII", id="non-ASCII"),
        pytest.param(CHROMIUM_OFFER.replace("s=-", "s=\ud800"), "ASCII", id="lone surrogate"),
        pytest.param(CHROMIUM_OFFER.replace("s=-", "s=-\x0b"), "not an SDP line", id="VT"),
        pytest.param(CHROMIUM_OFFER.replace("s=-", "s=-\x00"), "not an SDP line", id="NUL"),
        pytest.param(CHROMIUM_OFFER.replace("s=-", "s=-\rx"), "not an SDP line", id="bare CR"),
        pytest.param(CHROMIUM_OFFER.replace("t=0 0", "t=0 0\r\n"), "Line 5", id="blank line"),
        pytest.param(CHROMIUM_OFFER.replace("t=0 0", "hello"), "Line 4", id="not a line"),
        pytest.param(CHROMIUM_OFFER.replace("t=0 0", "T=0 0"), "Line 4", id="capital type"),
        pytest.param(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", "no media", id="no media"
        ),
    ],
)
def test_text_that_is_not_an_sdp_offer_is_refused(sdp, reason):
    assert reason in rejection(sdp)


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        pytest.param(
            edit(
                "m=video 9 UDP/TLS/RTP/SAVPF 96", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel"
            ),
            "data channel",
            id="a data channel",
        ),
        pytest.param(
            edit("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=text 9 UDP/TLS/RTP/SAVPF 111"),
            "only audio and video",
            id="text",
        ),
        pytest.param(
            edit("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9 RTP/AVP 111"),
            "UDP/TLS/RTP/SAVPF",
            id="plain RTP",
        ),
        pytest.param(
            edit("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 99999 UDP/TLS/RTP/SAVPF 111"),
            "port",
            id="port over 65535",
        ),
        pytest.param(
            edit("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9 UDP/TLS/RTP/SAVPF"),
            "malformed m=",
            id="no formats",
        ),
        pytest.param(
            edit("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio  9 UDP/TLS/RTP/SAVPF 111"),
            "malformed m=",
            id="double space",
        ),
        pytest.param(
            edit("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9 UDP/TLS/RTP/SAVPF 111 x"),
            "payload type",
            id="a word as payload type",
        ),
        pytest.param(
            edit("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9 UDP/TLS/RTP/SAVPF 111 200"),
            "payload type",
            id="payload type over 127",
        ),
        pytest.param(
            edit("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9 UDP/TLS/RTP/SAVPF 111 72"),
            "payload type",
            id="payload type clashing with RTCP",
        ),
    ],
)
def test_a_media_section_that_is_not_dtls_srtp_audio_or_video_is_refused(sdp, reason):
    assert reason in rejection(sdp)


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        pytest.param(
            edit("opus/48000/2", "PCMU/8000"), "Media section 1 (audio) does not offer opus/48000/2"
        ),
        pytest.param(edit("opus/48000/2", "opus/48000/1"), "opus/48000/2", id="mono opus"),
        pytest.param(edit("opus/48000/2", "opus/48000"), "opus/48000/2", id="opus, no channels"),
        pytest.param(
            edit("VP8/90000", "H264/90000", count=1),
            "Media section 2 (video) does not offer vp8/90000",
        ),
        pytest.param(
            edit("a=rtpmap:111 opus", "a=rtpmap:112 opus", count=1),
            "a=rtpmap",
            id="rtpmap for a payload type not listed",
        ),
        pytest.param(edit("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus"), "a=rtpmap"),
        pytest.param(edit("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus/x/2"), "a=rtpmap"),
        pytest.param(edit("a=rtpmap:111 opus/48000/2", "a=rtpmap:111  opus/48000/2"), "a=rtpmap"),
    ],
)
def test_a_section_without_opus_or_vp8_is_refused(sdp, reason):
    assert reason in rejection(sdp)


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        pytest.param(edit("a=fmtp:111 ", "a=fmtp:110 "), "a=fmtp", id="fmtp of unknown codec"),
        pytest.param(edit("a=fmtp:111 ", "a=fmtp:x "), "a=fmtp", id="fmtp of a word"),
        pytest.param(edit("a=fmtp:111 minptime=10;useinbandfec=1", "a=fmtp:111"), "a=fmtp"),
        pytest.param(edit("a=rtcp-fb:111 ", "a=rtcp-fb:7 "), "a=rtcp-fb", id="rtcp-fb unknown"),
        pytest.param(edit("a=rtcp-fb:111 transport-cc", "a=rtcp-fb:111"), "a=rtcp-fb"),
        pytest.param(edit("a=extmap:1 ", "a=extmap:x "), "a=extmap", id="extmap id a word"),
        pytest.param(edit("a=extmap:1 ", "a=extmap:0 "), "a=extmap", id="extmap id 0"),
        pytest.param(edit("a=extmap:1 ", "a=extmap:1/sideways "), "a=extmap", id="extmap dir"),
        pytest.param(
            edit("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap:4 a b"),
            "a=extmap",
            id="extmap with attributes",
        ),
        pytest.param(edit("a=ssrc:2910894660 cname", "a=ssrc:x cname"), "a=ssrc"),
        pytest.param(edit("a=ssrc:2910894660 cname:", "a=ssrc:2910894660 cname"), "a=ssrc"),
        pytest.param(edit("a=ssrc:2910894660 ", "a=ssrc:99999999999 "), "a=ssrc", id="ssrc big"),
        pytest.param(edit("a=rtcp-mux", "a=ssrc-group:FID 1 x", count=1), "a=ssrc-group"),
        pytest.param(edit("a=rtcp:9 IN IP4 0.0.0.0", "a=rtcp:x"), "a=rtcp"),
        pytest.param(edit("a=rtcp:9 IN IP4 0.0.0.0", "a=rtcp:9 somewhere"), "a=rtcp"),
        pytest.param(edit("a=setup:actpass", "a=setup:holdconn"), "a=setup"),
        pytest.param(edit("a=fingerprint:sha-256 ", "a=fingerprint:sha-256  "), "a=fingerprint"),
        pytest.param(edit(f"sha-256 {FINGERPRINT}", "sha-256 AE:20"), "a=fingerprint"),
        pytest.param(edit("a=mid:0", "a=mid:" + "m" * 33), "a=mid", id="long mid"),
        pytest.param(edit("a=ice-ufrag:d3f9", "a=ice-ufrag:d3 f9"), "a=ice-ufrag"),
        pytest.param(edit("a=ice-pwd:", "a=ice-pwd:!"), "a=ice-pwd"),
        pytest.param(edit("c=IN IP4 0.0.0.0", "c=IN IP4"), "malformed c="),
        pytest.param(edit("c=IN IP4 0.0.0.0", "c=IN IPX 0.0.0.0"), "malformed c="),
        pytest.param(edit("s=-", "s=-\r\na=rtpmap:111 opus/48000/2"), "session part"),
        pytest.param(edit("a=group:BUNDLE 0 1 2 3 4", "a=group"), "a=group"),
        pytest.param(edit("a=msid-semantic: WMS", "a=msid-semantic"), "a=msid-semantic"),
        pytest.param(edit("a=fmtp:111 minptime=10;", "a=fmtp:111 minptime=;"), "a=fmtp"),
        pytest.param(edit("a=fmtp:111 minptime=10;", "a=fmtp:111 minptime=1_0;"), "a=fmtp"),
        pytest.param(edit("a=rtcp-mux", "a=max-message-size:x", count=1), "a=max-message-size"),
        pytest.param(edit("a=rtcp-mux", "a=sctp-port", count=1), "a=sctp-port"),
        pytest.param(edit("a=rtcp-mux", "a=sctpmap:5000 webrtc", count=1), "a=sctpmap"),
    ],
)
def test_an_attribute_aiortc_would_choke_on_is_refused(sdp, reason):
    assert reason in rejection(sdp)


@pytest.mark.parametrize("attribute", ["a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:"])
def test_a_section_without_ice_or_dtls_parameters_is_refused(attribute):
    assert f"has no {attribute[:-1]}" in rejection(without(attribute))


def test_ice_and_dtls_parameters_may_be_given_once_for_the_session():
    lines = [line for line in CHROMIUM_OFFER.split("\r\n") if not line.startswith("a=fingerprint")]
    lines.insert(4, f"a=fingerprint:sha-256 {FINGERPRINT}")
    check("\r\n".join(lines))


def test_a_stopped_section_needs_no_ice_parameters():
    sdp = without("a=ice-ufrag:").replace(
        "m=video 9 UDP/TLS/RTP/SAVPF 96", "m=video 0 UDP/TLS/RTP/SAVPF 96"
    )
    assert sdp.count("m=video 0 ") == 3
    # Audio sections are still live.
    assert "Media section 1 has no a=ice-ufrag" in rejection(sdp)


def candidate_line(address: str, port: int = 50000) -> str:
    return f"a=candidate:1 1 udp 2113937151 {address} {port} typ host generation 0"


def with_candidates(*lines: str) -> str:
    return edit("a=ice-ufrag:d3f9", "\r\n".join([*lines, "a=ice-ufrag:d3f9"]), count=1)


def test_20_candidates_pass_and_21_are_refused():
    lines = [candidate_line("203.0.113.7", 50000 + n) for n in range(MAX_CANDIDATES)]
    # The Chromium offer brings two of its own.
    check(with_candidates(*lines[:-2]))
    assert (
        rejection(with_candidates(*lines[:-1]))
        == "The offer has 21 candidates; the relay takes at most 20."
    )


def test_a_candidate_in_an_offer_is_held_to_the_address_policy():
    sdp = with_candidates(candidate_line("127.0.0.1"))
    assert "loopback" in rejection(sdp)
    check(sdp, allow_loopback=True)
    assert "metadata" in rejection(with_candidates(candidate_line("169.254.169.254")))
    assert "not a number from 1 to 65535" in rejection(
        with_candidates(candidate_line("203.0.113.7", 0))
    )


GOOD_CANDIDATES = [
    "candidate:1 1 udp 2113937151 203.0.113.7 50000 typ host",
    "1 1 udp 2113937151 203.0.113.7 50000 typ host",
    "a=candidate:1 1 udp 2113937151 203.0.113.7 50000 typ host",
    "candidate:1 1 UDP 2113937151 10.1.2.3 50000 typ host generation 0 network-id 1",
    "candidate:1 1 udp 2113937151 192.168.1.20 1 typ host",
    "candidate:1 1 udp 2113937151 172.16.0.1 65535 typ host",
    "candidate:1 1 udp 2113937151 100.64.0.1 50000 typ host",
    "candidate:1 1 udp 2113937151 2001:db8::7 50000 typ host",
    "candidate:1 1 udp 2113937151 fd00::2 50000 typ host",
    "candidate:1 1 udp 2113937151 65CEBC34-3995-423E-A58B-7F39B5F52E4F.local 50000 typ host",
    "candidate:1 1 tcp 1518280447 203.0.113.7 9 typ host tcptype active",
    "candidate:2 1 udp 1686052607 198.51.100.4 61000 typ srflx raddr 0.0.0.0 rport 0",
    "candidate:3 1 udp 41885439 198.51.100.9 3478 typ relay raddr 198.51.100.4 rport 61000",
    "candidate:4 1 udp 1845501695 198.51.100.4 61000 typ prflx raddr 10.0.0.2 rport 5000",
    "candidate:abc+/ 2 udp 1 203.0.113.7 50000 typ host ufrag d3f9 network-cost 999",
]


@pytest.mark.parametrize("candidate", GOOD_CANDIDATES)
def test_a_well_formed_candidate_to_a_public_or_private_address_passes(candidate):
    check_candidate(candidate, allow_loopback=False)
    check_candidate(candidate, allow_loopback=True)


BAD_ADDRESSES = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "scoped"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::fb", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 -- an address refused, not bound
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("169.254.169.254", "metadata"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("169.254.170.2", "metadata"),
    ("100.100.100.200", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("fd20:ce::254", "metadata"),
    ("metadata.google.internal", "neither"),
    ("localhost", "neither"),
    ("example.com", "neither"),
    ("printer.local", "neither"),
    ("65cebc34-3995-423e-a58b-7f39b5f52e4f.local.evil.example", "neither"),
    ("2130706433", "neither"),
    ("0x7f.1", "neither"),
    ("127.1", "neither"),
]


@pytest.mark.parametrize(("address", "reason"), BAD_ADDRESSES)
def test_a_candidate_to_an_address_the_relay_must_not_reach_is_refused(address, reason):
    with pytest.raises(SdpRejected) as raised:
        check_candidate(f"candidate:1 1 udp 1 {address} 50000 typ host", allow_loopback=False)
    assert reason in raised.value.detail
    assert address in raised.value.detail


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed_when_the_relay_runs_for_tests(address):
    check_candidate(f"candidate:1 1 udp 1 {address} 50000 typ host", allow_loopback=True)


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "fd00:ec2::254", "169.254.1.1", "fe80::1", "224.0.0.1", "::"]
)
def test_metadata_link_local_multicast_and_unspecified_stay_refused_in_tests(address):
    with pytest.raises(SdpRejected):
        check_candidate(f"candidate:1 1 udp 1 {address} 50000 typ host", allow_loopback=True)


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ("", "foundation component"),
        ("candidate:", "foundation component"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ", "foundation component"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ host generation", "name-value"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ host  generation 0", "name-value"),
        ("candidate:1  1 udp 1 203.0.113.7 50000 typ host", "foundation component"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ host\tx 1", "printable ASCII"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ host x \u00e9", "printable ASCII"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ host x " + "1" * 1024, "longer"),
        ("candidate:! 1 udp 1 203.0.113.7 50000 typ host", "foundation"),
        ("candidate:" + "f" * 33 + " 1 udp 1 203.0.113.7 50000 typ host", "foundation"),
        ("candidate:1 0 udp 1 203.0.113.7 50000 typ host", "component"),
        ("candidate:1 257 udp 1 203.0.113.7 50000 typ host", "component"),
        ("candidate:1 x udp 1 203.0.113.7 50000 typ host", "component"),
        ("candidate:1 1 sctp 1 203.0.113.7 50000 typ host", "transport"),
        ("candidate:1 1 udp 0 203.0.113.7 50000 typ host", "priority"),
        ("candidate:1 1 udp 4294967296 203.0.113.7 50000 typ host", "priority"),
        ("candidate:1 1 udp -1 203.0.113.7 50000 typ host", "priority"),
        ("candidate:1 1 udp 1_0 203.0.113.7 50000 typ host", "priority"),
        ("candidate:1 1 udp 1 203.0.113.7 0 typ host", "port"),
        ("candidate:1 1 udp 1 203.0.113.7 65536 typ host", "port"),
        ("candidate:1 1 udp 1 203.0.113.7 +5 typ host", "port"),
        ("candidate:1 1 udp 1 203.0.113.7 \u0665 typ host", "printable ASCII"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 type host", "type"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ bogus", "type"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ srflx raddr 0.0.0.0 rport x", "rport"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ srflx raddr 0.0.0.0 rport 70000", "rport"),
        ("candidate:1 1 tcp 1 203.0.113.7 9 typ host tcptype sideways", "tcptype"),
        ("candidate:1 1 udp 1 203.0.113.7 50000 typ host x=y 1", "name-value"),
    ],
)
def test_a_malformed_candidate_is_refused(candidate, reason):
    with pytest.raises(SdpRejected) as raised:
        check_candidate(candidate, allow_loopback=True)
    assert reason in raised.value.detail


def gate_accepts(sdp: str) -> bool:
    try:
        check(sdp, allow_loopback=True)
    except SdpRejected:
        return False
    return True


def test_every_truncation_of_a_real_offer_is_refused_or_parses_in_aiortc():
    """Cut the offer at every line and at random characters: SdpRejected, or aiortc copes."""
    rng = random.Random(7)  # noqa: S311 -- a repeatable fuzz, not a secret
    cuts = [index for index, char in enumerate(CHROMIUM_OFFER) if char == "\n"]
    cuts += rng.sample(range(len(CHROMIUM_OFFER)), 400)
    accepted = 0
    for cut in cuts:
        truncated = CHROMIUM_OFFER[:cut]
        if gate_accepts(truncated):
            SessionDescription.parse(truncated)
            accepted += 1
    assert 0 < accepted < len(cuts)


def mutate(rng: random.Random, lines: list[str]) -> list[str]:
    lines = list(lines)
    index = rng.randrange(1, len(lines))
    line = lines[index]
    match rng.randrange(6):
        case 0:
            del lines[index]
        case 1:
            lines.insert(index, lines[rng.randrange(len(lines))])
        case 2:
            position = rng.randrange(len(line) + 1)
            lines[index] = line[:position] + rng.choice(" :/=x0-9\t\u00e9") + line[position:]
        case 3:
            position = rng.randrange(len(line) + 1)
            lines[index] = line[:position] + line[position + 1 :]
        case 4:
            words = line.split(" ")
            rng.shuffle(words)
            lines[index] = " ".join(words)
        case _:
            lines[index] = line.split(" ")[0]
    return lines


def test_random_mutations_of_a_real_offer_are_refused_or_parse_in_aiortc():
    """Whatever passes the gate, aiortc's own parser must read without an exception."""
    rng = random.Random(8)  # noqa: S311 -- a repeatable fuzz, not a secret
    original = CHROMIUM_OFFER.split("\r\n")
    accepted = refused = 0
    for _ in range(3000):
        lines = original
        for _ in range(rng.randint(1, 3)):
            lines = mutate(rng, lines)
        sdp = "\r\n".join(lines)
        if gate_accepts(sdp):
            SessionDescription.parse(sdp)
            accepted += 1
        else:
            refused += 1
    assert accepted
    assert refused


def test_random_junk_only_ever_raises_sdp_rejected():
    rng = random.Random(9)  # noqa: S311 -- a repeatable fuzz, not a secret
    alphabet = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 a=candidate:rtpmap opus/48000/2 "
    refused = 0
    for _ in range(3000):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        with pytest.raises(SdpRejected):
            check(junk)
        with pytest.raises(SdpRejected):
            check_candidate(junk, allow_loopback=True)
        refused += 1
    assert refused == 3000
