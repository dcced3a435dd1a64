// tests/web/browser_test.mjs: the search page of `mmsage web` in a real
// browser (Debian's chromium through puppeteer-core; no browser download).
// Run by tests/cli/web_browser.sh, which builds the index and starts the
// servers; this script only drives the page:
//   load -> pick a random image -> query by id -> keyword with completion ->
//   slider 1 -> drag to 0 (results change, keyword share rises) -> images render ->
//   slider latency from the browser's resource timing (p50) -> negative keyword
//   (chip, and the request carries negative_tags) -> upload a JPEG ->
//   keyboard reachability -> phone-sized screen.
// A screenshot of each state goes to --artifacts. Exits 1 on any failure,
// after printing every check.
//
// usage: node browser_test.mjs --url URL --chromium PATH --artifacts DIR
//          --id QUERY_ID --keyword TAG --negative TAG [--images yes|no] [--upload FILE.jpg]
// --images no: a catalog without image files (Corel5k): tags in place of
// thumbnails. Without --upload the page must not offer uploads.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['url', 'chromium', 'artifacts', 'id', 'keyword', 'negative'])
  if (!args[k]) { console.error(`browser_test: --${k} is required`); process.exit(2); }

let failures = 0;
const ok = (cond, what, detail) => {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}${detail !== undefined ? ': ' + detail : ''}`);
  if (!cond) failures++;
  return cond;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
fs.mkdirSync(args.artifacts, { recursive: true });
const expectImages = (args.images || 'yes') !== 'no';

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mms-chromium-'));
const browser = await puppeteer.launch({
  executablePath: args.chromium,
  headless: true,
  userDataDir,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--lang=en-US'],
});

let step = 0;
const pageErrorsSeen = [];
// a screenshot of the viewport, scrolled to the top (or to `at`)
async function shot(page, name, at) {
  step++;
  await page.evaluate((sel) => {
    if (sel) document.querySelector(sel).scrollIntoView({ block: 'start' });
    else window.scrollTo(0, 0);
  }, at || null);
  await sleep(100);
  const file = path.join(args.artifacts, `${String(step).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  console.log(`     screenshot ${file}`);
}

try {
  const page = await browser.newPage();
  // 1000 CSS px at scale 0.8: 800 px wide screenshots with the two-column layout
  await page.setViewport({ width: 1000, height: 760, deviceScaleFactor: 0.8 });
  page.setDefaultTimeout(20000);
  const pageErrors = pageErrorsSeen;
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // HTTP errors are judged from the responses (only the unknown-id step
  // expects one), not from the console's "Failed to load resource" lines
  let expectHttpError = false;
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) pageErrors.push('console: ' + m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !expectHttpError) pageErrors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  const searches = []; // bodies of POST /api/search, in order
  page.on('requestfailed', (r) => pageErrors.push(`request failed: ${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('request', (r) => {
    if (r.url().endsWith('/api/search') && r.method() === 'POST') {
      try { searches.push(JSON.parse(r.postData())); } catch (e) { searches.push(null); }
    }
  });

  // ---- load
  await page.goto(args.url, { waitUntil: 'networkidle0' });
  await page.waitForSelector('#picker button');
  const info = await page.$eval('#dataset', (e) => e.textContent);
  ok(/images/.test(info), 'page loads, dataset line', info);
  const hasImages = !(await page.$eval('body', (b) => b.classList.contains('no-images')));
  ok(hasImages === expectImages, 'the page knows whether the catalog has image files', String(hasImages));
  if (expectImages) {
    await page.waitForFunction(() => [...document.querySelectorAll('#picker img')].every((i) => i.complete));
    const pickerImgs = await page.$$eval('#picker img', (ims) => ims.map((i) => i.naturalWidth));
    ok(pickerImgs.length > 0 && pickerImgs.every((w) => w > 0), 'picker thumbnails render (naturalWidth > 0)',
      `${pickerImgs.filter((w) => w > 0).length}/${pickerImgs.length}`);
  } else {
    const cards = await page.$$eval('#picker button', (bs) => bs.map((b) => (b.querySelector('img') ? '' : b.textContent.trim())));
    ok(cards.length > 0 && cards.every((t) => t.length > 0), 'picker shows tags in place of thumbnails', cards.slice(0, 3).join(' | '));
  }
  await shot(page, 'loaded');

  // ---- pick a random image, then the test's image by id
  await page.click('#picker button');
  await page.waitForFunction(() => document.querySelectorAll('#grid li').length > 0);
  ok(true, 'a picked image gives results', await page.$eval('#status', (e) => e.textContent));
  expectHttpError = true;
  await page.type('#id-input', 'no-such-image');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /Search failed \(404\)/.test(document.querySelector('#status').textContent));
  await sleep(200);
  expectHttpError = false;
  ok(await page.$eval('#current', (c) => !c.querySelector('img') && /keywords only/.test(c.textContent)),
    'an unknown id: 404 in the status line, back to no query image', await page.$eval('#status', (e) => e.textContent));
  await page.click('#id-input', { clickCount: 3 });
  await page.type('#id-input', args.id);
  await page.keyboard.press('Enter');
  await page.waitForFunction((id) => document.querySelector('#current')?.textContent.includes('Image ' + id) &&
    window.mmsage.state.shown === window.mmsage.state.seq, {}, args.id);
  const predicted = await page.$$eval('#predicted button', (bs) => bs.length);
  ok(predicted > 0, 'predicted tags for the query image', predicted);

  // ---- a keyword through the completion list
  await page.focus('#kw-input');
  await page.type('#kw-input', args.keyword.slice(0, 2));
  await page.waitForFunction((kw) => [...document.querySelectorAll('#kw-list li')].some((li) =>
    li.firstChild.textContent === kw), {}, args.keyword).catch(() => {});
  const options = await page.$$eval('#kw-list li', (lis) => lis.map((li) => li.firstChild.textContent));
  const idx = options.indexOf(args.keyword);
  ok(idx >= 0, 'completion offers the keyword', options.join(', '));
  for (let i = 0; i <= Math.max(idx, 0); i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.waitForFunction((kw) => document.querySelector(`#chips button[data-keyword="${kw}"]`), {}, args.keyword);
  ok(true, 'keyword chip shown', args.keyword);

  // ---- the slider: 1, then dragged to 0
  async function settle() {
    await page.waitForFunction(() => window.mmsage.state.shown === window.mmsage.state.seq);
    await sleep(120); // a debounced request may still be pending
    await page.waitForFunction(() => window.mmsage.state.shown === window.mmsage.state.seq);
  }
  async function results() {
    return page.$$eval('#grid li', (lis) => lis.map((li) => ({
      id: li.dataset.id, tags: JSON.parse(li.dataset.tags), shared: Number(li.dataset.shared) })));
  }
  const share = (rs) => rs.length ? rs.filter((r) => r.tags.includes(args.keyword)).length / rs.length : 0;
  await page.focus('#slider');
  await page.keyboard.press('End');
  await settle();
  const v1 = await page.$eval('#slider', (s) => s.value);
  const r1 = await results();
  ok(v1 === '1' && r1.length > 0, 'slider at 1 (visual)', `${r1.length} results, keyword share ${share(r1).toFixed(2)}`);
  await shot(page, 'visual-1');

  const box = await (await page.$('#slider')).boundingBox();
  const y = box.y + box.height / 2;
  const t0 = await page.evaluate(() => performance.now());
  const nBefore = searches.length;
  await page.mouse.move(box.x + box.width - 2, y);
  await page.mouse.down();
  for (let i = 0; i <= 40; i++) { // a drag of about 1.2 s
    await page.mouse.move(box.x + box.width - 2 - (box.width - 4) * i / 40, y);
    await sleep(30);
  }
  await page.mouse.up();
  await settle();
  const v0 = await page.$eval('#slider', (s) => s.value);
  const r0 = await results();
  const sentDuringDrag = searches.length - nBefore;
  ok(v0 === '0', 'slider dragged to 0 (conceptual)', v0);
  ok(sentDuringDrag >= 2, 'results followed the drag (several debounced searches)', sentDuringDrag);
  const ids1 = r1.map((r) => r.id).join(','), ids0 = r0.map((r) => r.id).join(',');
  ok(ids1 !== ids0, 'results change from visual 1 to 0');
  ok(share(r0) > share(r1), `share of results with keyword '${args.keyword}' rises from 1 to 0`,
    `${share(r1).toFixed(2)} -> ${share(r0).toFixed(2)}`);
  const lastBody = searches[searches.length - 1];
  ok(lastBody && lastBody.visual === 0 && lastBody.seq === Math.max(...searches.map((b) => b.seq)),
    'the last request sent is the one shown (numbered)', lastBody && `seq ${lastBody.seq}`);
  await shot(page, 'visual-0');

  // ---- images actually render
  await page.evaluate(() => document.querySelector('#grid').scrollIntoView());
  if (expectImages) {
    await page.waitForFunction(() => [...document.querySelectorAll('#grid li img')].slice(0, 8).every((i) => i.complete));
    const rendered = await page.$$eval('#grid li img', (ims) => ims.slice(0, 8).map((i) => i.naturalWidth));
    ok(rendered.length > 0 && rendered.every((w) => w > 0), 'result thumbnails render (naturalWidth > 0)', rendered.join(' '));
  } else {
    const cards = await page.$$eval('#grid li', (lis) => lis.map((li) => !!li.querySelector('.tagcard') && !li.querySelector('img')));
    ok(cards.length > 0 && cards.every(Boolean), 'results show tags and scores in place of thumbnails', cards.length);
  }
  const why = await page.$eval('#grid li details', (d) => { d.open = true; return d.textContent; });
  ok(/Visual similarity: [0-9.-]+/.test(why) && /Shared keywords/.test(why), 'why this result', why.replace(/\s+/g, ' '));
  await page.evaluate(() => window.scrollTo(0, 0));

  // ---- latency of slider moves, from the browser's resource timing: one
  // move per 150 ms (beyond the 60 ms debounce) so each move is one request
  await page.focus('#slider');
  const t1 = await page.evaluate(() => performance.now());
  for (let i = 0; i < 20; i++) { await page.keyboard.press('ArrowRight'); await sleep(150); }
  for (let i = 0; i < 20; i++) { await page.keyboard.press('ArrowLeft'); await sleep(150); }
  await settle();
  const lat = await page.evaluate((from) => performance.getEntriesByType('resource')
    .filter((e) => e.name.endsWith('/api/search') && e.startTime >= from)
    .map((e) => e.responseEnd - e.startTime), t0);
  const lat2 = await page.evaluate((from) => performance.getEntriesByType('resource')
    .filter((e) => e.name.endsWith('/api/search') && e.startTime >= from).length, t1);
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * (lat.length - 1)))];
  ok(lat.length >= 20 && lat2 >= 20, 'resource timing of slider searches', `${lat.length} entries (${lat2} from 40 key moves)`);
  console.log(`slider latency (browser resource timing, ${lat.length} searches): ` +
    `p50 ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, max ${lat[lat.length - 1].toFixed(1)} ms`);

  // ---- a negative keyword: at the conceptual end, subtract the tag most
  // frequent among the current results (besides the keywords; one word):
  // its share among the results must fall, and the results change
  await page.focus('#slider');
  await page.keyboard.press('Home');
  await settle();
  const rNegBefore = await results();
  const kws = (searches[searches.length - 1] || {}).tags || [];
  const freq = new Map();
  for (const r of rNegBefore) for (const t of r.tags) if (!kws.includes(t) && !/\s/.test(t)) freq.set(t, (freq.get(t) || 0) + 1);
  const ranked = [...freq.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const neg = ranked.length ? ranked[0][0] : args.negative;
  const negShare = (rs) => rs.length ? rs.filter((r) => r.tags.includes(neg)).length / rs.length : 0;
  await page.focus('#kw-input');
  await page.type('#kw-input', '-' + neg);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Enter');
  await page.waitForFunction((w) => document.querySelector(`#neg-chips button[data-negative="${w}"]`), {}, neg);
  ok(true, 'negative keyword chip shown', neg);
  await settle();
  const nb = searches[searches.length - 1];
  ok(nb && Array.isArray(nb.negative_tags) && nb.negative_tags.includes(neg) && !nb.tags.includes(neg),
    'the search request carries negative_tags', JSON.stringify(nb && nb.negative_tags));
  const rNegAfter = await results();
  ok(negShare(rNegAfter) < negShare(rNegBefore) &&
     JSON.stringify(rNegAfter.map((r) => r.id)) !== JSON.stringify(rNegBefore.map((r) => r.id)),
    `subtracting '${neg}' (the results' most frequent other tag) changes the results and lowers its share`,
    `${negShare(rNegBefore).toFixed(2)} -> ${negShare(rNegAfter).toFixed(2)}`);
  const parsed = await page.evaluate(() => window.mmsage.parseKeywords('apple -computer'));
  ok(JSON.stringify(parsed) === '{"pos":["apple"],"neg":["computer"]}', 'parse "apple -computer"', JSON.stringify(parsed));
  await shot(page, 'negative');

  // ---- upload a JPEG
  const uploadOn = await page.$eval('#upload', (i) => !i.disabled);
  const uploadShown = await page.$eval('#upload-row', (r) => getComputedStyle(r).display !== 'none');
  if (!args.upload) {
    ok(!uploadOn && !uploadShown, 'no upload offered (the index has no pixel descriptor)');
  } else if (ok(uploadOn && uploadShown, 'upload enabled (the index has a pixel descriptor)')) {
    await page.focus('#slider');
    await page.keyboard.press('End'); // the upload searched by what it looks like
    await settle();
    const input = await page.$('#upload');
    const uploaded = page.waitForResponse((r) => r.url().endsWith('/api/upload'));
    await input.uploadFile(path.resolve(args.upload));
    const ur = await uploaded;
    ok(ur.status() === 201, 'upload answered 201', ur.status());
    await page.waitForFunction(() => document.querySelector('#current img')?.src.startsWith('blob:'));
    await settle();
    const ub = searches[searches.length - 1];
    ok(ub && /^[0-9a-f]{32}$/.test(ub.upload || '') && !ub.id, 'the search uses the upload handle', ub && ub.upload);
    const st = await page.$eval('#status', (e) => e.textContent);
    const n = await page.$$eval('#grid li', (l) => l.length);
    ok(n > 0 && !/failed/i.test(st), 'results for the uploaded image', st);
    await page.waitForFunction(() => document.querySelector('#current img').complete);
    const w = await page.$eval('#current img', (i) => i.naturalWidth);
    ok(w > 0, 'uploaded image shown', w);
    await shot(page, 'upload');
  }

  // ---- keyboard only: the controls are reachable with Tab, in order
  await page.goto(args.url, { waitUntil: 'networkidle0' });
  const order = [];
  for (let i = 0; i < 80 && order.length < 200; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.className || document.activeElement.tagName));
  }
  const pos = (id) => order.indexOf(id);
  ok(order[0] === 'skip', 'first Tab reaches the skip link', order[0]);
  ok(pos('kw-input') > 0 && pos('slider') > pos('kw-input') && pos('shuffle') > pos('slider'),
    'Tab order: keywords, slider, picker', `kw-input ${pos('kw-input')}, slider ${pos('slider')}, shuffle ${pos('shuffle')}`);
  const unlabelled = await page.$$eval('input, select, button', (els) => els.filter((e) => {
    if (e.type === 'hidden') return false;
    const label = e.labels && e.labels.length ? e.labels[0].textContent : '';
    return !(label.trim() || e.getAttribute('aria-label') || e.textContent.trim() || e.getAttribute('aria-labelledby'));
  }).map((e) => e.id || e.outerHTML.slice(0, 60)));
  ok(unlabelled.length === 0, 'every control has a label', unlabelled.join(' '));

  // ---- a phone-sized screen
  await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
  await page.goto(args.url, { waitUntil: 'networkidle0' });
  await page.click('#picker button');
  await page.waitForFunction(() => document.querySelectorAll('#grid li').length > 0);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  ok(overflow <= 1, 'no horizontal scrolling at 390 px', `${overflow} px`);
  await shot(page, 'phone', '#controls');

  ok(pageErrors.length === 0, 'no script errors and no unexpected HTTP errors', pageErrors.join(' | '));
} catch (e) {
  ok(false, 'browser test', e.stack || String(e));
  console.log('page errors: ' + pageErrorsSeen.join(' | '));
} finally {
  await browser.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`browser_test: ${failures} failures`);
process.exit(failures ? 1 : 0);
