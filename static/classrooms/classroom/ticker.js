// A dedicated worker that posts a tick every N ms (N is the first message it receives). Timers in
// a worker are not throttled like a hidden tab's (Chromium runs those once a minute after five
// minutes in the background), so a pupil waiting in a background tab keeps pinging the relay.
self.onmessage = (event) => {
  setInterval(() => self.postMessage("tick"), event.data);
};
