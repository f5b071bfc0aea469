// The classroom client: preview (teachers), lobby, the room, and the final screens, speaking
// docs/signalling.md over one websocket and one peer connection. The relay decides what is
// forwarded; this page only asks, shows the last `room` snapshot, and follows the notices.

import { LessonSocket } from "./classroom/connection.js";
import { readStrings } from "./classroom/dom.js";
import { Levels } from "./classroom/levels.js";
import { LocalMedia, PeerLink } from "./classroom/media.js";
import { ClassroomView } from "./classroom/view.js";

const root = document.querySelector("[data-lesson-room]");
const t = readStrings(root);
const view = new ClassroomView(root, t);
const teacher = root.dataset.role === "teacher";
const state = {
  phase: teacher ? "preview" : "connecting",
  closeCode: null,
  you: null,
  room: null,
  tracks: {},
  chat: [],
  errors: [],
  joinClickedAt: null,
  firstRemoteFrameAt: null,
  // When each step of this page's first join happened (ms since the epoch), for benchmarks.
  marks: {},
};
let link = null;
let iceServers = [];
const previewVideo = root.querySelector("[data-preview-video]");
const previewMeter = root.querySelector("[data-preview-meter]");

const now = () => performance.timeOrigin + performance.now();
const mark = (name) => {
  state.marks[name] ??= now();
};
view.onFirstFrame = () => {
  state.firstRemoteFrameAt ??= now();
  mark("firstFrame");
};

const levels = new Levels({
  onLevel(key, level, speaking) {
    if (key === "local" && previewMeter) previewMeter.style.width = `${Math.min(100, level * 400)}%`;
    const participant = key === "local" ? state.you?.id : state.tracks[key.transceiver.mid]?.participant;
    if (participant) view.speaking(participant, speaking);
  },
});

const local = new LocalMedia({
  onChange(source, track) {
    link?.setTrack(source, track);
    if (source === "mic") levels.watch("local", track);
    if (source === "camera" && previewVideo) {
      previewVideo.srcObject = track ? new MediaStream([track]) : null;
      root.querySelector("[data-preview-avatar]").hidden = Boolean(track);
    }
    // Whatever switched the source (a click, the relay, the browser's "Stop sharing" bar), the
    // relay hears the page's switches.
    if (state.phase === "in" && told[source] !== Boolean(track)) tellSwitches(source);
    render();
  },
});

const socket = new LessonSocket(root.dataset.wsPath, {
  onMessage: handle,
  onLost() {
    state.phase = "reconnecting";
    closeLink();
    view.reconnecting(true);
  },
  onFinal(code) {
    finish(String(code), { canRejoin: code === 4000 });
  },
});

// What the relay last heard from this page, so that a device change (same switch) says nothing;
// `stage` is undefined until the relay has heard it on this socket.
const told = { mic: false, camera: false, screen: false, stage: undefined };

function tellSwitches(source) {
  for (const name of ["mic", "camera", "screen"]) told[name] = Boolean(local.tracks[name]);
  if (source === "screen") socket.send("share", { on: Boolean(local.tracks.screen) });
  else socket.send("media", { mic: Boolean(local.tracks.mic), camera: Boolean(local.tracks.camera) });
}

function me() {
  return state.room?.participants.find((p) => p.id === state.you?.id) ?? null;
}

function slotList() {
  if (!link) return [];
  const slots = [];
  for (const [mid, entry] of Object.entries(state.tracks)) {
    const slot = entry && link.slot(mid);
    if (slot) slots.push({ ...entry, stream: slot.stream, kind: slot.kind });
  }
  return slots;
}

function render() {
  if (!state.room || !state.you || state.phase !== "in") return;
  view.render({
    room: state.room,
    you: state.you,
    slots: slotList(),
    local,
    handUp: Boolean(me()?.hand),
  });
  tellStage();
}

// The relay picks the camera layers by the large tile: say whose camera it shows when that
// changes, and once after each join (the relay forgets it with the socket).
function tellStage() {
  if (told.stage === view.stageCamera) return;
  if (socket.send("stage", { participant: view.stageCamera })) told.stage = view.stageCamera;
}

function closeLink() {
  for (const slot of link?.receivers.audio ?? []) levels.unwatch(slot);
  link?.close();
  link = null;
  state.tracks = {};
}

function enterRoom(slots) {
  state.phase = "in";
  view.reconnecting(false);
  view.show("room");
  view.say(t("in"));
  closeLink();
  link = new PeerLink({
    iceServers,
    local,
    sendOffer: (sdp, sources) => {
      mark("offer");
      socket.send("offer", { sdp, sources });
    },
    onState(connection) {
      if (connection === "connected") mark("connected");
      if (connection === "failed") socket.retry();
    },
    onSlot(slot) {
      if (slot.kind === "audio") {
        view.addAudio(slot);
        levels.watch(slot, slot.transceiver.receiver.track);
      }
    },
  });
  view.el.audio.replaceChildren();
  told.stage = undefined;
  link.ensureSlots(slots);
  link.offer();
  // The relay keeps grants across reconnects; the switches are the page's to say again.
  if (local.tracks.mic || local.tracks.camera) tellSwitches("mic");
  if (local.tracks.screen) tellSwitches("screen");
  render();
}

function finish(kind, { canRejoin }) {
  state.phase = kind === "left" ? "left" : "final";
  state.closeCode = Number(kind) || null;
  closeLink();
  local.stopAll();
  levels.close();
  view.reconnecting(false);
  view.final(kind, { canRejoin });
}

// Follow what the relay did to this participant's own sources.
function followRoom() {
  const mine = me();
  if (!mine) return;
  for (const source of ["mic", "camera", "screen"]) {
    if (!mine[source].granted && local.tracks[source]) local.stop(source);
  }
}

const NOTICE_STOPS = {
  muted: "mic",
  "camera-off": "camera",
  "revoked-mic": "mic",
  "revoked-camera": "camera",
  "revoked-screen": "screen",
  "screen-stopped": "screen",
};

function handle(message) {
  switch (message.type) {
    case "hello":
      mark("hello");
      state.you = message.you;
      iceServers = message.iceServers ?? [];
      view.reconnecting(false);
      if (message.state === "in") enterRoom(message.slots);
      else {
        state.phase = "lobby";
        view.lobby("waiting-for-teacher");
      }
      break;
    case "lobby":
      state.phase = "lobby";
      view.lobby(message.reason);
      break;
    case "admitted":
      enterRoom(message.slots);
      break;
    case "answer":
      mark("answer");
      link?.answer(message.sdp);
      break;
    case "slots":
      if (link?.ensureSlots(message)) link.offer();
      break;
    case "tracks":
      state.tracks = message.mids;
      render();
      break;
    case "room":
      state.room = message;
      followRoom();
      render();
      break;
    case "chat-history":
      state.chat = message.messages;
      view.chatReplace(state.chat, state.you);
      break;
    case "chat":
      state.chat.push(message.message);
      view.chatAdd(message.message, state.you);
      break;
    case "chat-deleted":
      state.chat = state.chat.filter((m) => String(m.id) !== String(message.id));
      view.chatRemove(message.id);
      break;
    case "notice":
      if (NOTICE_STOPS[message.code]) local.stop(NOTICE_STOPS[message.code]);
      view.say(t(`notice-${message.code}`));
      break;
    case "error":
      state.errors.push({ code: message.code, detail: message.detail });
      if (message.code === "busy" || message.code === "bad-sdp") {
        link?.refused({ retry: message.code === "busy" });
      }
      break;
    default:
      break;
  }
}

// Toolbar and teacher controls.
async function toggle(source) {
  const button = root.querySelector(`[data-tool="${source}"]`);
  if (button.getAttribute("aria-disabled") === "true") {
    view.say(t("not-granted"));
    return;
  }
  if (local.tracks[source]) {
    local.stop(source);
    return;
  }
  try {
    await local.start(source);
  } catch {
    if (source !== "screen") view.say(t("device-error"));
  }
}

function togglePanel(name, button) {
  const panel = root.querySelector(`[data-panel="${name}"]`);
  panel.hidden = !panel.hidden;
  button.setAttribute("aria-expanded", String(!panel.hidden));
  if (!panel.hidden) panel.querySelector("select, input, button")?.focus();
}

const TOOLS = {
  mic: () => toggle("mic"),
  camera: () => toggle("camera"),
  screen: () => toggle("screen"),
  hand: () => socket.send("hand", { up: !me()?.hand }),
  chat: (button) => togglePanel("chat", button),
  participants: (button) => togglePanel("participants", button),
  settings: (button) => {
    togglePanel("settings", button);
    listDevices();
  },
  end: () => {
    if (window.confirm(t("end-confirm"))) socket.send("end");
  },
  leave: () => {
    socket.stop();
    finish("left", { canRejoin: true });
  },
};

function nameOf(id) {
  return state.room?.participants.find((p) => p.id === id)?.name ?? id;
}

const ACTIONS = {
  mute: (id) => socket.send("mute", { participant: id, source: "mic" }),
  grant: (id, button) =>
    socket.send("grant", {
      participant: id,
      source: button.dataset.source,
      on: button.getAttribute("aria-pressed") !== "true",
    }),
  remove: (id) => {
    if (window.confirm(t("remove-confirm", { name: nameOf(id) }))) socket.send("remove", { participant: id });
  },
  admit: (id) => socket.send("admit", { participant: id }),
  deny: (id) => socket.send("deny", { participant: id }),
  readmit: (id) => socket.send("readmit", { participant: id }),
  lower: (id) => socket.send("lower-hand", { participant: id }),
  "chat-delete": (_, button) => {
    const message = state.chat.find((m) => String(m.id) === button.dataset.id);
    if (message) socket.send("chat-delete", { id: message.id });
  },
};

root.addEventListener("click", (event) => {
  levels.context?.resume();
  const tool = event.target.closest("[data-tool]");
  if (tool) {
    TOOLS[tool.dataset.tool](tool);
    return;
  }
  const action = event.target.closest("[data-action]");
  if (action) {
    ACTIONS[action.dataset.action](action.dataset.participant, action);
    return;
  }
  if (event.target.closest("[data-mute-all]")) socket.send("mute", { all: true, source: "mic" });
  else if (event.target.closest("[data-lock]")) socket.send("lock", { on: !state.room?.locked });
  else if (event.target.closest("[data-layout]")) {
    socket.send("layout", { layout: state.room?.layout === "speaker" ? "teacher" : "speaker" });
  }
  else if (event.target.closest("[data-lower-all]")) socket.send("lower-hand", { all: true });
  else if (event.target.closest("[data-rejoin]")) location.reload();
});

root.querySelector("[data-chat-form]").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.elements.body;
  const body = input.value.trim();
  if (body && socket.send("chat", { body })) input.value = "";
});

// Devices: one list for the preview and the settings panel; a change swaps the running track.
async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const select of root.querySelectorAll("select[data-device]")) {
    const kind = select.dataset.device;
    const current = local.tracks[kind === "audioinput" ? "mic" : "camera"]?.getSettings().deviceId;
    select.replaceChildren(
      ...devices
        .filter((d) => d.kind === kind)
        .map((d, i) => new Option(d.label || `${kind} ${i + 1}`, d.deviceId, false, d.deviceId === current)),
    );
  }
}

for (const select of root.querySelectorAll("select[data-device]")) {
  select.addEventListener("change", () => {
    local.switchDevice(select.dataset.device, select.value).catch(() => view.say(t("device-error")));
  });
}

window.homeroomClassroom = Object.freeze({
  get pc() {
    return link?.pc ?? null;
  },
  get tracks() {
    return { ...state.tracks };
  },
  // Which of this page's send mids carries which source (`camera-low`: the camera's low layer).
  get sources() {
    return link?.sources() ?? {};
  },
  get state() {
    return state;
  },
  get socket() {
    return socket.socket;
  },
});

function join() {
  state.joinClickedAt ??= now();
  mark("join");
  state.phase = "connecting";
  view.say(t("connecting"));
  socket.connect();
}

async function preview() {
  view.show("preview");
  const button = root.querySelector("[data-join]");
  button.addEventListener("click", () => {
    button.disabled = true;
    join();
  });
  // Enabled only now that the page can act on it (the module loads after the HTML).
  button.disabled = false;
  button.focus();
  const switches = root.querySelectorAll("[data-preview-switch]");
  for (const toggleButton of switches) {
    const source = toggleButton.dataset.previewSwitch;
    toggleButton.addEventListener("click", async () => {
      if (local.tracks[source]) local.stop(source);
      else await local.start(source).catch(() => view.say(t("device-error")));
      toggleButton.setAttribute("aria-pressed", String(Boolean(local.tracks[source])));
    });
  }
  try {
    await local.startPreview({ mic: true, camera: true });
    await listDevices();
  } catch {
    const error = root.querySelector("[data-preview-error]");
    error.textContent = t("device-error");
    error.hidden = false;
  }
  for (const toggleButton of switches) {
    const source = toggleButton.dataset.previewSwitch;
    toggleButton.setAttribute("aria-pressed", String(Boolean(local.tracks[source])));
  }
}

if (teacher) preview();
else join();

// A page that is closed or navigated away leaves the lesson at once instead of timing out.
window.addEventListener("pagehide", () => socket.stop());
