// Renders the classroom from the relay's last `room` snapshot, the slot map (`tracks`) and the
// local switches. It never tracks deltas: every snapshot redraws the lists, and tiles are reused
// by key so that playing videos are not interrupted.

import { h, icon, initials, keepFocus } from "./dom.js";

const GRANTS = ["mic", "camera", "screen"];

export class ClassroomView {
  constructor(root, t) {
    this.root = root;
    this.t = t;
    this.teacher = root.dataset.role === "teacher";
    this.tiles = new Map();
    this.onFirstFrame = null;
    // In speaker layout, who holds the large tile: kept while nobody else speaks.
    this.stageSpeaker = null;
    // Whose camera from the relay the large tile shows (null: a screen, your own camera, nobody):
    // the relay sends that camera's high layer and the thumbnails' low one.
    this.stageCamera = null;
    const $ = (selector) => root.querySelector(selector);
    this.el = {
      status: $("[data-room-status]"),
      banner: $("[data-reconnecting]"),
      stage: $("[data-stage]"),
      thumbs: $("[data-thumbs]"),
      paused: $("[data-paused]"),
      people: $("[data-people]"),
      count: $("[data-count]"),
      lobby: $("[data-lobby]"),
      removed: $("[data-removed]"),
      removedBlock: $("[data-removed-block]"),
      hands: $("[data-hands]"),
      lock: $("[data-lock]"),
      chat: $("[data-chat]"),
      audio: $("[data-audio]"),
      lobbyText: $("[data-lobby-text]"),
      finalTitle: $("[data-final-title]"),
      finalDetail: $("[data-final-detail]"),
      rejoin: $("[data-rejoin]"),
    };
    this.el.layout = this.teacher ? this.layoutButton() : null;
  }

  // A string of the page, or `fallback` while the template does not carry it yet.
  text(key, fallback) {
    return this.t.has(key) ? this.t(key) : fallback;
  }

  // The teacher's switch between the teacher's and the current speaker's camera on the large tile.
  layoutButton() {
    const button = h("button", {
      type: "button",
      class: "btn btn--secondary btn--small",
      "data-layout": true,
      "aria-pressed": "false",
      text: this.text("layout-speaker", "Follow the speaker"),
    });
    this.el.lock?.after(button);
    return button;
  }

  say(text) {
    this.el.status.textContent = text;
  }

  show(screen) {
    this.root.dataset.state = screen;
    for (const part of this.root.querySelectorAll("[data-screen]")) {
      part.hidden = part.dataset.screen !== screen;
    }
  }

  reconnecting(on) {
    this.el.banner.hidden = !on;
  }

  lobby(reason) {
    this.show("lobby");
    this.el.lobbyText.textContent = this.t(reason === "locked" ? "locked" : "waiting-for-teacher");
    this.say(this.el.lobbyText.textContent);
  }

  final(kind, { canRejoin }) {
    this.show("final");
    this.el.finalTitle.textContent = this.t(`final-${kind}`);
    const detail = `final-${kind}-detail`;
    this.el.finalDetail.textContent = this.t.has(detail) ? this.t(detail) : "";
    this.el.rejoin.hidden = !canRejoin;
    this.say(this.el.finalTitle.textContent);
    this.el.finalTitle.focus();
  }

  // Toolbar: toggles say whether they are on; ungranted sources are disabled with the reason.
  toolbar({ me, local, handUp }) {
    for (const source of GRANTS) {
      const button = this.root.querySelector(`[data-tool="${source}"]`);
      const granted = me ? me[source].granted : false;
      const on = Boolean(local.tracks[source]);
      button.setAttribute("aria-pressed", String(on));
      button.setAttribute("aria-disabled", String(!granted));
      button.title = granted ? "" : this.t("not-granted");
    }
    this.root.querySelector('[data-tool="hand"]').setAttribute("aria-pressed", String(handUp));
  }

  // Who the large tile shows in speaker layout: the first speaker other than you, else whoever had
  // it while they are still in, else the teacher.
  stagePerson(room, inRoom, you, teacher) {
    if (room.layout !== "speaker") return teacher;
    const speaker = (room.speakers ?? []).find((id) => id !== you.id && inRoom.some((p) => p.id === id));
    if (speaker) this.stageSpeaker = speaker;
    return inRoom.find((p) => p.id === this.stageSpeaker) ?? teacher;
  }

  // One tile per participant who is in; the stage holds the screen share, else the teacher (or,
  // in speaker layout, the current speaker).
  placeTiles({ room, you, slots, local }) {
    const bySource = new Map();
    for (const { participant, source, stream } of slots) bySource.set(`${participant}:${source}`, stream);
    const streamOf = (id, source) => {
      if (id === you.id) {
        const track = local.tracks[source];
        return track ? new MediaStream([track]) : null;
      }
      return bySource.get(`${id}:${source}`) ?? null;
    };
    const inRoom = room.participants.filter((p) => p.state === "in");
    const onStage = this.stagePerson(room, inRoom, you, inRoom.find((p) => p.role === "teacher"));
    const sharer = room.screen ? inRoom.find((p) => p.id === room.screen) : null;
    const speakers = new Set(room.speakers ?? []);
    this.stageCamera = !sharer && onStage && onStage.id !== you.id ? onStage.id : null;
    const wanted = [];
    if (sharer) wanted.push({ key: `stage:${sharer.id}:screen`, p: sharer, source: "screen", stage: true });
    else if (onStage) wanted.push({ key: `stage:${onStage.id}:camera`, p: onStage, source: "camera", stage: true });
    for (const p of inRoom) {
      if (!sharer && p === onStage) continue;
      wanted.push({ key: `thumb:${p.id}:camera`, p, source: "camera", stage: false });
    }
    const keep = new Set();
    this.el.stage.classList.toggle("stage--screen", Boolean(sharer));
    for (const item of wanted) {
      keep.add(item.key);
      const tile = this.tiles.get(item.key) ?? this.makeTile(item);
      this.fillTile(tile, item, streamOf(item.p.id, item.source), item.p.id === you.id, speakers.has(item.p.id));
      (item.stage ? this.el.stage : this.el.thumbs).append(tile.element);
    }
    for (const [key, tile] of this.tiles) {
      if (!keep.has(key)) {
        tile.element.remove();
        this.tiles.delete(key);
      }
    }
  }

  makeTile({ key, stage }) {
    const video = h("video", { autoplay: true, muted: true, playsInline: true });
    const avatar = h("span", { class: "tile__avatar", "aria-hidden": "true" });
    const name = h("span", { class: "tile__label" });
    const element = h(stage ? "div" : "li", { class: `tile${stage ? " tile--stage" : ""}` }, video, avatar, name);
    const tile = { key, element, video, avatar, name, stream: null };
    this.tiles.set(key, tile);
    return tile;
  }

  fillTile(tile, { p, source, stage }, stream, self, speaker) {
    tile.element.dataset.participant = p.id;
    const trackId = stream?.getVideoTracks()[0]?.id ?? null;
    if (trackId !== tile.stream) {
      tile.stream = trackId;
      tile.video.srcObject = stream;
      if (stream && !self) this.watchFirstFrame(tile.video);
    }
    const showing = Boolean(stream) && (self || p[source].on);
    tile.video.hidden = !showing;
    tile.video.classList.toggle("mirror", self && source === "camera");
    tile.avatar.hidden = showing;
    tile.avatar.textContent = initials(p.name);
    const label = self ? this.t("you", { name: p.name }) : p.name;
    tile.name.replaceChildren(
      ...[
        h("span", { class: "tile__name", text: label }),
        // Thumbnails keep the ring only: a label there would hide the name.
        speaker && stage ? this.speakerBadge() : null,
        p.mic.on ? null : icon("mic-off", this.t("mic-off")),
        p.hand ? icon("hand", this.t("hand", { n: p.hand })) : null,
      ].filter(Boolean),
    );
    tile.element.setAttribute("aria-label", label);
    tile.element.dataset.self = String(self);
    tile.element.classList.toggle("is-speaker", speaker);
    tile.element.dataset.role = p.role;
  }

  watchFirstFrame(video) {
    if (!this.onFirstFrame || !("requestVideoFrameCallback" in video)) return;
    video.requestVideoFrameCallback(() => this.onFirstFrame());
  }

  speakerBadge() {
    return h("span", { class: "badge badge--speaker", text: this.text("speaking", "Speaking") });
  }

  speaking(participant, on) {
    for (const node of this.root.querySelectorAll(`[data-participant="${CSS.escape(participant)}"]`)) {
      node.classList.toggle("is-speaking", on);
    }
  }

  render({ room, you, slots, local, handUp }) {
    const me = room.participants.find((p) => p.id === you.id) ?? null;
    this.toolbar({ me, local, handUp });
    this.placeTiles({ room, you, slots, local });
    this.el.paused.hidden = !room.paused;
    this.el.paused.textContent = room.paused ? this.t("paused") : "";
    const inRoom = room.participants.filter((p) => p.state === "in");
    this.el.count.textContent = `(${inRoom.length})`;
    const speakers = new Set(room.speakers ?? []);
    keepFocus(this.el.people, () =>
      this.el.people.replaceChildren(...inRoom.map((p) => this.person(p, you, speakers.has(p.id)))),
    );
    if (!this.teacher) return;
    this.el.layout?.setAttribute("aria-pressed", String(room.layout === "speaker"));
    const lobby = room.participants.filter((p) => p.state === "lobby");
    keepFocus(this.el.lobby, () =>
      this.el.lobby.replaceChildren(
        ...(lobby.length ? lobby.map((p) => this.lobbyPerson(p)) : [h("li", { class: "empty", text: this.t("nobody-lobby") })]),
      ),
    );
    keepFocus(this.el.removed, () => this.el.removed.replaceChildren(...room.removed.map((p) => this.removedPerson(p))));
    this.el.removedBlock.hidden = room.removed.length === 0;
    const names = new Map(room.participants.map((p) => [p.id, p.name]));
    keepFocus(this.el.hands, () =>
      this.el.hands.replaceChildren(
        ...(room.hands.length
          ? room.hands.map((id) => this.hand(id, names.get(id) ?? id))
          : [h("li", { class: "empty", text: this.t("no-hands") })]),
      ),
    );
    this.el.lock.textContent = this.t(room.locked ? "unlock" : "lock");
  }

  action(name, attributes, label, text, extra = "") {
    const key = `${name}:${attributes["data-participant"] ?? attributes["data-id"]}:${attributes["data-source"] ?? ""}`;
    return h("button", {
      type: "button",
      class: `btn btn--small ${extra}`,
      "data-action": name,
      "data-focus-key": key,
      "aria-label": label,
      title: label,
      text,
      ...attributes,
    });
  }

  person(p, you, speaker) {
    const self = p.id === you.id;
    const state = h(
      "span",
      { class: "person__state" },
      speaker ? this.speakerBadge() : null,
      p.mic.on ? null : icon("mic-off", this.t("mic-off")),
      p.camera.on ? null : icon("camera-off", this.t("camera-off")),
      p.hand ? h("span", { class: "badge badge--hand", text: `✋ ${p.hand}`, title: this.t("hand", { n: p.hand }) }) : null,
    );
    const controls = [];
    if (this.teacher && p.role === "pupil") {
      const ids = { "data-participant": p.id };
      controls.push(this.action("mute", ids, this.t("mute-name", { name: p.name }), this.t("mute"), "btn--secondary"));
      for (const source of GRANTS) {
        const b = this.action(
          "grant",
          { ...ids, "data-source": source },
          this.t("grant-name", { source: this.t(`grant-${source}`), name: p.name }),
          this.t(`grant-${source}`),
          "btn--toggle",
        );
        b.setAttribute("aria-pressed", String(p[source].granted));
        controls.push(b);
      }
      controls.push(this.action("remove", ids, this.t("remove-name", { name: p.name }), this.t("remove"), "btn--danger"));
    }
    return h(
      "li",
      { class: `person${speaker ? " is-speaker" : ""}`, "data-participant": p.id, "data-connected": String(p.connected) },
      h("span", { class: "avatar", "aria-hidden": "true", text: initials(p.name) }),
      h(
        "span",
        { class: "person__who" },
        h("span", { class: "person__name", text: self ? this.t("you", { name: p.name }) : p.name }),
        h("span", { class: "person__role muted", text: this.t(p.role) }),
      ),
      state,
      controls.length ? h("span", { class: "person__controls" }, controls) : null,
    );
  }

  lobbyPerson(p) {
    const ids = { "data-participant": p.id };
    return h(
      "li",
      { class: "person", "data-participant": p.id },
      h("span", { class: "avatar", "aria-hidden": "true", text: initials(p.name) }),
      h("span", { class: "person__who" }, h("span", { class: "person__name", text: p.name })),
      h(
        "span",
        { class: "person__controls" },
        this.action("admit", ids, `${this.t("admit")} ${p.name}`, this.t("admit"), "btn--primary"),
        this.action("deny", ids, `${this.t("deny")} ${p.name}`, this.t("deny"), "btn--secondary"),
      ),
    );
  }

  removedPerson(p) {
    return h(
      "li",
      { class: "person", "data-participant": p.id },
      h("span", { class: "person__who" }, h("span", { class: "person__name", text: p.name })),
      this.action("readmit", { "data-participant": p.id }, `${this.t("readmit")}: ${p.name}`, this.t("readmit"), "btn--secondary"),
    );
  }

  hand(id, name) {
    return h(
      "li",
      { class: "hand" },
      h("span", { text: name }),
      this.action("lower", { "data-participant": id }, this.t("lower-name", { name }), this.t("lower"), "btn--secondary"),
    );
  }

  chatMessage(message, you) {
    const at = new Date(message.at);
    const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return h(
      "li",
      { class: `chat__message${message.from.id === you.id ? " chat__message--mine" : ""}`, "data-message-id": String(message.id) },
      h(
        "span",
        { class: "chat__meta" },
        h("strong", { text: message.from.name }),
        " ",
        h("time", { dateTime: message.at, class: "muted", text: time }),
      ),
      h("span", { class: "chat__body", text: message.body }),
      this.teacher
        ? this.action("chat-delete", { "data-id": String(message.id) }, this.t("delete-message", { name: message.from.name }), this.t("delete"), "btn--link")
        : null,
    );
  }

  chatReplace(messages, you) {
    this.el.chat.replaceChildren(...messages.map((m) => this.chatMessage(m, you)));
    this.el.chat.scrollTop = this.el.chat.scrollHeight;
  }

  chatAdd(message, you) {
    this.el.chat.append(this.chatMessage(message, you));
    this.el.chat.scrollTop = this.el.chat.scrollHeight;
  }

  chatRemove(id) {
    this.el.chat.querySelector(`[data-message-id="${CSS.escape(String(id))}"]`)?.remove();
  }

  // One <audio> per audio slot, playing whatever the relay puts behind it.
  addAudio(slot) {
    const audio = h("audio", { autoplay: true });
    audio.srcObject = slot.stream;
    this.el.audio.append(audio);
  }
}
