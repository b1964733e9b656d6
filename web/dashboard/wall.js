// Wall mode (数据大屏, /dashboard/#wall): dark, full screen where the browser allows it, and a
// fresh load every 30 s; "this month so far" rolls over at midnight on a wall that runs for days.

import { $ } from '/static/common/ui.js';
import { state, defaultRange, writeHash, syncInputs } from './shared.js';
import { disposeCharts } from './charts.js';
import { loadAll, renderAll } from './load.js';

const REFRESH_MS = 30_000;

export function isFullscreen() {
  return !!document.fullscreenElement;
}

export function requestFullscreen() {
  const el = document.documentElement;
  if (!el.requestFullscreen || isFullscreen()) return;
  el.requestFullscreen().catch(() => {
    /* Needs a user gesture (e.g. opened directly at #wall): the 全屏 button stays visible. */
  });
}

export function updateFullscreenButton() {
  $('#fullscreen').classList.toggle('hidden', !state.wall || isFullscreen() || !document.fullscreenEnabled);
}

export function setWall(on, fromUser) {
  const changed = state.wall !== on || !!document.body.classList.contains('wall') !== on;
  state.wall = on;
  document.body.classList.toggle('wall', on);
  const btn = $('#wall');
  btn.textContent = on ? '退出大屏' : '数据大屏';
  btn.setAttribute('aria-pressed', String(on));
  document.querySelector('meta[name=theme-color]').setAttribute('content', on ? '#0b1426' : '#c8161e');
  if (on) {
    if (fromUser) requestFullscreen();
    startTimer();
  } else {
    stopTimer();
    if (fromUser && isFullscreen()) document.exitFullscreen().catch(() => {});
  }
  updateFullscreenButton();
  writeHash();
  if (changed) {
    disposeCharts();
    // Let the layout settle before the charts measure their boxes.
    requestAnimationFrame(() => renderAll());
  }
}

function startTimer() {
  stopTimer();
  state.timer = setInterval(() => {
    if (document.hidden || !state.user) return;
    if (!state.customRange) {
      const def = defaultRange();
      state.from = def.from;
      state.to = def.to;
      syncInputs();
    }
    loadAll({ quiet: true });
  }, REFRESH_MS);
}

export function stopTimer() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}
