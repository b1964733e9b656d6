// Coordinates as people read them, and the Web Mercator tile arithmetic of the small static map
// (staff ticket page). No map library and nothing fetched unless a tile server is configured.

/// "北纬 23.129100°，东经 113.264400°（误差约 ±18 米）"
export function coordsText(loc) {
  if (!loc || typeof loc.latitude !== 'number' || typeof loc.longitude !== 'number') return '';
  const lat = loc.latitude;
  const lon = loc.longitude;
  const ns = lat >= 0 ? '北纬' : '南纬';
  const ew = lon >= 0 ? '东经' : '西经';
  let s = `${ns} ${Math.abs(lat).toFixed(6)}°，${ew} ${Math.abs(lon).toFixed(6)}°`;
  if (typeof loc.accuracy_m === 'number') s += `（误差约 ±${accuracyText(loc.accuracy_m)}）`;
  return s;
}

export function accuracyText(m) {
  return m >= 1000 ? `${(m / 1000).toFixed(1)} 公里` : `${Math.round(m)} 米`;
}

/// The zh-CN message for a failed navigator.geolocation call.
export function geoErrorText(err) {
  switch (err && err.code) {
    case 1:
      return '未获得位置权限。如需使用，请在浏览器设置中允许本网站访问位置；不使用定位也可以照常提交。';
    case 2:
      return '暂时无法获取位置，请确认手机已打开定位服务后再试；不使用定位也可以照常提交。';
    case 3:
      return '获取位置超时，请稍后再试；不使用定位也可以照常提交。';
    default:
      return '无法获取位置；不使用定位也可以照常提交。';
  }
}

/// Fractional Web Mercator tile coordinates of a point at zoom z.
export function tileOf(lat, lon, z) {
  const n = 2 ** z;
  const clamped = Math.max(-85.05112878, Math.min(85.05112878, lat));
  const rad = (clamped * Math.PI) / 180;
  const x = ((lon + 180) / 360) * n;
  const y = ((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n;
  return { x, y };
}

/// The URL of tile (z, x, y) from a template with {z}, {x}, {y}.
export function tileUrl(template, z, x, y) {
  return template.replaceAll('{z}', String(z)).replaceAll('{x}', String(x)).replaceAll('{y}', String(y));
}

let mapMeta = null;
let mapLoading = null;

/// The configured map tile server, {tile_url, attribution} (nulls when none): GET /meta/map,
/// loaded once; a failed load counts as none and is tried again next time.
export function loadMapMeta() {
  if (mapMeta) return Promise.resolve(mapMeta);
  if (!mapLoading) {
    mapLoading = fetch('/api/v1/meta/map')
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null)
      .then((m) => {
        mapLoading = null;
        if (m) mapMeta = m;
        return m || { tile_url: null, attribution: null };
      });
  }
  return mapLoading;
}

const TILE = 256;
export const MAP_ZOOM = 16;

/// A small static map: the 3×3 tiles around the point at MAP_ZOOM, the point centred in a frame
/// at most 512 px wide, a marker and the accuracy circle. `h` is the page's element helper.
export function staticMap(h, meta, loc) {
  const z = MAP_ZOOM;
  const n = 2 ** z;
  const p = tileOf(loc.latitude, loc.longitude, z);
  const cx = Math.floor(p.x);
  const cy = Math.floor(p.y);
  const gx = (p.x - (cx - 1)) * TILE;
  const gy = (p.y - (cy - 1)) * TILE;
  const tiles = [];
  for (let dy = -1; dy <= 1; dy++) {
    for (let dx = -1; dx <= 1; dx++) {
      const y = cy + dy;
      if (y < 0 || y >= n) continue;
      const x = (((cx + dx) % n) + n) % n;
      const img = h('img.map-tile', {
        src: tileUrl(meta.tile_url, z, x, y),
        alt: '',
        draggable: 'false',
        referrerpolicy: 'no-referrer',
        style: { left: `${(dx + 1) * TILE}px`, top: `${(dy + 1) * TILE}px` },
      });
      img.addEventListener('error', () => img.classList.add('failed'));
      tiles.push(img);
    }
  }
  const grid = h('div.map-grid', { style: { left: `calc(50% - ${gx}px)`, top: `calc(50% - ${gy}px)` } }, tiles);
  const marks = [];
  if (typeof loc.accuracy_m === 'number') {
    const metresPerPixel = (156543.03392 * Math.cos((loc.latitude * Math.PI) / 180)) / n;
    const r = loc.accuracy_m / metresPerPixel;
    if (r >= 4 && r <= 400) {
      marks.push(h('div.map-accuracy', { style: { width: `${2 * r}px`, height: `${2 * r}px` } }));
    }
  }
  marks.push(h('div.map-marker', { title: coordsText(loc) }));
  return h(
    'figure#ticket-map.static-map',
    h('div.map-frame', { role: 'img', 'aria-label': `地图：${coordsText(loc)}` }, grid, marks),
    meta.attribution ? h('figcaption.hint.map-attribution', meta.attribution) : null,
  );
}
