// 我要反映: the new request form. The form is built once and kept while the resident moves
// around the page, so nothing typed is lost; a draft also survives a reload (sessionStorage).

import { h, toast, errorText } from '/static/common/ui.js';
import { label } from '/static/common/labels.js';
import { client, orgTree, categories, compoundsOf, newKey } from './ctx.js';
import { PhotoSet, MAX_PHOTOS } from './photos.js';
import { coordsText, geoErrorText, accuracyText } from '/static/common/geo.js';

const PLACE_KEY = 'huying.resident.place';
const DRAFT_KEY = 'huying.resident.draft';

let form = null; // the built view, reused
let st = null; // its state

function loadJson(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) || 'null');
  } catch (e) {
    return null;
  }
}

export function forgetDraft() {
  sessionStorage.removeItem(DRAFT_KEY);
  if (st) st.photos.clear();
  form = null;
  st = null;
}

/// Called when the resident signs out: nothing of theirs stays in the page.
export function resetOnSignOut() {
  forgetDraft();
  localStorage.removeItem(PLACE_KEY);
}

export async function newRequestView() {
  if (form) return form;
  const [tree, cats] = await Promise.all([orgTree(), categories()]);
  form = build(compoundsOf(tree), cats);
  return form;
}

function build(compounds, cats) {
  const place = loadJson(localStorage, PLACE_KEY) || {};
  const draft = loadJson(sessionStorage, DRAFT_KEY) || {};

  // Compounds grouped by community (and street when there are several).
  const streets = new Set(compounds.map((c) => c.street));
  const groups = new Map();
  for (const c of compounds) {
    const g = streets.size > 1 ? `${c.street} · ${c.community}` : c.community;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(c);
  }
  const compound = h(
    'select#compound',
    { name: 'compound', required: true, 'aria-describedby': 'compound-hint' },
    h('option', { value: '' }, '请选择您所在的小区'),
    [...groups].map(([g, list]) =>
      h('optgroup', { label: g }, list.map((c) => h('option', { value: String(c.id) }, c.name))),
    ),
  );
  const building = h('select#building', { name: 'building' });
  const category = h(
    'select#category',
    { name: 'category', required: true },
    h('option', { value: '' }, '请选择诉求类别'),
    cats.map((c) => h('option', { value: String(c.id) }, c.name)),
  );
  const urgency = h(
    'select#urgency',
    { name: 'urgency' },
    h('option', { value: 'normal' }, label('urgency', 'normal')),
    h('option', { value: 'urgent' }, `${label('urgency', 'urgent')}（如漏水、停电、安全隐患）`),
  );
  const title = h('input#title', {
    name: 'title',
    type: 'text',
    maxlength: '80',
    required: true,
    autocomplete: 'off',
    placeholder: '一句话说明问题，如：3栋楼道灯不亮',
  });
  const description = h('textarea#description', {
    name: 'description',
    maxlength: '2000',
    required: true,
    rows: 5,
    placeholder: '请描述具体情况：发生在哪里、持续多久、影响了谁……',
  });
  const where = h('input#location', {
    name: 'location',
    type: 'text',
    maxlength: '200',
    autocomplete: 'off',
    placeholder: '选填，如：2单元门口、地下车库B区',
  });
  // 使用我的位置: the browser asks for consent only when the resident taps the button.
  const geoButton = h('button#use-location', { type: 'button' }, '使用我的位置');
  const geoText = h('span#geo-text');
  const geoRemove = h('button#geo-remove', { type: 'button', 'aria-label': '移除位置' }, '移除');
  const geoShown = h('div#geo-result.geo-result.hidden', geoText, geoRemove);
  const geoStatus = h('p#geo-status.hint', { 'aria-live': 'polite' });
  // A resident reporting a neighbour may not want the compound's branch to know who called.
  const hide = h('input#hide-identity', { type: 'checkbox', name: 'hide_identity' });
  const descCount = h('span.hint.counter', '0/2000');
  const thumbs = h('div#thumbs.thumbs', { 'aria-live': 'polite' });
  const photoCount = h('span.hint', `0/${MAX_PHOTOS}`);
  const photos = h('input#photos', {
    type: 'file',
    name: 'photos',
    multiple: true,
    accept: 'image/*',
    'aria-label': '添加图片（拍照或从相册选择）',
  });
  const submit = h('button#submit.primary.block', { type: 'submit' }, '提交诉求');
  const status = h('div#submit-status.hint', { 'aria-live': 'polite' });
  const skip = h(
    'button#submit-skip.block.hidden',
    { type: 'button', onclick: () => finish(true) },
    '不再上传，查看我的诉求',
  );

  const S = {
    ticket: null, // created ticket (after the POST succeeded)
    key: null, // Idempotency-Key of the pending create
    keyBody: null, // the body it was used with
    busy: false,
    geo: null, // {latitude, longitude, accuracy_m} once the resident chose to send it
    photos: new PhotoSet(thumbs, {
      onChange: () => {
        const n = S.photos ? S.photos.items.length : 0;
        photoCount.textContent = `${n}/${MAX_PHOTOS}`;
        photos.disabled = n >= MAX_PHOTOS;
      },
    }),
  };

  st = S;

  function fillBuildings() {
    const c = compounds.find((x) => String(x.id) === compound.value);
    const list = c ? c.buildings : [];
    building.replaceChildren(
      h('option', { value: '' }, list.length ? '不指定楼栋' : c ? '该小区未登记楼栋' : '请先选择小区'),
      ...list.map((b) => h('option', { value: String(b.id) }, b.name)),
    );
    building.disabled = list.length === 0;
  }
  compound.addEventListener('change', () => {
    fillBuildings();
    clearError(compound);
    saveDraft();
  });

  // Restore: the draft first, else the last place used.
  const want = draft.compound || (place.compound_id ? String(place.compound_id) : '');
  if (want && compounds.some((c) => String(c.id) === want)) compound.value = want;
  fillBuildings();
  const wantB = draft.compound ? draft.building : place.building_id ? String(place.building_id) : '';
  if (wantB && [...building.options].some((o) => o.value === wantB)) building.value = wantB;
  if (draft.category && [...category.options].some((o) => o.value === draft.category)) category.value = draft.category;
  if (draft.urgency) urgency.value = draft.urgency;
  title.value = draft.title || '';
  description.value = draft.description || '';
  where.value = draft.location || '';
  hide.checked = !!draft.hide_identity;
  if (draft.geo && typeof draft.geo.latitude === 'number') showGeo(draft.geo);

  function showGeo(g) {
    S.geo = g;
    geoText.textContent = g ? coordsText(g) : '';
    geoShown.classList.toggle('hidden', !g);
    geoButton.textContent = g ? '重新定位' : '使用我的位置';
  }
  geoRemove.addEventListener('click', () => {
    showGeo(null);
    geoStatus.textContent = '已移除位置，提交时不带定位。';
    saveDraft();
  });
  geoButton.addEventListener('click', () => {
    if (!('geolocation' in navigator)) {
      geoStatus.textContent = '此浏览器不支持定位；请选择小区、楼栋并填写具体位置。';
      return;
    }
    geoButton.disabled = true;
    geoStatus.textContent = '正在获取位置…（浏览器会询问是否允许）';
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        geoButton.disabled = false;
        const c = pos.coords;
        const acc = Math.max(1, Math.round(c.accuracy));
        if (!Number.isFinite(c.latitude) || !Number.isFinite(c.longitude) || !(acc <= 100000)) {
          geoStatus.textContent = `定位误差太大（约 ${accuracyText(c.accuracy)}），未采用；请填写具体位置。`;
          return;
        }
        showGeo({
          latitude: Math.round(c.latitude * 1e6) / 1e6,
          longitude: Math.round(c.longitude * 1e6) / 1e6,
          accuracy_m: acc,
        });
        geoStatus.textContent = '已获取位置，将随诉求一同提交。';
        saveDraft();
      },
      (err) => {
        geoButton.disabled = false;
        geoStatus.textContent = geoErrorText(err);
      },
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 },
    );
  });
  descCount.textContent = `${[...description.value].length}/2000`;

  function saveDraft() {
    sessionStorage.setItem(
      DRAFT_KEY,
      JSON.stringify({
        compound: compound.value,
        building: building.value,
        category: category.value,
        urgency: urgency.value,
        title: title.value,
        description: description.value,
        location: where.value,
        hide_identity: hide.checked,
        geo: S.geo,
      }),
    );
  }
  hide.addEventListener('change', saveDraft);
  for (const el of [building, category, urgency, title, description, where]) {
    el.addEventListener('input', () => {
      clearError(el);
      saveDraft();
    });
    el.addEventListener('change', saveDraft);
  }
  description.addEventListener('input', () => {
    descCount.textContent = `${[...description.value].length}/2000`;
  });

  photos.addEventListener('change', async () => {
    const files = Array.from(photos.files || []);
    photos.value = '';
    if (!files.length) return;
    const problems = await S.photos.add(files);
    if (problems.length) toast([...new Set(problems)].join('；'), 'error');
  });

  function fieldError(el, msg) {
    el.setAttribute('aria-invalid', 'true');
    const id = el.id + '-error';
    let m = document.getElementById(id);
    if (!m) {
      m = h('div.field-error', { id });
      el.insertAdjacentElement('afterend', m);
    }
    m.textContent = msg;
  }
  function clearError(el) {
    el.removeAttribute('aria-invalid');
    const m = document.getElementById(el.id + '-error');
    if (m) m.remove();
  }

  function validate() {
    let first = null;
    const need = (el, ok, msg) => {
      if (!ok) {
        fieldError(el, msg);
        first = first || el;
      }
    };
    need(compound, compound.value !== '', '请选择小区');
    need(category, category.value !== '', '请选择诉求类别');
    need(title, title.value.trim() !== '', '请填写标题');
    need(description, description.value.trim() !== '', '请描述具体情况');
    if (first) {
      first.focus();
      first.scrollIntoView({ block: 'center' });
    }
    return !first;
  }

  function lockFields(on) {
    for (const el of [compound, building, category, urgency, title, description, where, hide, geoButton, geoRemove])
      el.disabled = on;
    if (!on) building.disabled = building.options.length <= 1;
  }

  async function onSubmit(e) {
    e.preventDefault();
    if (S.busy) return;
    if (!S.ticket && !validate()) return;
    S.busy = true;
    submit.disabled = true;
    const oldToast = document.getElementById('toast');
    if (oldToast) oldToast.classList.remove('show');
    skip.classList.add('hidden');
    try {
      if (!S.ticket) {
        submit.textContent = '正在提交…';
        const body = {
          compound_id: Number(compound.value),
          building_id: building.value ? Number(building.value) : null,
          category_id: Number(category.value),
          urgency: urgency.value,
          title: title.value.trim(),
          description: description.value.trim(),
        };
        const loc = {};
        if (where.value.trim()) loc.text = where.value.trim();
        if (S.geo) Object.assign(loc, S.geo);
        if (Object.keys(loc).length) body.location = loc;
        if (hide.checked) body.hide_identity = true;
        const bodyJson = JSON.stringify(body);
        // The same request retried (after a network error) keeps its key, so the server answers
        // with the ticket it already made instead of a second one.
        if (!S.key || S.keyBody !== bodyJson) {
          S.key = newKey();
          S.keyBody = bodyJson;
        }
        S.ticket = await client.post('/tickets', body, { 'Idempotency-Key': S.key });
        localStorage.setItem(
          PLACE_KEY,
          JSON.stringify({ compound_id: body.compound_id, building_id: body.building_id }),
        );
        lockFields(true);
      }
      if (S.photos.pending.length) {
        submit.textContent = '正在上传图片…';
        status.textContent = `诉求已提交（编号 ${S.ticket.reference}），正在上传图片…`;
        const failed = await S.photos.upload(S.ticket.id);
        if (failed) {
          status.textContent = `诉求已提交（编号 ${S.ticket.reference}），有 ${failed} 张图片上传失败。`;
          toast(`有 ${failed} 张图片上传失败，可点“重新上传”再试`, 'error');
          submit.textContent = '重新上传';
          skip.classList.remove('hidden');
          return;
        }
      }
      finish(false);
    } catch (err) {
      // Nothing typed is lost: the fields keep their values.
      toast(errorText(err), 'error');
      if (err.details && Array.isArray(err.details.fields)) {
        for (const f of err.details.fields) {
          const el = { title, description, compound_id: compound, category_id: category }[f.field];
          if (el) fieldError(el, f.message || '');
        }
      }
      submit.textContent = S.ticket ? '重新上传' : '提交诉求';
    } finally {
      S.busy = false;
      submit.disabled = false;
    }
  }

  function finish(skipped) {
    const t = S.ticket;
    if (!t) return;
    toast(skipped ? `诉求已提交，编号 ${t.reference}` : `提交成功，编号 ${t.reference}`);
    forgetDraft();
    window.location.hash = `#/t/${t.id}`;
  }

  const view = h(
    'form#new-request.stack',
    { novalidate: true, onsubmit: onSubmit },
    h(
      'section.card',
      h('h2', '您在哪里？'),
      h('label', { for: 'compound' }, '小区'),
      compound,
      h('p.hint#compound-hint', '诉求会先送到该小区的党支部'),
      h('label', { for: 'building' }, '楼栋（选填）'),
      building,
      h('label', { for: 'location' }, '具体位置（选填）'),
      where,
      h('div.geo-row', geoButton, h('span.hint', '选填；点击后浏览器会询问是否允许获取位置')),
      geoShown,
      geoStatus,
      h(
        'label.checkbox',
        { for: 'hide-identity' },
        hide,
        h('span', `对${label('level', 'compound')}隐藏我的身份（如举报邻居）`),
      ),
      h('p.hint#hide-identity-hint', '勾选后小区党支部看不到您的姓名和电话，社区、街道仍可联系您。'),
    ),
    h(
      'section.card',
      h('h2', '遇到了什么问题？'),
      h('label', { for: 'category' }, '类别'),
      category,
      h('label', { for: 'urgency' }, '紧急程度'),
      urgency,
      h('label', { for: 'title' }, '标题'),
      title,
      h('div.label-row', h('label', { for: 'description' }, '详细描述'), descCount),
      description,
    ),
    h(
      'section.card',
      h('div.label-row', h('label', { for: 'photos' }, '图片（选填，最多 9 张）'), photoCount),
      h('p.hint', '可拍照或从相册选择，大图会自动压缩。'),
      photos,
      thumbs,
    ),
    h('div.submit-bar', status, submit, skip),
  );
  return view;
}
