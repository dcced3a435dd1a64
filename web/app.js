/* web/app.js: the search page's behaviour (docs/web.md). Talks only to the
 * JSON API of the server that served it: /api/info, /api/random, /api/tags,
 * /api/upload and /api/search; images from /thumb/ID and /img/ID.
 *
 * Every search is numbered (seq) and an answer is shown only if it is newer
 * than the one on screen, so while the slider is dragged (requests debounced
 * by 60 ms) the last answer wins whatever order the answers arrive in.
 * No framework and no build step: plain DOM. */
'use strict';

(function () {
  const $ = (sel) => document.querySelector(sel);
  const SLIDER_DEBOUNCE_MS = 60;
  const COMPLETE_DEBOUNCE_MS = 100;

  const state = {
    info: null,
    image: null,        // {id, tags, image} | {upload, url, name} | null
    keywords: [],       // positive keywords, in order
    negatives: [],      // negative keywords
    unknown: new Set(), // keywords the index does not know (from the server's warnings)
    seen: new Map(),    // lower-case tag -> tag, from completions: the vocabulary seen so far
    seq: 0,             // number of the last request sent
    shown: 0,           // number of the answer on screen
    pickerIds: [],
  };

  // The browser keeps 250 resource timings by default; thumbnails would push
  // the searches out, and the slider's latency is read from these entries.
  if (performance.setResourceTimingBufferSize) performance.setResourceTimingBufferSize(20000);

  /* ---- helpers -------------------------------------------------------------- */

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }

  function debounce(fn, ms) {
    let t = null;
    return (...args) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...args), ms);
    };
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || ('HTTP ' + status));
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ credentials: 'same-origin' }, opts || {}));
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok || !body || body.ok === false) throw new ApiError(r.status, body);
    return body;
  }

  function thumbUrl(id) { return '/thumb/' + encodeURIComponent(id); }

  function setStatus(text, isError) {
    const s = $('#status');
    s.textContent = text;
    s.classList.toggle('error', !!isError);
  }

  function banner(text) {
    const b = $('#banner');
    b.hidden = !text;
    b.textContent = text || '';
  }

  /* ---- info and the picker ---------------------------------------------------- */

  async function loadInfo() {
    try {
      const info = await api('/api/info');
      state.info = info;
      const sp = info.splits || {};
      $('#dataset').title = info.source || '';
      $('#dataset').textContent = `${info.dataset}: ${info.images} images (train ${sp.train}, ` +
        `test ${sp.test}), ${info.tags} tags` + (info.has_images ? '' : '; no image files (tags shown instead)');
      document.body.classList.toggle('no-images', !info.has_images);
      document.body.classList.toggle('no-upload', !info.jpeg_upload);
      $('#upload').disabled = !info.jpeg_upload;
      banner(info.server && !info.server.reachable
        ? 'The query server is not reachable: ' + (info.server.error || '') : '');
    } catch (e) {
      $('#dataset').textContent = 'Cannot load /api/info: ' + e.message;
    }
  }

  async function loadPicker() {
    const picker = $('#picker');
    try {
      const test = state.info && state.info.splits && state.info.splits.test > 0;
      const r = await api(`/api/random?n=24&split=${test ? 'test' : 'all'}`);
      picker.replaceChildren();
      state.pickerIds = r.images.map((x) => x.id);
      for (const im of r.images) {
        const label = `Image ${im.id}` + (im.tags.length ? ': ' + im.tags.join(', ') : '');
        const inner = im.image
          ? el('img', { src: thumbUrl(im.id), alt: '', loading: 'lazy', decoding: 'async' })
          : el('span', { class: 'tagtext', text: im.tags.join(', ') || im.id });
        const b = el('button', {
          type: 'button', 'aria-label': label, title: label, 'data-id': im.id,
          'aria-pressed': state.image && state.image.id === im.id ? 'true' : 'false',
          onclick: () => selectImage(im),
        }, inner);
        picker.append(b);
      }
    } catch (e) {
      picker.replaceChildren(el('p', { class: 'hint', text: 'Cannot load images: ' + e.message }));
    }
  }

  function markPicker() {
    for (const b of document.querySelectorAll('#picker button'))
      b.setAttribute('aria-pressed', state.image && state.image.id === b.dataset.id ? 'true' : 'false');
  }

  // the query image's panel; on selection, and when a search tells its tags
  function renderQuery() {
    const cur = $('#current');
    cur.replaceChildren();
    const im = state.image;
    if (!im) {
      cur.append(el('p', { class: 'hint', text: 'No query image: keywords only.' }));
    } else if (im.upload) {
      cur.append(el('img', { src: im.url, alt: 'Uploaded query image ' + im.name }),
        el('div', { class: 'meta' }, el('p', { text: 'Uploaded: ' + im.name })));
    } else {
      const meta = el('div', { class: 'meta' }, el('p', {}, el('strong', { text: 'Image ' + im.id })));
      if (im.tags) meta.append(el('p', { text: 'Its tags: ' + (im.tags.join(', ') || 'none') }));
      if (im.image) cur.append(el('img', { src: thumbUrl(im.id), alt: 'Query image ' + im.id }));
      cur.append(meta);
    }
  }

  // the query image's predicted tags, re-rendered only when they change (the
  // slider does not change them, so the buttons keep their focus)
  let shownPredicted = '';
  function renderPredicted(predicted) {
    const key = JSON.stringify(predicted || []);
    if (key === shownPredicted) return;
    shownPredicted = key;
    const box = $('#predicted-box'), list = $('#predicted');
    list.replaceChildren();
    box.hidden = !(predicted && predicted.length);
    for (const p of predicted || []) {
      list.append(el('li', {}, el('button', {
        type: 'button', 'aria-label': `Add predicted tag ${p.tag} as a keyword`,
        onclick: () => addKeywords([p.tag], []),
      }, p.tag, el('span', { class: 'score', text: p.score.toFixed(2) }))));
    }
  }

  function selectImage(im) {
    if (state.image && state.image.url) URL.revokeObjectURL(state.image.url);
    state.image = im ? { id: im.id, tags: im.tags, image: im.image } : null;
    markPicker();
    renderQuery();
    renderPredicted(null);
    search();
  }

  async function uploadFile(file) {
    if (!file) return;
    const max = state.info ? state.info.max_upload_bytes : 8 << 20;
    if (file.size > max) {
      setStatus(`${file.name} is ${(file.size / 1048576).toFixed(1)} MiB; at most ${(max / 1048576).toFixed(0)} MiB.`, true);
      return;
    }
    setStatus('Uploading ' + file.name + '…');
    try {
      const r = await api('/api/upload', { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: file });
      if (state.image && state.image.url) URL.revokeObjectURL(state.image.url);
      state.image = { upload: r.upload, url: URL.createObjectURL(file), name: file.name };
      markPicker();
      renderQuery();
      renderPredicted(null);
      search();
    } catch (e) {
      setStatus('Upload refused: ' + e.message, true);
    }
  }

  /* ---- keywords ----------------------------------------------------------------- */

  // "apple -computer" -> {pos: [apple], neg: [computer]}. Commas separate
  // keywords that contain spaces ("traffic light, -car"); without a comma the
  // whole text is one keyword when it is a known tag, else words are split.
  function parseKeywords(text) {
    const t = text.trim();
    const pos = [], neg = [];
    if (!t) return { pos, neg };
    let parts;
    if (t.includes(',')) parts = t.split(',');
    else if (state.seen.has(t.replace(/^-/, '').toLowerCase())) parts = [t];
    else parts = t.split(/\s+/);
    for (let p of parts) {
      p = p.trim();
      if (!p || p === '-') continue;
      const isNeg = p.startsWith('-');
      let w = isNeg ? p.slice(1).trim() : p;
      if (!w) continue;
      w = state.seen.get(w.toLowerCase()) || w;
      (isNeg ? neg : pos).push(w);
    }
    return { pos, neg };
  }

  function addKeywords(pos, neg) {
    let changed = false;
    for (const w of pos) if (!state.keywords.includes(w)) { state.keywords.push(w); changed = true; }
    for (const w of neg) if (!state.negatives.includes(w)) { state.negatives.push(w); changed = true; }
    renderChips();
    if (changed) search();
  }

  function removeKeyword(list, w) {
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
    renderChips();
    $('#kw-input').focus();
    search();
  }

  function renderChips() {
    const chips = $('#chips'), negs = $('#neg-chips');
    chips.replaceChildren();
    negs.replaceChildren();
    for (const w of state.keywords) {
      const unknown = state.unknown.has(w);
      chips.append(el('li', {}, el('button', {
        type: 'button', class: unknown ? 'unknown' : null, 'data-keyword': w,
        title: unknown ? 'not a tag of this index: ignored' : 'remove',
        'aria-label': `Remove keyword ${w}` + (unknown ? ' (unknown to the index, ignored)' : ''),
        onclick: () => removeKeyword(state.keywords, w),
      }, w + (unknown ? ' ?' : '') + ' ×')));
    }
    for (const w of state.negatives) {
      negs.append(el('li', {}, el('button', {
        type: 'button', 'data-negative': w, title: 'remove',
        'aria-label': `Remove negative keyword ${w}`,
        onclick: () => removeKeyword(state.negatives, w),
      }, '−' + w + ' ×')));
    }
    $('#neg-h').hidden = state.negatives.length === 0;
    negs.hidden = state.negatives.length === 0;
  }

  const combo = {
    options: [],
    active: -1,
    open(list) {
      const lb = $('#kw-list'), input = $('#kw-input');
      this.options = list;
      this.active = -1;
      lb.replaceChildren();
      list.forEach((t, i) => {
        lb.append(el('li', {
          id: 'kw-opt-' + i, role: 'option', 'aria-selected': 'false',
          onmousedown: (ev) => { ev.preventDefault(); this.pick(i); },
        }, el('span', { text: t.tag }), el('span', { class: 'count', text: String(t.count) })));
      });
      lb.hidden = list.length === 0;
      input.setAttribute('aria-expanded', list.length ? 'true' : 'false');
      input.removeAttribute('aria-activedescendant');
    },
    close() { this.open([]); },
    move(d) {
      if (!this.options.length) return;
      this.active = (this.active + d + this.options.length) % this.options.length;
      document.querySelectorAll('#kw-list li').forEach((li, i) =>
        li.setAttribute('aria-selected', i === this.active ? 'true' : 'false'));
      const input = $('#kw-input');
      input.setAttribute('aria-activedescendant', 'kw-opt-' + this.active);
      const li = $('#kw-opt-' + this.active);
      if (li && li.scrollIntoView) li.scrollIntoView({ block: 'nearest' });
    },
    pick(i) {
      const t = this.options[i];
      const input = $('#kw-input');
      const neg = input.value.trim().startsWith('-') || /(^|[\s,])-[^\s,]*$/.test(input.value);
      // replace the word being typed by the chosen tag, keep what came before it
      const before = input.value.replace(/-?[^\s,]*$/, '');
      input.value = '';
      this.close();
      const head = parseKeywords(before);
      addKeywords(head.pos.concat(neg ? [] : [t.tag]), head.neg.concat(neg ? [t.tag] : []));
    },
  };

  const complete = debounce(async () => {
    const input = $('#kw-input');
    const m = /-?([^\s,][^,]*)$/.exec(input.value.trimStart());
    const prefix = m ? m[1].trim() : '';
    if (!prefix) { combo.close(); return; }
    try {
      const r = await api('/api/tags?limit=10&prefix=' + encodeURIComponent(prefix));
      for (const t of r.tags) state.seen.set(t.tag.toLowerCase(), t.tag);
      if (document.activeElement === input) combo.open(r.tags);
    } catch (e) {
      combo.close();
    }
  }, COMPLETE_DEBOUNCE_MS);

  function commitInput() {
    const input = $('#kw-input');
    const { pos, neg } = parseKeywords(input.value);
    input.value = '';
    combo.close();
    addKeywords(pos, neg);
  }

  /* ---- the search --------------------------------------------------------------------- */

  function sliderValue() { return Number($('#slider').value); }

  function describeSlider(v) {
    const what = v >= 0.85 ? 'visual' : v >= 0.6 ? 'mostly visual' : v > 0.4 ? 'balanced'
      : v > 0.15 ? 'mostly conceptual' : 'conceptual';
    return `${v.toFixed(2)}: ${what}`;
  }

  async function search() {
    const im = state.image;
    if (!im && state.keywords.length === 0) {
      $('#grid').replaceChildren();
      renderQuery();
      renderPredicted(null);
      setStatus(state.negatives.length ? 'Negative keywords alone cannot rank: add a keyword or an image.'
        : 'Pick a query image or type a keyword.');
      return;
    }
    const body = {
      tags: state.keywords,
      negative_tags: state.negatives,
      visual: sliderValue(),
      k: Number($('#k').value),
      concept: $('#concept').value,
      tag_k: 8,
      seq: ++state.seq,
    };
    if (im && im.upload) body.upload = im.upload;
    else if (im) body.id = im.id;
    const t0 = performance.now();
    let r;
    try {
      r = await api('/api/search', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
    } catch (e) {
      if (body.seq < state.shown) return;
      state.shown = body.seq;
      if (e.body && e.body.unknown_tags) markUnknown(e.body.unknown_tags);
      const code = e.body && e.body.error && e.body.error.code;
      if (e.status === 404 && (code === 'unknown_upload' || code === 'unknown_id')) {
        state.image = null; // gone or never there: back to keywords only
        markPicker();
        renderQuery();
        renderPredicted(null);
      }
      setStatus(`Search failed (${e.status || 'network'}): ${e.message}`, true);
      if (e.status === 503 || e.status === 502) banner('The query server is not answering: ' + e.message);
      return;
    }
    if (r.seq < state.shown) return; // an older answer arriving late: the newer one is on screen
    state.shown = r.seq;
    banner('');
    const ms = performance.now() - t0;
    markUnknown(r.unknown_tags || []);
    const cur = state.image;
    if (cur && !cur.upload && cur.id === r.query.id && !cur.tags) { // typed by id: now its tags are known
      cur.tags = r.query.tags;
      cur.image = r.query.image;
      renderQuery();
    }
    renderPredicted(r.predicted_tags);
    renderResults(r, ms);
  }

  function markUnknown(list) {
    state.unknown = new Set(list);
    renderChips();
  }

  function renderResults(r, ms) {
    const grid = $('#grid');
    const frag = document.createDocumentFragment();
    const kw = new Set(r.query.keywords || []);
    r.results.forEach((x, i) => {
      const shared = new Set(x.why.keywords), pred = new Set(x.why.predicted);
      const tags = el('p', { class: 'tags' });
      x.tags.forEach((t, j) => {
        if (j) tags.append(', ');
        if (shared.has(t)) tags.append(el('mark', { title: 'a keyword of the query', text: t }));
        else if (pred.has(t)) tags.append(el('mark', { class: 'pred', title: 'a predicted tag of the query image', text: t }));
        else tags.append(t);
      });
      const why = el('details', {}, el('summary', { text: 'Why this result' }),
        el('p', { text: 'Shared keywords: ' + (x.why.keywords.join(', ') || 'none') }),
        el('p', { text: 'Shared predicted tags: ' + (x.why.predicted.join(', ') || 'none') }),
        el('p', { text: 'Visual similarity: ' + (x.why.visual_cosine === null ? 'n/a (no query image)' : x.why.visual_cosine.toFixed(3)) }));
      const label = `Result ${i + 1}: image ${x.id}, score ${x.score.toFixed(3)}`;
      // a catalog without image files: the tags (and the score below) in place of a thumbnail
      const pic = x.image
        ? el('img', { src: thumbUrl(x.id), alt: `Image ${x.id}: ${x.tags.join(', ')}`, loading: 'lazy', decoding: 'async' })
        : el('div', { class: 'tagcard' }, tags);
      frag.append(el('li', {
        class: 'result', 'data-id': x.id, 'data-tags': JSON.stringify(x.tags),
        'data-shared': String(x.why.keywords.length), 'aria-label': label,
      }, el('figure', {}, pic, el('figcaption', {},
        el('div', { class: 'head' }, el('span', { class: 'rank', text: '#' + (i + 1) }),
          el('span', { class: 'score', title: 'score', text: x.score.toFixed(3) })),
        el('span', { class: 'id', text: x.id }), x.image ? tags : null, why,
        el('button', { type: 'button', class: 'use', 'aria-label': `Search with image ${x.id}`,
          onclick: () => { selectImage({ id: x.id, tags: x.tags, image: x.image }); } }, 'Search with this')))));
    });
    grid.replaceChildren(frag);
    const unk = (r.unknown_tags || []).length ? ` Unknown keywords (ignored): ${r.unknown_tags.join(', ')}.` : '';
    const other = (r.warnings || []).filter((w) => !w.startsWith('unknown keyword'));
    const v = r.query.visual === null ? '' : ` at visual ${Number(r.query.visual).toFixed(2)}`;
    setStatus(`${r.results.length} results${v} in ${ms.toFixed(0)} ms.${unk}` +
      (other.length ? ' ' + other.join('; ') + '.' : '') + (kw.size ? '' : ''));
  }

  /* ---- wiring ------------------------------------------------------------------------------ */

  function wire() {
    const slider = $('#slider'), out = $('#slider-out');
    const searchSoon = debounce(search, SLIDER_DEBOUNCE_MS);
    const onSlide = () => {
      const v = sliderValue();
      out.textContent = v.toFixed(2);
      slider.setAttribute('aria-valuetext', describeSlider(v));
      searchSoon();
    };
    slider.addEventListener('input', onSlide);
    slider.addEventListener('change', onSlide);
    $('#concept').addEventListener('change', search);
    $('#k').addEventListener('change', search);
    $('#shuffle').addEventListener('click', loadPicker);
    $('#clear-image').addEventListener('click', () => selectImage(null));
    $('#by-id').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = $('#id-input').value.trim();
      // no thumbnail until the search says the id exists and has a file
      if (id) selectImage({ id, tags: null, image: false });
    });
    $('#upload').addEventListener('change', (ev) => uploadFile(ev.target.files[0]));
    const input = $('#kw-input');
    input.addEventListener('input', () => {
      if (input.value.endsWith(',')) { commitInput(); return; }
      complete();
    });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowDown') { ev.preventDefault(); combo.move(1); }
      else if (ev.key === 'ArrowUp') { ev.preventDefault(); combo.move(-1); }
      else if (ev.key === 'Escape') { combo.close(); }
      else if (ev.key === 'Enter') {
        ev.preventDefault();
        if (combo.active >= 0) combo.pick(combo.active);
        else commitInput();
      } else if (ev.key === 'Backspace' && input.value === '') {
        if (state.negatives.length) state.negatives.pop();
        else if (state.keywords.length) state.keywords.pop();
        else return;
        renderChips();
        search();
      }
    });
    input.addEventListener('blur', () => setTimeout(() => combo.close(), 150));
    out.textContent = sliderValue().toFixed(2);
    renderChips();
  }

  async function main() {
    wire();
    await loadInfo();
    await loadPicker();
  }

  // for the browser test and the console: the state, read-only by convention
  window.mmsage = { state, parseKeywords };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
  else main();
})();
