// 呼应 · 书记工作台 (/staff/): sign-in, hash routing, polling for new tickets.
//   #/q/<tab>?filters   the queue (tabs open | in_progress | due_soon | overdue | went_up, and
//                       for the community and the street supervision | decisions)
//   #/t/<id>            one ticket
//   #/new               代为登记: a call entered on a resident's behalf (or an own finding)
//   #/notices           my notices
//   #/cb/<tab>          回访: the callback queue (for the staff who call residents back)

import { $, toast } from '/static/common/ui.js';
import { label } from '/static/common/labels.js';
import { passwordSignIn } from '/static/common/signin.js';
import { client, state, LEVEL_OF_ROLE, qs, tickCountdowns } from './shared.js';
import {
  showQueue,
  parseQueueRoute,
  refreshQueue,
  markFresh,
  setOnRefresh,
  resetQueue,
  lastQueueHash,
} from './queue.js';
import { showTicket, afterAction, pollTicket, reloadTicket, currentTicketId } from './ticket.js';
import { initActionDialog, dialogOpen } from './actions.js';
import { showNotices, setUnread } from './notices.js';
import { showIntake } from './intake.js';
import { probeCallbacks, showCallbacks, parseCallbacksRoute, refreshCallbacks, resetCallbacks } from './callbacks.js';
import { openStream } from '/static/common/stream.js';

const POLL_MS = 20000;

let view = null; // 'queue' | 'ticket' | 'notices' | 'intake' | 'callbacks'
let pollTimer = null;
let lastPoll = 0;
let polling = false;
let lastHash = '';
let seenOpen = null; // ids of the open tickets at my level at the last look (null before the first)
let live = null; // the live-updates stream while signed in
let livePollTimer = null;
let pollAgain = false;

// ---- start ---------------------------------------------------------------------------------

function findNode(nodes, id) {
  for (const n of nodes) {
    if (n.id === id) return n;
    const c = findNode(n.children || [], id);
    if (c) return c;
  }
  return null;
}

function scopeFrom(tree, me) {
  const communitiesOf = (street) => (street.children || []).filter((c) => c.kind === 'community');
  const compoundsOf = (community) =>
    (community.children || [])
      .filter((c) => c.kind === 'compound')
      .map((c) => ({ id: c.id, name: c.name, communityId: community.id }));
  let communities = [];
  const unit = me.org_unit ? findNode(tree, me.org_unit.id) : null;
  if (me.role === 'admin') communities = tree.flatMap(communitiesOf);
  else if (unit && unit.kind === 'street') communities = communitiesOf(unit);
  else if (unit && unit.kind === 'community') communities = [unit];
  else if (unit && unit.kind === 'compound') {
    return { communities: [], compounds: [{ id: unit.id, name: unit.name, communityId: null }] };
  }
  return {
    communities: communities.map((c) => ({ id: c.id, name: c.name })),
    compounds: communities.flatMap(compoundsOf),
  };
}

async function enter(me) {
  state.me = me;
  state.level = LEVEL_OF_ROLE[me.role] || null;
  const [cats, tree] = await Promise.all([
    client.get('/categories').catch(() => []),
    client.get('/org/tree').catch(() => []),
  ]);
  state.categories = cats;
  state.tree = tree;
  Object.assign(state, scopeFrom(tree, me));
  $('#me-unit').textContent =
    `${me.org_unit ? me.org_unit.name : label('role', me.role)} · ${me.display_name}`;
  setUnread(me.unread_notifications);
  // Calls are entered by the branches; an administrator enters none.
  $('#nav-intake').classList.toggle('hidden', !state.level);
  await Promise.all([checkArrivals().catch(() => {}), probeCallbacks().catch(() => {})]);
  route();
  startPolling();
  startLive();
}

function leave() {
  stopLive();
  stopPolling();
  state.me = null;
}

/// Nothing of the previous user stays in the page.
function forget() {
  state.fresh.clear();
  state.phones.clear();
  state.backTo = null;
  state.tree = [];
  seenOpen = null;
  resetQueue();
  resetCallbacks();
  $('#main').replaceChildren();
  history.replaceState(null, '', location.pathname);
}

const signIn = passwordSignIn(client, {
  accept: (me) => (me.role === 'resident' ? '此页面供党组织工作人员使用；居民请在首页提交诉求。' : null),
  enter,
  leave,
  forget,
  title: '登录 · 呼应工作台',
});

// ---- routing -------------------------------------------------------------------------------

function route() {
  if (!state.me) return;
  const hash = location.hash.replace(/^#/, '');
  const [path, search] = hash.split('?');
  const parts = path.split('/').filter(Boolean);
  const main = $('#main');
  if (dialogOpen()) $('#action-dialog').close();
  if (parts[0] === 't' && /^\d+$/.test(parts[1] || '')) {
    // A ticket opened from the callback queue goes back there.
    if (view === 'callbacks') state.backTo = lastHash;
    else if (view !== 'ticket') state.backTo = null;
    view = 'ticket';
    showTicket(main, Number(parts[1]));
  } else if (parts[0] === 'new' && state.level) {
    view = 'intake';
    document.title = '代为登记 · 呼应工作台';
    showIntake(main);
  } else if (parts[0] === 'notices') {
    view = 'notices';
    document.title = '通知 · 呼应工作台';
    showNotices(main);
  } else if (parts[0] === 'cb') {
    view = 'callbacks';
    showCallbacks(main, parseCallbacksRoute(parts[1]));
  } else if (parts[0] === 'q') {
    view = 'queue';
    updateTitle();
    showQueue(main, parseQueueRoute(parts[1], search));
  } else {
    history.replaceState(null, '', '#/q/open');
    view = 'queue';
    updateTitle();
    showQueue(main, parseQueueRoute('open', ''));
  }
  lastHash = location.hash;
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function updateTitle() {
  if (view !== 'queue') return;
  const n = state.fresh.size;
  document.title = `${n ? `(${n}) ` : ''}工单队列 · 呼应工作台`;
}

// ---- polling: new tickets without reloading ------------------------------------------------

/// Looks at the newest open tickets at my level; ids not seen before are new arrivals
/// (a new call, or a ticket called up or returned to my level).
async function checkArrivals() {
  if (!state.me) return 0;
  const page = await client.get(
    '/tickets' + qs({ status: 'open', level: state.level || undefined, sort: 'updated', limit: 100 }),
  );
  const first = seenOpen === null;
  const arrived = first ? [] : page.items.filter((t) => !seenOpen.has(t.id));
  // Only what is open now: a ticket that left (acknowledged, called up) and comes back
  // (returned from above, reopened) is new again.
  seenOpen = new Set(page.items.map((t) => t.id));
  if (!arrived.length) return 0;
  for (const t of arrived) state.fresh.add(t.id);
  toast(arrived.length === 1 ? `新工单：${arrived[0].title}` : `新到 ${arrived.length} 件工单`);
  updateTitle();
  return arrived.length;
}

async function poll() {
  if (!state.me || polling) return;
  polling = true;
  lastPoll = Date.now();
  try {
    const [me] = await Promise.allSettled([client.get('/me'), checkArrivals()]);
    if (me.status === 'fulfilled') setUnread(me.value.unread_notifications);
    if (view === 'queue') await refreshQueue();
    else if (view === 'ticket') await pollTicket();
    await refreshCallbacks();
    markFresh();
  } catch (e) {
    /* the next poll tries again */
  } finally {
    polling = false;
    // The stream announced more while this look ran.
    if (pollAgain) {
      pollAgain = false;
      pollSoon();
    }
  }
}

function startPolling() {
  stopPolling();
  lastPoll = Date.now();
  pollTimer = setInterval(() => {
    if (document.visibilityState === 'visible') poll();
  }, POLL_MS);
}

function stopPolling() {
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.me && Date.now() - lastPoll > 3000) poll();
});

// ---- live updates: the stream says when to look, polling is the fallback -------------------

/// A look soon after an event; events during a look bring one more look after it.
function pollSoon() {
  if (livePollTimer) return;
  livePollTimer = setTimeout(async () => {
    livePollTimer = null;
    if (polling) pollAgain = true;
    else await poll();
  }, 150);
}

function startLive() {
  stopLive();
  let dropped = false;
  live = openStream(client, {
    onUp: () => {
      // While the stream is up it says when to look; after a drop, catch up at once.
      stopPolling();
      if (dropped) pollSoon();
    },
    onDown: () => {
      dropped = true;
      startPolling();
    },
    onEvent: (name) => {
      if (name === 'tickets' || name === 'notice' || name === 'resync') pollSoon();
    },
  });
}

function stopLive() {
  if (live) live.stop();
  live = null;
  clearTimeout(livePollTimer);
  livePollTimer = null;
}

// ---- wiring --------------------------------------------------------------------------------

initActionDialog((ticket, action, error) => {
  // A row of 督办 / 待我决定 acts from the queue: the list and its counts follow.
  if (view === 'queue') return refreshQueue();
  if (error) {
    // 409: the ticket changed meanwhile; show what it allows now behind the open dialog.
    if (currentTicketId()) reloadTicket();
    return null;
  }
  // Transferred away from my compound: it is no longer mine to see.
  if (ticket && action === 'transfer' && !state.compounds.some((c) => c.id === ticket.compound.id)) {
    location.hash = lastQueueHash();
    return null;
  }
  if (ticket) return afterAction(ticket);
  return null;
});

setOnRefresh(async () => {
  const arrived = await checkArrivals().catch(() => 0);
  await refreshQueue({ manual: true, quiet: arrived > 0 });
  markFresh();
});

window.addEventListener('hashchange', route);
$('#nav-notices').addEventListener('click', () => (location.hash = '#/notices'));
$('#nav-intake').addEventListener('click', () => (location.hash = '#/new'));
$('#nav-callbacks').addEventListener('click', () => (location.hash = '#/cb/pending'));
setInterval(tickCountdowns, 1000);

signIn.start();
