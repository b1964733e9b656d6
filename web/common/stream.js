// Live updates shared by the pages: reads GET /api/v1/stream (Server-Sent Events) with fetch, so
// the access token travels in the Authorization header and never in a URL (EventSource cannot
// send headers). While the stream is up the pages skip their 20 s polling; when it drops they
// poll again and the stream is retried with backoff. Events: ready, tickets {ids}, notice,
// resync, expired (README.md, 实时推送).

const MIN_DELAY = 1000;
const MAX_DELAY = 60000;
/// How long a stream may stay silent before its first event (then: two heartbeats and 5 s).
const DEFAULT_SILENCE = 35000;

/// Opens the stream for `client` (from createClient) and keeps it open until `stop()`.
/// `onEvent(name, data)` gets each event; `onUp()` once events get through (the `ready` event
/// arrived), `onDown()` when an up stream drops or falls silent. `.up` says whether it is up.
export function openStream(client, { onEvent, onUp, onDown } = {}) {
  let stopped = false;
  let controller = null;
  let timer = null;
  let delay = MIN_DELAY;
  let base = MIN_DELAY;
  let readyHeartbeat = 15;
  const handle = {
    up: false,
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (controller) controller.abort();
      handle.up = false;
    },
  };

  function dispatch(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue; // a heartbeat
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
      else if (field === 'retry' && /^\d+$/.test(value)) base = Math.max(MIN_DELAY, Number(value));
    }
    if (!data.length) return null;
    let parsed = {};
    try {
      parsed = JSON.parse(data.join('\n'));
    } catch (e) {
      /* not JSON: passed on empty */
    }
    if (name === 'ready' && parsed.heartbeat_secs > 0) readyHeartbeat = parsed.heartbeat_secs;
    if (onEvent) onEvent(name, parsed);
    return name;
  }

  async function connect() {
    if (stopped) return;
    const ctl = new AbortController();
    controller = ctl;
    let expired = false;
    // Silence longer than two heartbeats means the stream is dead or something on the way
    // buffers it: give up on it (the page polls) and try again later.
    let silence = DEFAULT_SILENCE;
    let watchdog = null;
    const watch = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => ctl.abort(), silence);
    };
    try {
      watch();
      const res = await client.stream('/stream', ctl.signal);
      if (stopped) return;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        watch();
        buf += value.replace(/\r\n?/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const name = dispatch(block);
          if (name === 'expired') expired = true;
          if (name === 'ready' && !handle.up) {
            // Up only once an event got through: a buffering proxy never gets this far.
            silence = Math.max(2 * readyHeartbeat * 1000 + 5000, 10000);
            watch();
            handle.up = true;
            delay = base;
            if (onUp) onUp();
          }
        }
      }
    } catch (e) {
      /* dropped, refused, silent or aborted: retried below unless stopped */
    }
    clearTimeout(watchdog);
    const wasUp = handle.up;
    handle.up = false;
    if (stopped) return;
    if (wasUp && onDown) onDown();
    // An expired token: at once, with a fresh one (the client refreshes it). Otherwise back off.
    const wait = expired ? 0 : delay + Math.random() * 500;
    if (!expired) delay = Math.min(delay * 2, MAX_DELAY);
    timer = setTimeout(connect, wait);
  }

  connect();
  return handle;
}
