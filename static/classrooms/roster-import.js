// While a roster bundle is being checked, move the progress bar and reload once it is done.
const panel = document.querySelector("[data-roster-import]");
const bar = panel.querySelector("[data-progress]");

async function poll() {
  try {
    const response = await fetch(panel.dataset.statusUrl, { headers: { Accept: "application/json" } });
    if (response.ok) {
      const status = await response.json();
      bar.value = status.progress;
      bar.textContent = `${status.progress}%`;
      if (status.state !== "validating") {
        location.reload();
        return;
      }
    }
  } catch (error) {
    // A dropped request is retried on the next tick.
  }
  setTimeout(poll, 1000);
}
setTimeout(poll, 500);
