// The lesson's websocket as docs/signalling.md describes it: JSON messages in and out, a ping
// every few seconds (the relay's ICE notices a dead peer only after ~30 s, the page should not
// wait that long), and reconnection with backoff on any close that is not final.

const FINAL_CODES = new Set([4000, 4403, 4409, 4410, 4411, 4412]);
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const BACKOFF_CAP_MS = 10000;
const PING_EVERY_MS = 5000;
const PONG_WITHIN_MS = 4000;
// A client may close with 3000-4999; this one means "the page gave up on this connection".
const CLOSE_RETRY = 3000;

// Calls `onTick` every `every` ms from a worker (see ticker.js), or from this page's timers when
// workers are unavailable. Returns a function that stops it.
function startTicker(every, onTick) {
  try {
    const worker = new Worker(new URL("./ticker.js", import.meta.url));
    worker.addEventListener("message", onTick);
    worker.postMessage(every);
    return () => worker.terminate();
  } catch {
    const id = setInterval(onTick, every);
    return () => clearInterval(id);
  }
}

export class LessonSocket {
  constructor(path, { onMessage, onLost, onFinal }) {
    this.path = path;
    this.handlers = { onMessage, onLost, onFinal };
    this.attempt = 0;
    this.socket = null;
    this.stopped = false;
    this.timers = new Set();
    this.stopTicker = null;
  }

  connect() {
    this.stopped = false;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${this.path}`);
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      if (socket !== this.socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "hello") this.attempt = 0;
      if (message.type === "pong") {
        this.clearTimer("pong");
        return;
      }
      this.handlers.onMessage(message);
    });
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      this.startPinging();
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return;
      this.clearTimers();
      if (this.stopped) return;
      if (FINAL_CODES.has(event.code)) {
        this.stopped = true;
        this.handlers.onFinal(event.code);
        return;
      }
      this.handlers.onLost();
      const delay = BACKOFF_MS[this.attempt] ?? BACKOFF_CAP_MS;
      this.attempt += 1;
      this.setTimer("retry", () => this.connect(), delay);
    });
  }

  send(type, fields = {}) {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify({ v: 1, type, ...fields }));
    return true;
  }

  // Drop this connection and reconnect (used when the peer connection fails).
  retry() {
    if (this.socket && !this.stopped) this.socket.close(CLOSE_RETRY, "retry");
  }

  // Leave for good: no reconnection.
  stop() {
    this.stopped = true;
    this.clearTimers();
    this.socket?.close(1000, "left");
  }

  startPinging() {
    this.stopTicker?.();
    this.stopTicker = startTicker(PING_EVERY_MS, () => {
      if (!this.send("ping")) return;
      // One pong deadline at a time: a late pong still counts until the deadline passes.
      if (![...this.timers].some((entry) => entry.name === "pong")) {
        this.setTimer("pong", () => this.retry(), PONG_WITHIN_MS);
      }
    });
  }

  setTimer(name, callback, delay) {
    this.clearTimer(name);
    const id = setTimeout(() => {
      this.timers.delete(entry);
      callback();
    }, delay);
    const entry = { name, id };
    this.timers.add(entry);
  }

  clearTimer(name) {
    for (const entry of this.timers) {
      if (entry.name === name) {
        clearTimeout(entry.id);
        this.timers.delete(entry);
      }
    }
  }

  clearTimers() {
    this.stopTicker?.();
    this.stopTicker = null;
    for (const entry of this.timers) clearTimeout(entry.id);
    this.timers.clear();
  }
}
