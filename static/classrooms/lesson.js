// Opens the lesson's websocket and says how the connection stands. The classroom (media, lobby,
// moderation) builds on this; for now it proves the page reaches the relay and is admitted.
const room = document.querySelector("[data-lesson-room]");
const status = room.querySelector("[data-room-status]");
const say = (name) => {
  const template = room.querySelector(`template[data-message="${name}"]`);
  if (template) status.textContent = template.content.textContent.trim();
  room.dataset.state = name;
};

let attempt = 0;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${room.dataset.wsPath}`);
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") {
      attempt = 0;
      room.dataset.role = message.you.role;
      say("open");
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4403 || event.code === 4409) {
      say(`closed-${event.code}`);
      return;
    }
    say("reconnecting");
    attempt += 1;
    setTimeout(connect, Math.min(1000 * 2 ** attempt, 15000));
  });
}
connect();
