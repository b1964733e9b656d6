// The zh-CN words of every closed set (statuses, levels, actions, event kinds, reasons, roles…),
// as the server declares them: GET /api/v1/meta/labels. Each page loads them once before it
// shows anything, so no page keeps a copy of its own that could drift from the others.

let labels = null;
let loading = null;

/// Loads the labels (once; a failed load is tried again on the next call).
export function loadLabels() {
  if (labels) return Promise.resolve(labels);
  if (!loading) {
    loading = fetch('/api/v1/meta/labels')
      .then((res) => {
        if (!res.ok) throw new Error(`无法加载页面文字，请稍后重试 (HTTP ${res.status})`);
        return res.json();
      })
      .then((json) => {
        labels = json;
        return json;
      })
      .catch((e) => {
        loading = null;
        throw e instanceof TypeError ? new Error('网络连接失败，请检查网络后重试 (network error)') : e;
      });
  }
  return loading;
}

/// The word for `value` in `set` ('status', 'level', 'action', 'event_kind', 'role', …); the value
/// itself when the set has no such value, '' for none.
export function label(set, value) {
  if (value === null || value === undefined || value === '') return '';
  return labels?.[set]?.[value] ?? String(value);
}

/// Whether `set` has a word for `value`.
export function hasLabel(set, value) {
  return !!labels?.[set] && Object.prototype.hasOwnProperty.call(labels[set], value);
}

/// [[value, word]] of a set, for a <select>. The server's maps come in alphabetical order;
/// `first` puts the values a page wants on top in its own order, and `other` always goes last.
export function options(set, first = []) {
  const entries = Object.entries(labels?.[set] || {});
  const rank = (v) => {
    if (v === 'other') return first.length + 1;
    const i = first.indexOf(v);
    return i < 0 ? first.length : i;
  };
  // Array.prototype.sort is stable, so the rest keep the server's order.
  return entries.sort(([a], [b]) => rank(a) - rank(b));
}

/// The word of a coded timeline reason: an escalation reason or one the system writes.
/// Null for free text (a decline's reason) and for `user:ID` / `rating:N`.
export function reasonLabel(code) {
  if (hasLabel('escalation_reason', code)) return label('escalation_reason', code);
  if (hasLabel('system_reason', code)) return label('system_reason', code);
  return null;
}
