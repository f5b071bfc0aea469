// Small DOM helpers for the classroom: build elements without innerHTML (names and chat come from
// people), read the page's translated strings, and keep keyboard focus across re-renders.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("data-") || name.startsWith("aria-") || name === "role") {
      element.setAttribute(name, value === true ? "true" : value);
    } else element[name] = value;
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) element.append(child);
  }
  return element;
}

const ICONS = {
  "mic-off":
    '<path d="M9 9v2a3 3 0 0 0 5 2.2M15 10V6a3 3 0 0 0-6 0M5 11a7 7 0 0 0 11.5 5.4M19 11a7 7 0 0 1-.5 2.5M12 18v3M3 3l18 18"/>',
  "camera-off": '<path d="M3 6h10l3 3 5-3v11M16 18H3V6M3 3l18 18"/>',
  hand: '<path d="M8 13V5a1.5 1.5 0 0 1 3 0v6M11 11V4a1.5 1.5 0 0 1 3 0v7M14 11V5.5a1.5 1.5 0 0 1 3 0V14a7 7 0 0 1-7 7 6 6 0 0 1-5-3l-2.5-4a1.5 1.5 0 0 1 2.5-1.6L8 15"/>',
};

export function icon(name, label) {
  const holder = h("span", { class: `icon icon--${name}`, title: label, role: "img", "aria-label": label });
  holder.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true">${ICONS[name]}</svg>`;
  return holder;
}

export function initials(name) {
  const parts = name.trim().split(/\s+/);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : parts[0].slice(0, 2);
  return letters.toUpperCase();
}

export function readStrings(root) {
  const strings = {};
  for (const span of root.querySelectorAll("[data-strings] [data-s]")) {
    strings[span.dataset.s] = span.textContent.trim();
  }
  const t = (key, values = {}) =>
    (strings[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => values[name] ?? "");
  t.has = (key) => key in strings;
  return t;
}

// Re-rendering a list replaces its buttons; put focus back on the same control if it had it.
export function keepFocus(container, render) {
  const active = document.activeElement;
  const key = container.contains(active) ? active.dataset.focusKey : null;
  render();
  if (key) container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
}
