// 代为登记: a call that reached the branch by phone, at the desk, on a visit or from the 12345
// hotline, entered on the resident's behalf; or a problem the branch found itself
// (POST /tickets with `source`). The new ticket opens once it is made.

import { h, mount, toast, errorText } from '/static/common/ui.js';
import { label, options } from '/static/common/labels.js';
import { client, state, newKey } from './shared.js';
import { lastQueueHash } from './queue.js';

/// The sources a secretary enters (`app` is the resident's own call).
const STAFF_SOURCES = ['phone', 'desk', 'visit', 'hotline', 'own_finding'];
const PHONE_RE = /^(\+?86)?1[3-9]\d{9}$/;

let pending = null; // {key, body}: a retried submit of the same form keeps its Idempotency-Key

function field(id, caption, control, { required = false, hint = null } = {}) {
  return h(
    'div.field',
    { id: `${id}-field` },
    h('label', { for: id }, caption, required ? h('span.req', ' *') : null),
    control,
    hint ? h('p.hint', hint) : null,
  );
}

export function showIntake(main) {
  const sources = options('source', STAFF_SOURCES).filter(([v]) => STAFF_SOURCES.includes(v));
  const source = h(
    'select#intake-source',
    { name: 'source', required: true },
    sources.map(([v, text]) => h('option', { value: v }, text)),
  );
  const phone = h('input#intake-phone', {
    type: 'tel',
    inputmode: 'numeric',
    maxlength: '16',
    autocomplete: 'off',
    placeholder: '居民的 11 位手机号',
  });
  const name = h('input#intake-name', { type: 'text', maxlength: '40', autocomplete: 'off', placeholder: '选填' });
  const ref = h('input#intake-ref', { type: 'text', maxlength: '64', autocomplete: 'off', placeholder: '如 12345 热线工单号' });

  // Compounds in my scope, by community when there are several.
  const byCommunity = new Map();
  for (const c of state.compounds) {
    const community = state.communities.find((x) => x.id === c.communityId);
    const key = community ? community.name : '';
    if (!byCommunity.has(key)) byCommunity.set(key, []);
    byCommunity.get(key).push(c);
  }
  const compoundOptions = (list) => list.map((c) => h('option', { value: String(c.id) }, c.name));
  const compound = h(
    'select#intake-compound',
    { name: 'compound_id', required: true },
    state.compounds.length === 1 ? null : h('option', { value: '' }, '请选择小区'),
    byCommunity.size > 1
      ? [...byCommunity].map(([g, list]) => h('optgroup', { label: g }, compoundOptions(list)))
      : compoundOptions(state.compounds),
  );
  const category = h(
    'select#intake-category',
    { name: 'category_id', required: true },
    h('option', { value: '' }, '请选择诉求类别'),
    state.categories.map((c) => h('option', { value: String(c.id) }, c.name)),
  );
  const urgency = h(
    'select#intake-urgency',
    { name: 'urgency' },
    options('urgency', ['normal', 'urgent']).map(([v, text]) => h('option', { value: v }, text)),
  );
  const title = h('input#intake-title', {
    type: 'text',
    maxlength: '80',
    autocomplete: 'off',
    placeholder: '一句话说明问题，如：3栋楼道灯不亮',
  });
  const description = h('textarea#intake-description', {
    maxlength: '2000',
    rows: 5,
    placeholder: '居民反映的具体情况：发生在哪里、持续多久、影响了谁……',
  });
  const where = h('input#intake-location', { type: 'text', maxlength: '200', autocomplete: 'off', placeholder: '选填，如：2单元门口' });
  const hide = h('input#intake-hide', { type: 'checkbox', name: 'hide_identity' });
  const error = h('p#intake-error.form-error', { role: 'alert' });
  const submit = h('button#intake-submit.primary', { type: 'submit' }, '登记并打开工单');

  const phoneField = field('intake-phone', '居民手机号', phone, { required: true });
  const nameField = field('intake-name', '居民姓名（选填）', name);
  const refField = field('intake-ref', '外部编号', ref, { required: true, hint: '热线转办须填写热线工单号' });
  const hideField = h(
    'div.field.check#intake-hide-field',
    h('label.checkbox', { for: 'intake-hide' }, hide, ` 对${label('level', 'compound')}隐藏居民身份（如举报邻居）`),
  );
  const ownHint = h(
    'p.hint#intake-own-hint',
    `自查发现的问题不需要居民信息，由本单位（${label('level', state.level) || '本级'}）跟踪并确认办结。`,
  );

  function sync() {
    const own = source.value === 'own_finding';
    phoneField.classList.toggle('hidden', own);
    nameField.classList.toggle('hidden', own);
    refField.classList.toggle('hidden', source.value !== 'hotline');
    // The compound secretary hides nothing from itself; an own finding has no resident.
    hideField.classList.toggle('hidden', own || state.level === 'compound');
    ownHint.classList.toggle('hidden', !own);
  }
  source.addEventListener('change', sync);
  sync();

  function body() {
    const b = {
      compound_id: Number(compound.value),
      category_id: Number(category.value),
      urgency: urgency.value,
      title: title.value.trim(),
      description: description.value.trim(),
      source: source.value,
    };
    if (where.value.trim()) b.location = { text: where.value.trim() };
    if (source.value !== 'own_finding') {
      b.resident_phone = phone.value.replace(/[\s-]/g, '');
      if (name.value.trim()) b.resident_name = name.value.trim();
      if (hide.checked && !hideField.classList.contains('hidden')) b.hide_identity = true;
    }
    if (source.value === 'hotline') b.external_ref = ref.value.trim();
    return b;
  }

  function problem() {
    const own = source.value === 'own_finding';
    if (!own && !PHONE_RE.test(phone.value.replace(/[\s-]/g, ''))) return [phone, '请填写居民正确的 11 位手机号'];
    if (source.value === 'hotline' && !ref.value.trim()) return [ref, '热线转办须填写外部编号'];
    if (!compound.value) return [compound, '请选择小区'];
    if (!category.value) return [category, '请选择诉求类别'];
    if (!title.value.trim()) return [title, '请填写标题'];
    if (!description.value.trim()) return [description, '请填写具体情况'];
    return null;
  }

  async function onSubmit(e) {
    e.preventDefault();
    if (submit.disabled) return;
    const p = problem();
    if (p) {
      error.textContent = p[1];
      p[0].focus();
      return;
    }
    error.textContent = '';
    const b = body();
    const json = JSON.stringify(b);
    if (!pending || pending.body !== json) pending = { key: newKey(), body: json };
    submit.disabled = true;
    submit.textContent = '正在登记…';
    try {
      const t = await client.post('/tickets', b, { 'Idempotency-Key': pending.key });
      pending = null;
      toast(`已登记，编号 ${t.reference}`);
      location.hash = `#/t/${t.id}`;
    } catch (ex) {
      // Keep what was typed; say why.
      error.textContent = errorText(ex);
    } finally {
      submit.disabled = false;
      submit.textContent = '登记并打开工单';
    }
  }

  mount(
    main,
    h(
      'section.intake-view',
      h(
        'div.ticket-nav',
        h('button#back', { type: 'button', onclick: () => (location.hash = lastQueueHash()) }, '← 返回队列'),
        h('h2.grow', '代为登记'),
      ),
      h(
        'form#intake-form.card.intake',
        { novalidate: true, onsubmit: onSubmit },
        h('p.hint', '居民通过电话、窗口、走访或热线反映的诉求，由您代为登记；居民可凭手机号登录查看进度。'),
        h(
          'div.intake-grid',
          field('intake-source', '来源', source, { required: true }),
          refField,
          phoneField,
          nameField,
          field('intake-compound', '小区', compound, { required: true }),
          field('intake-category', '类别', category, { required: true }),
          field('intake-urgency', '紧急程度', urgency),
          field('intake-location', '具体位置（选填）', where),
        ),
        ownHint,
        field('intake-title', '标题', title, { required: true }),
        field('intake-description', '详细描述', description, { required: true }),
        hideField,
        error,
        h('div.dialog-buttons', submit),
      ),
    ),
  );
  source.focus();
}
