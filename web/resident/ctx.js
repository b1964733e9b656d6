// State shared by the resident page's views: the API client, the cached org tree and
// categories, small helpers used by several views.

import { createClient } from '/static/common/api.js';
import { h } from '/static/common/ui.js';

export const client = createClient('resident');

/// Whether the live-updates stream is connected (app.js keeps it); while it is, views skip
/// their own polling.
export const live = { up: false };

const cache = new Map();

/// A public list, fetched once; `failure` is what the resident reads when it cannot be had.
async function publicList(path, failure) {
  if (!cache.has(path)) {
    const res = await fetch('/api/v1' + path);
    if (!res.ok) throw new Error(failure);
    cache.set(path, await res.json());
  }
  return cache.get(path);
}

/// Org tree (public) — streets → communities → compounds → buildings.
export function orgTree() {
  return publicList('/org/tree', '无法加载小区列表，请稍后重试');
}

/// Categories (public).
export function categories() {
  return publicList('/categories', '无法加载诉求类别，请稍后重试');
}

/// Every compound of the tree with its community and street: [{id, name, community, street, buildings}].
export function compoundsOf(tree) {
  const out = [];
  for (const street of tree || []) {
    if (street.archived) continue;
    for (const community of street.children || []) {
      if (community.archived) continue;
      for (const compound of community.children || []) {
        if (compound.archived) continue;
        out.push({
          id: compound.id,
          name: compound.name,
          community: community.name,
          street: street.name,
          buildings: (compound.children || []).filter((b) => !b.archived),
        });
      }
    }
  }
  return out;
}

/// Random key for Idempotency-Key (crypto.randomUUID needs a secure context; this does not).
export function newKey() {
  if (crypto.randomUUID && window.isSecureContext) return crypto.randomUUID();
  const a = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

export const STATUS_CLASS = {
  open: 'orange',
  acknowledged: 'blue',
  resolved: 'red',
  closed: 'green',
  declined: 'grey',
  decline_review: 'orange',
  withdrawn: 'grey',
};

/// The plain-words status as a coloured badge.
export function statusBadge(t, attrs = {}) {
  return h('span.badge.status', { ...attrs, class: 'badge status ' + (STATUS_CLASS[t.status] || '') }, t.status_text);
}

const PAGE_TITLE = document.getElementById('page-title');
export function setTitle(text) {
  PAGE_TITLE.textContent = text;
  document.title = text === '呼应' ? '呼应 · 居民诉求' : `${text} · 呼应`;
}

/// A tiny inline SVG icon (paths only; stroke drawn by CSS).
export function icon(d) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', d);
  svg.appendChild(p);
  return svg;
}

/// A modal sheet built on <dialog>: returns {dialog, close}. Removed from the DOM when closed.
export function sheet(title, ...body) {
  const dialog = h(
    'dialog.sheet',
    { 'aria-label': title },
    h('div.sheet-head', h('h2', title), h('button.icon-btn.sheet-close', { type: 'button', 'aria-label': '关闭', onclick: () => dialog.close() }, '×')),
    ...body,
  );
  dialog.addEventListener('close', () => dialog.remove());
  // Tapping the backdrop closes the sheet.
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) {
      const r = dialog.getBoundingClientRect();
      const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
      if (!inside) dialog.close();
    }
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  return { dialog, close: () => dialog.close() };
}
