// Photos picked from the camera or the album: made small enough for a slow connection, shown as
// thumbnails, uploaded one by one with a progress bar (multipart field `file`, ≤ 5 MB, ≤ 9 per
// ticket, JPEG/PNG/WebP — see src/api/attachments.rs).

import { h, errorText } from '/static/common/ui.js';
import { client } from './ctx.js';

export const MAX_PHOTOS = 9;
const MAX_BYTES = 5 * 1024 * 1024;
const OK_TYPES = ['image/jpeg', 'image/png', 'image/webp'];
/// Larger photos are re-encoded (a phone camera's 4 MB JPEG becomes ~400 KB).
const SHRINK_ABOVE = 1.5 * 1024 * 1024;
const MAX_SIDE = 1920;

/// A file ready to upload, or an Error with a zh message.
export async function prepare(file) {
  const typeOk = OK_TYPES.includes(file.type);
  if (!typeOk || file.size > SHRINK_ABOVE) {
    try {
      const bmp = await createImageBitmap(file);
      const scale = Math.min(1, MAX_SIDE / Math.max(bmp.width, bmp.height));
      const canvas = document.createElement('canvas');
      canvas.width = Math.max(1, Math.round(bmp.width * scale));
      canvas.height = Math.max(1, Math.round(bmp.height * scale));
      canvas.getContext('2d').drawImage(bmp, 0, 0, canvas.width, canvas.height);
      if (bmp.close) bmp.close();
      const blob = await new Promise((r) => canvas.toBlob(r, 'image/jpeg', 0.85));
      if (blob && (blob.size < file.size || !typeOk)) {
        const base = (file.name || 'photo').replace(/\.[^.]*$/, '');
        return new File([blob], base + '.jpg', { type: 'image/jpeg' });
      }
    } catch (e) {
      /* the browser cannot decode it: judged below */
    }
  }
  if (!typeOk) throw new Error(`「${file.name}」不是 JPEG、PNG 或 WebP 图片`);
  if (file.size > MAX_BYTES) throw new Error(`「${file.name}」超过 5 MB`);
  return file;
}

/// A set of photos waiting to be uploaded, drawn into `container` as thumbnails.
/// Each item: {file, url, el, bar, state: 'ready'|'uploading'|'done'|'error', error}.
export class PhotoSet {
  constructor(container, { onChange = () => {}, max = MAX_PHOTOS } = {}) {
    this.container = container;
    this.items = [];
    this.onChange = onChange;
    this.max = max;
  }

  get pending() {
    return this.items.filter((p) => p.state !== 'done');
  }

  room() {
    return this.max - this.items.length;
  }

  /// Adds files (from an <input type=file>); returns zh messages of the ones refused.
  async add(files) {
    const problems = [];
    for (const f of Array.from(files)) {
      if (this.room() <= 0) {
        problems.push(`最多上传 ${this.max} 张图片`);
        break;
      }
      // Reserve the slot first so a quick second pick cannot overshoot the limit.
      const item = { file: null, url: null, state: 'preparing', error: null };
      this.items.push(item);
      this.draw(item);
      try {
        item.file = await prepare(f);
        if (!this.items.includes(item)) continue;
        item.url = URL.createObjectURL(item.file);
        item.state = 'ready';
        this.draw(item);
      } catch (e) {
        problems.push(e.message);
        this.remove(item);
      }
    }
    this.onChange();
    return problems;
  }

  remove(item) {
    const i = this.items.indexOf(item);
    if (i >= 0) this.items.splice(i, 1);
    if (item.url) URL.revokeObjectURL(item.url);
    if (item.el) item.el.remove();
    this.onChange();
  }

  clear() {
    for (const p of [...this.items]) this.remove(p);
  }

  /// (Re)draws one thumbnail in place.
  draw(item) {
    const label =
      item.state === 'preparing'
        ? '处理中…'
        : item.state === 'uploading'
          ? '上传中'
          : item.state === 'done'
            ? '已上传'
            : item.state === 'error'
              ? '上传失败'
              : '';
    const bar = h('div.bar', h('div.fill', { style: { width: Math.round((item.progress || 0) * 100) + '%' } }));
    const el = h(
      'div.thumb',
      { class: 'thumb ' + item.state, 'data-state': item.state },
      item.url ? h('img', { src: item.url, alt: '待上传的图片' }) : h('div.ph'),
      item.state === 'uploading' || item.state === 'done' || item.state === 'error'
        ? h('div.progress', {
            role: 'progressbar',
            'aria-valuemin': '0',
            'aria-valuemax': '100',
            'aria-valuenow': String(Math.round((item.progress || 0) * 100)),
          }, bar)
        : null,
      label ? h('span.state', label) : null,
      (item.state === 'ready' || item.state === 'error')
        ? h('button.remove', { type: 'button', 'aria-label': '删除这张图片', onclick: () => this.remove(item) }, '×')
        : null,
    );
    item.bar = bar;
    if (item.el && item.el.parentNode) item.el.replaceWith(el);
    else this.container.appendChild(el);
    item.el = el;
  }

  progress(item, fraction) {
    item.progress = fraction;
    const fill = item.bar && item.bar.firstChild;
    if (fill) fill.style.width = Math.round(fraction * 100) + '%';
    const pb = item.el && item.el.querySelector('[role=progressbar]');
    if (pb) pb.setAttribute('aria-valuenow', String(Math.round(fraction * 100)));
  }

  /// Uploads every photo not yet uploaded to ticket `id`; resolves to the number that failed.
  async upload(id) {
    let known = null;
    if (this.items.some((p) => p.state === 'error')) {
      // A retry after a network error: a photo the server already stored is not sent twice.
      try {
        known = await client.get(`/tickets/${id}/attachments`);
      } catch (e) {
        known = null;
      }
    }
    let failed = 0;
    for (const item of this.items) {
      if (item.state === 'done' || !item.file) continue;
      if (
        known &&
        item.state === 'error' &&
        known.some((a) => a.original_name === item.file.name && a.size_bytes === item.file.size)
      ) {
        item.state = 'done';
        item.progress = 1;
        this.draw(item);
        continue;
      }
      item.state = 'uploading';
      item.progress = 0;
      this.draw(item);
      const form = new FormData();
      form.append('file', item.file, item.file.name || 'photo.jpg');
      try {
        await client.upload(`/tickets/${id}/attachments`, form, (f) => this.progress(item, f));
        item.state = 'done';
        item.progress = 1;
      } catch (e) {
        item.state = 'error';
        item.error = errorText(e);
        failed += 1;
        if (e.code === 'too_many_attachments') {
          this.draw(item);
          break;
        }
      }
      this.draw(item);
    }
    this.onChange();
    return failed;
  }
}
