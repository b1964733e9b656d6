// Small DOM helpers shared by the pages. Everything a user typed is put into the page with
// textContent (never innerHTML), so a title like "<script>" shows as text.

/// h('div.card#main', {onclick, 'data-id': 3}, 'text', child, [more]) → element.
export function h(tag, attrs, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || 'div');
  for (const r of rest) {
    if (r[0] === '.') el.classList.add(r.slice(1));
    else if (r[0] === '#') el.id = r.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/// Replaces the children of `el`.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

let toastTimer;
/// A short message at the bottom of the screen (role=status, so screen readers announce it).
export function toast(message, kind = 'info') {
  let el = document.getElementById('toast');
  if (!el) {
    el = h('div#toast', { role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(el);
  }
  el.textContent = message;
  el.className = 'show ' + kind;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.className = ''), kind === 'error' ? 6000 : 3000);
}

export function errorText(e) {
  if (e && e.details && Array.isArray(e.details.fields)) {
    return e.message + '：' + e.details.fields.map((f) => f.message || f.field).join('；');
  }
  return (e && e.message) || String(e);
}

const TZ = 'Asia/Shanghai';
const dtf = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hour12: false,
});
const df = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ,
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hour12: false,
});

/// "2026/11/27 14:05" in Beijing time whatever the device's zone.
export function fmtTime(iso) {
  return iso ? dtf.format(new Date(iso)) : '';
}
export function fmtShort(iso) {
  return iso ? df.format(new Date(iso)) : '';
}

/// Today's date in Beijing as YYYY-MM-DD.
export function todayBeijing(offsetDays = 0) {
  const d = new Date(Date.now() + offsetDays * 86400000);
  return new Intl.DateTimeFormat('en-CA', { timeZone: TZ }).format(d);
}

/// "2小时15分" from seconds (the sign is ignored).
export function fmtDuration(seconds) {
  const s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400);
  const hr = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}天${hr}小时`;
  if (hr > 0) return `${hr}小时${m}分`;
  if (m > 0) return `${m}分`;
  return `${s}秒`;
}

// Every page imports this module: record script errors (the browser tests assert there are
// none) and tell the user about a failed request nobody caught instead of failing silently.
window.__huyingErrors = window.__huyingErrors || [];
window.addEventListener('error', (e) => {
  window.__huyingErrors.push(String(e.message || e.error));
});
window.addEventListener('unhandledrejection', (e) => {
  const r = e.reason;
  if (r && r.status !== undefined) {
    // An API error: the user needs to see it; it is not a bug in the page.
    toast(errorText(r), 'error');
    return;
  }
  window.__huyingErrors.push(String((r && r.stack) || r));
});
