// The bell in the page header: a dropdown of recent notifications, and live updates of the
// unread count and new items over /ws/notifications/ (reconnecting with backoff).
// Without JavaScript the bell is a plain link to the notifications page.

const bell = document.querySelector("[data-bell]");

if (bell) {
  const button = bell.querySelector("[data-bell-button]");
  const count = bell.querySelector("[data-bell-count]");
  const panel = bell.querySelector("[data-bell-panel]");
  const toast = bell.querySelector("[data-bell-toast]");
  const labelTemplate = bell.dataset.labelOne;
  let loaded = false;
  let toastTimer = null;

  function setUnread(unread) {
    count.textContent = String(unread);
    count.hidden = unread === 0;
    button.setAttribute("aria-label", labelTemplate.replace("%s", String(unread)));
  }

  function csrfToken() {
    const field = panel.querySelector("input[name=csrfmiddlewaretoken]");
    if (field) return field.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function load() {
    const response = await fetch(bell.dataset.panelUrl, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`panel: ${response.status}`);
    panel.innerHTML = await response.text();
    loaded = true;
  }

  async function open() {
    button.setAttribute("aria-expanded", "true");
    panel.hidden = false;
    toast.textContent = "";
    try {
      await load();
    } catch (error) {
      window.location.assign(button.href);
      return;
    }
    const first = panel.querySelector("button, a");
    if (first) first.focus();
  }

  function close(returnFocus) {
    button.setAttribute("aria-expanded", "false");
    panel.hidden = true;
    if (returnFocus) button.focus();
  }

  button.setAttribute("aria-expanded", "false");
  button.addEventListener("click", (event) => {
    event.preventDefault();
    if (panel.hidden) open();
    else close(false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) close(true);
  });
  document.addEventListener("click", (event) => {
    if (!panel.hidden && !bell.contains(event.target)) close(false);
  });

  // "Mark all read" without leaving the page; the form still works on its own.
  panel.addEventListener("submit", async (event) => {
    if (!event.target.matches("[data-bell-read-all]")) return;
    event.preventDefault();
    const response = await fetch(event.target.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    });
    if (!response.ok) return;
    setUnread(0);
    panel.querySelectorAll(".notice--unread").forEach((item) => item.classList.remove("notice--unread"));
  });

  function showNew(notification) {
    toast.textContent = notification.title;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.textContent = ""; }, 8000);
    if (!loaded) return;
    // The panel's markup (forms with the CSRF token) comes from the server: fetch it again.
    load().catch(() => {});
  }

  // --- Live updates -----------------------------------------------------------------------------
  let delay = 1000;
  const maxDelay = 30000;

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}${bell.dataset.ws}`);
    socket.addEventListener("open", () => { delay = 1000; });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (typeof message.unread === "number") setUnread(message.unread);
      if (message.type === "created" && message.notification) showNew(message.notification);
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4403) return; // logged out: retrying cannot help
      const wait = delay + Math.random() * delay * 0.3;
      delay = Math.min(delay * 2, maxDelay);
      setTimeout(connect, wait);
    });
  }

  if ("WebSocket" in window) connect();
}
