// Media on the page: the local camera, microphone and screen (LocalMedia), and the one peer
// connection with the relay (PeerLink), always the offerer, as docs/signalling.md asks: sendonly
// transceivers made up front (switching a source is replaceTrack, never a new offer) and as many
// recvonly slots as the relay asks for.
//
// Simulcast without rid: aiortc's SDP knows no `a=simulcast`, so the camera goes out twice, on
// the `camera` transceiver at full size and on `camera-low` scaled down to a thumbnail. The relay
// sends each viewer the layer its tile and its bandwidth call for.

export const SOURCES = ["mic", "camera", "screen"];
const ICE_WAIT_MS = 1000;
// The low layer: thumbnail size, a small share of a pupil's uplink.
const LOW_WIDTH = 320;
const LOW_ENCODING = { scaleResolutionDownBy: 2, maxBitrate: 150_000, maxFramerate: 15 };
// Where Chromium's send estimate starts on a new connection, kbit/s: a camera's two layers. Its
// default (300) grows only ~8 % a second with REMB feedback alone (aiortc has no transport-wide
// congestion control), so the full-size layer took ~20 s to reach full size after a join.
const START_KBPS = 1000;
// Each send transceiver, in the order they are made, with its kind and the local track it carries.
const SENDERS = [
  { name: "mic", kind: "audio", source: "mic" },
  { name: "camera", kind: "video", source: "camera" },
  { name: "screen", kind: "video", source: "screen" },
  { name: "camera-low", kind: "video", source: "camera", sendEncodings: [LOW_ENCODING] },
];

export class LocalMedia {
  constructor({ onChange }) {
    this.tracks = { mic: null, camera: null, screen: null };
    this.deviceIds = { audioinput: "", videoinput: "" };
    this.onChange = onChange;
  }

  constraints(source) {
    if (source === "mic") {
      const id = this.deviceIds.audioinput;
      return { audio: id ? { deviceId: { exact: id } } : true };
    }
    const id = this.deviceIds.videoinput;
    return { video: id ? { deviceId: { exact: id } } : true };
  }

  // Start the microphone and camera together: one permission prompt, one device start.
  async startPreview({ mic, camera }) {
    if (!mic && !camera) return;
    const stream = await navigator.mediaDevices.getUserMedia({
      ...(mic ? this.constraints("mic") : {}),
      ...(camera ? this.constraints("camera") : {}),
    });
    this.adopt("mic", stream.getAudioTracks()[0] ?? null);
    this.adopt("camera", stream.getVideoTracks()[0] ?? null);
  }

  async start(source) {
    if (this.tracks[source]) return this.tracks[source];
    const stream =
      source === "screen"
        ? await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })
        : await navigator.mediaDevices.getUserMedia(this.constraints(source));
    const track = source === "mic" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    this.adopt(source, track);
    return track;
  }

  adopt(source, track) {
    if (!track) return;
    this.tracks[source]?.stop();
    this.tracks[source] = track;
    // The browser's own "Stop sharing" button, or an unplugged camera, ends the track.
    track.addEventListener("ended", () => {
      if (this.tracks[source] === track) this.stop(source);
    });
    this.onChange(source, track);
  }

  // Stopping the track (not just disabling it) turns the camera light off.
  stop(source) {
    const track = this.tracks[source];
    if (!track) return;
    this.tracks[source] = null;
    track.stop();
    this.onChange(source, null);
  }

  // A new device for a running source: start it, then swap it in (the caller replaces tracks).
  async switchDevice(kind, deviceId) {
    this.deviceIds[kind] = deviceId;
    const source = kind === "audioinput" ? "mic" : "camera";
    if (!this.tracks[source]) return;
    const stream = await navigator.mediaDevices.getUserMedia(this.constraints(source));
    this.adopt(source, source === "mic" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0]);
  }

  stopAll() {
    for (const source of SOURCES) this.stop(source);
  }
}

// Offer only VP8 and Opus (the relay negotiates nothing else), which also keeps the offer small
// enough for the relay's SDP size limit with many receive slots.
function preferCodecs(transceiver, kind) {
  if (!("setCodecPreferences" in transceiver)) return;
  const wanted = kind === "audio" ? /^audio\/opus$/i : /^video\/(vp8|rtx)$/i;
  const capabilities = RTCRtpReceiver.getCapabilities(kind);
  const codecs = capabilities ? capabilities.codecs.filter((c) => wanted.test(c.mimeType)) : [];
  try {
    if (codecs.length) transceiver.setCodecPreferences(codecs);
  } catch {
    // An older browser refusing the list still offers VP8 and Opus among others.
  }
}

// Scale the low layer so that it is at most LOW_WIDTH wide whatever the camera gives (640x480
// becomes 320x240, 1280x720 becomes 320x180).
async function scaleToThumbnail(sender, track) {
  const width = track.getSettings().width;
  if (!width) return;
  const parameters = sender.getParameters();
  const encoding = parameters.encodings?.[0];
  const scale = Math.max(1, width / LOW_WIDTH);
  if (!encoding || encoding.scaleResolutionDownBy === scale) return;
  encoding.scaleResolutionDownBy = scale;
  try {
    await sender.setParameters(parameters);
  } catch {
    // The layer keeps its previous scale: still smaller than the full one, only not exactly 320.
  }
}

// The relay's answer with Chromium's start-bitrate hint on VP8 (other browsers ignore it): added to
// the codec's fmtp line, or as one after its rtpmap line when it has none.
export function withStartBitrate(sdp, kbps = START_KBPS) {
  const param = `x-google-start-bitrate=${kbps}`;
  const lines = sdp.split("\r\n");
  const vp8 = new Set();
  for (const line of lines) {
    const rtpmap = /^a=rtpmap:(\d+) VP8\/90000/i.exec(line);
    if (rtpmap) vp8.add(rtpmap[1]);
  }
  const withFmtp = new Set();
  for (const line of lines) {
    const fmtp = /^a=fmtp:(\d+) /.exec(line);
    if (fmtp && vp8.has(fmtp[1])) withFmtp.add(fmtp[1]);
  }
  const out = [];
  for (const line of lines) {
    const fmtp = /^a=fmtp:(\d+) /.exec(line);
    const hinted = fmtp && vp8.has(fmtp[1]) && !line.includes("x-google-start-bitrate");
    out.push(hinted ? `${line};${param}` : line);
    const rtpmap = /^a=rtpmap:(\d+) VP8\/90000/i.exec(line);
    if (rtpmap && !withFmtp.has(rtpmap[1])) out.push(`a=fmtp:${rtpmap[1]} ${param}`);
  }
  return out.join("\r\n");
}

function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, ICE_WAIT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export class PeerLink {
  constructor({ iceServers, local, sendOffer, onState, onSlot }) {
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.sendOffer = sendOffer;
    this.onSlot = onSlot;
    this.closed = false;
    this.negotiating = false;
    this.pending = false;
    this.senders = {};
    for (const { name, kind, sendEncodings } of SENDERS) {
      const transceiver = this.pc.addTransceiver(kind, {
        direction: "sendonly",
        ...(sendEncodings ? { sendEncodings } : {}),
      });
      preferCodecs(transceiver, kind);
      this.senders[name] = transceiver;
    }
    for (const source of SOURCES) {
      if (local.tracks[source]) this.setTrack(source, local.tracks[source]);
    }
    this.receivers = { audio: [], video: [] };
    this.pc.addEventListener("connectionstatechange", () => onState(this.pc.connectionState));
  }

  // Receive slots by mid: a stream of their own each, for one <audio> or <video> element.
  slot(mid) {
    for (const kind of ["audio", "video"]) {
      const found = this.receivers[kind].find((slot) => slot.transceiver.mid === mid);
      if (found) return found;
    }
    return null;
  }

  ensureSlots({ audio, video }) {
    let added = false;
    for (const [kind, count] of [["audio", audio], ["video", video]]) {
      while (this.receivers[kind].length < count) {
        const transceiver = this.pc.addTransceiver(kind, { direction: "recvonly" });
        preferCodecs(transceiver, kind);
        const slot = { kind, transceiver, stream: new MediaStream([transceiver.receiver.track]) };
        this.receivers[kind].push(slot);
        this.onSlot(slot);
        added = true;
      }
    }
    return added;
  }

  sources() {
    const sources = {};
    for (const { name } of SENDERS) sources[this.senders[name].mid] = name;
    return sources;
  }

  async offer() {
    if (this.closed) return;
    if (this.negotiating) {
      this.pending = true;
      return;
    }
    this.negotiating = true;
    this.pending = false;
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    await iceGathered(this.pc);
    if (this.closed) return;
    this.sendOffer(this.pc.localDescription.sdp, this.sources());
  }

  async answer(sdp) {
    if (this.closed || this.pc.signalingState !== "have-local-offer") return;
    await this.pc.setRemoteDescription({ type: "answer", sdp: withStartBitrate(sdp) });
    this.settle();
  }

  // The relay refused the offer (busy, bad-sdp): go back to stable, maybe try again.
  async refused({ retry }) {
    if (this.closed) return;
    if (this.pc.signalingState === "have-local-offer") {
      await this.pc.setLocalDescription({ type: "rollback" });
    }
    this.pending = this.pending || retry;
    this.settle();
  }

  settle() {
    this.negotiating = false;
    if (this.pending) this.offer();
  }

  // Every transceiver that carries the source gets the track: the camera goes out on both layers.
  setTrack(source, track) {
    if (this.closed) return Promise.resolve();
    const senders = SENDERS.filter((s) => s.source === source).map((s) => this.senders[s.name].sender);
    const low = this.senders["camera-low"].sender;
    return Promise.all(
      senders.map(async (sender) => {
        if (sender === low && track) await scaleToThumbnail(sender, track);
        await sender.replaceTrack(track);
      }),
    );
  }

  close() {
    this.closed = true;
    this.pc.close();
  }
}
