// render_pages.mjs - book.browser: open every page of the HTML book in
// headless Chromium, wait for mermaid to draw, and check that every diagram
// became an SVG (not mermaid's error picture) and that the page logged no
// error (no exception, no console.error, no file that failed to load). One
// PNG screenshot per page goes to --screenshots, for a person to look at.
//
//   node render_pages.mjs --chromium /usr/bin/chromium --screenshots DIR PAGE.html...
//
// Chromium is driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: JSON messages ending in a NUL byte, commands to
// the browser on its fd 3, answers and events from its fd 4), so this needs
// nothing but node. Every page is a file:// URL and the browser is told not
// to reach the network; a fresh profile directory is made for each run and
// removed after it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const PAGE_TIMEOUT_MS = 60000;
const WIDTH = 1000;
const PART_HEIGHT = 10000; // taller pages are shot in parts of this many CSS pixels

function usage(message) {
  console.error(`render_pages: ${message}\n` +
                'Usage: node render_pages.mjs --chromium PATH --screenshots DIR PAGE.html...');
  process.exit(2);
}

let chromium = null;
let screenshots = null;
const pages = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--chromium' && i + 1 < args.length) chromium = args[++i];
  else if (args[i] === '--screenshots' && i + 1 < args.length) screenshots = args[++i];
  else if (args[i].startsWith('--')) usage(`unknown option ${args[i]}`);
  else pages.push(args[i]);
}
if (!chromium || !screenshots) usage('--chromium and --screenshots are required');
if (pages.length === 0) usage('no page to render');
fs.mkdirSync(screenshots, { recursive: true });
// A page that became shorter leaves no stale part behind.
for (const old of fs.readdirSync(screenshots))
  if (old.endsWith('.png')) fs.rmSync(path.join(screenshots, old));

// ---- the browser, over a pipe ------------------------------------------------------
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'evq-chromium-'));
const browser = spawn(chromium, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--disable-extensions', '--no-default-browser-check',
  '--hide-scrollbars', '--mute-audio', `--user-data-dir=${profile}`,
  '--remote-debugging-pipe', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });

let browserLog = '';
browser.stderr.on('data', (chunk) => { browserLog = (browserLog + chunk).slice(-4000); });

let nextId = 1;
const waiting = new Map(); // id -> { resolve, reject, method }
const listeners = new Set(); // (message) => void, for events
let exited = null;

function fail(message) {
  for (const { reject } of waiting.values()) reject(new Error(message));
  waiting.clear();
}
browser.on('exit', (code, signal) => {
  exited = `chromium exited (${signal ?? `status ${code}`})`;
  fail(exited);
});
browser.on('error', (error) => {
  exited = `cannot start ${chromium}: ${error.message}`;
  fail(exited);
});

let pending = Buffer.alloc(0);
browser.stdio[4].on('data', (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  let end;
  while ((end = pending.indexOf(0)) >= 0) {
    const message = JSON.parse(pending.subarray(0, end).toString('utf8'));
    pending = pending.subarray(end + 1);
    if (message.id !== undefined && waiting.has(message.id)) {
      const { resolve, reject, method } = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.error) reject(new Error(`${method}: ${message.error.message}`));
      else resolve(message.result);
    } else {
      for (const listener of listeners) listener(message);
    }
  }
});
browser.stdio[3].on('error', () => {}); // reported by 'exit'

function send(method, params = {}, sessionId = undefined) {
  if (exited) return Promise.reject(new Error(exited));
  const id = nextId++;
  const message = { id, method, params };
  if (sessionId) message.sessionId = sessionId;
  browser.stdio[3].write(JSON.stringify(message) + '\0');
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject, method }));
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- one page ----------------------------------------------------------------------
// Runs in the page: wait until the page's own script has said that mermaid
// is done (data-mermaid on <html>), then count.
const inspect = `(async () => {
  const blocks = [...document.querySelectorAll('.mermaid')];
  const deadline = Date.now() + ${PAGE_TIMEOUT_MS - 5000};
  const root = document.documentElement;
  while (blocks.length > 0 && !['done', 'error', 'missing'].includes(root.dataset.mermaid) &&
         Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  const drawn = blocks.filter((b) => b.querySelector('svg'));
  const broken = drawn.filter((b) => b.querySelector('svg[aria-roledescription="error"]') ||
                                     /Syntax error in text/.test(b.textContent));
  return {
    state: root.dataset.mermaid || (blocks.length ? 'never started' : 'no diagrams'),
    blocks: blocks.length,
    svgs: drawn.length - broken.length,
    broken: broken.map((b) => blocks.indexOf(b) + 1),
    undrawn: blocks.filter((b) => !b.querySelector('svg')).map((b) => blocks.indexOf(b) + 1),
    highlighted: document.querySelectorAll('pre.sourceCode span.kw, pre.sourceCode span.dt').length,
    c_blocks: document.querySelectorAll('pre.sourceCode.c').length,
    height: Math.ceil(root.scrollHeight),
    ids: [...document.querySelectorAll('[id]')].map((e) => e.id),
    links: [...document.querySelectorAll('a[href]')].map((a) => a.getAttribute('href'))
      .filter((h) => !/^[a-z][a-z0-9+.-]*:/i.test(h)),
  };
})()`;

async function renderPage(sessionId, file) {
  const errors = [];
  const listener = (message) => {
    if (message.sessionId !== sessionId) return;
    const p = message.params || {};
    if (message.method === 'Runtime.exceptionThrown') {
      const d = p.exceptionDetails || {};
      errors.push(`exception: ${d.exception?.description ?? d.text}`);
    } else if (message.method === 'Runtime.consoleAPICalled' &&
               ['error', 'assert'].includes(p.type)) {
      errors.push(`console.${p.type}: ${(p.args || []).map((a) => a.value ?? a.description).join(' ')}`);
    } else if (message.method === 'Log.entryAdded' && p.entry?.level === 'error') {
      errors.push(`${p.entry.source}: ${p.entry.text}${p.entry.url ? ` (${p.entry.url})` : ''}`);
    }
  };
  listeners.add(listener);
  try {
    const loaded = new Promise((resolve) => {
      const onLoad = (message) => {
        if (message.sessionId === sessionId && message.method === 'Page.loadEventFired') {
          listeners.delete(onLoad);
          resolve();
        }
      };
      listeners.add(onLoad);
    });
    await send('Emulation.setDeviceMetricsOverride',
               { width: WIDTH, height: 800, deviceScaleFactor: 1, mobile: false }, sessionId);
    const navigation = await send('Page.navigate', { url: pathToFileURL(path.resolve(file)).href },
                                  sessionId);
    if (navigation.errorText) throw new Error(`cannot open the page: ${navigation.errorText}`);
    await withTimeout(loaded, PAGE_TIMEOUT_MS, 'load event');
    const evaluated = await withTimeout(
      send('Runtime.evaluate', { expression: inspect, awaitPromise: true, returnByValue: true },
           sessionId), PAGE_TIMEOUT_MS, 'waiting for mermaid');
    if (evaluated.exceptionDetails) throw new Error(`inspecting the page: ${evaluated.exceptionDetails.text}`);
    const result = evaluated.result.value;

    // The whole page at full size: one picture, or for a page taller than
    // PART_HEIGHT, one per part (name-1.png, name-2.png...), the viewport
    // scrolled down a part at a time. A single viewport as tall as the page
    // would hit the browser's limit on a surface's size and cut it short.
    const parts = Math.max(1, Math.ceil(result.height / PART_HEIGHT));
    const height = Math.min(result.height, PART_HEIGHT);
    await send('Emulation.setDeviceMetricsOverride',
               { width: WIDTH, height, deviceScaleFactor: 1, mobile: false }, sessionId);
    const base = path.join(screenshots, path.basename(file).replace(/\.html$/, ''));
    const pngs = [];
    for (let part = 0; part < parts; part++) {
      await send('Runtime.evaluate',
                 { expression: `window.scrollTo(0, ${part * PART_HEIGHT}); new Promise((done) => ` +
                               'requestAnimationFrame(() => requestAnimationFrame(done)))',
                   awaitPromise: true }, sessionId);
      const shot = await withTimeout(send('Page.captureScreenshot', { format: 'png' }, sessionId),
                                     PAGE_TIMEOUT_MS, 'screenshot');
      const png = parts === 1 ? `${base}.png` : `${base}-${part + 1}.png`;
      fs.writeFileSync(png, Buffer.from(shot.data, 'base64'));
      pngs.push(png);
    }
    return { ...result, errors, pngs };
  } finally {
    listeners.delete(listener);
  }
}

// ---- all pages ---------------------------------------------------------------------
const started = Date.now();
let problems = 0;
let diagrams = 0;
const anchors = new Map(); // page name -> its ids, to check links between pages at the end
const links = []; // [page name, href]
try {
  await withTimeout(send('Browser.getVersion'), 30000, 'starting chromium')
    .then((v) => console.log(`browser: ${v.product}`));
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  for (const domain of ['Page', 'Runtime', 'Log'])
    await send(`${domain}.enable`, {}, sessionId);

  for (const file of pages) {
    const name = path.basename(file);
    try {
      const r = await renderPage(sessionId, file);
      diagrams += r.svgs;
      anchors.set(name, new Set(r.ids));
      for (const href of r.links) links.push([name, href]);
      const complaints = [...r.errors];
      if (r.undrawn.length) complaints.push(`diagram(s) ${r.undrawn.join(', ')} not drawn (mermaid: ${r.state})`);
      if (r.broken.length) complaints.push(`diagram(s) ${r.broken.join(', ')} drawn as mermaid's syntax-error picture`);
      if (r.blocks > 0 && r.state !== 'done') complaints.push(`mermaid did not finish: ${r.state}`);
      if (r.c_blocks > 0 && r.highlighted === 0) complaints.push('C code blocks are not highlighted');
      const relative = path.relative(process.cwd(), r.pngs[0]);
      const shot = `${relative.startsWith('..') ? r.pngs[0] : relative}` +
                   `${r.pngs.length > 1 ? ` (1 of ${r.pngs.length} parts)` : ''}`;
      console.log(`${name}: ${r.svgs} of ${r.blocks} diagrams drawn, ${r.errors.length} errors logged; ${shot}`);
      for (const c of complaints) console.error(`${name}: ${c}`);
      problems += complaints.length;
    } catch (error) {
      console.error(`${name}: ${error.message}`);
      problems++;
      if (exited) break;
    }
  }
  // Every link to a page of the book, and to a place in it, leads somewhere.
  for (const [from, href] of links) {
    const [target, fragment] = href.split('#');
    const page = target === '' ? from : target;
    if (!anchors.has(page)) {
      // Not rendered in this run: it must at least exist beside the pages.
      const dir = path.dirname(pages.find((file) => path.basename(file) === from));
      if (page.endsWith('.html') && !fs.existsSync(path.join(dir, page))) {
        console.error(`${from}: link to ${href}: no such page in the book`);
        problems++;
      }
    } else if (fragment && !anchors.get(page).has(decodeURIComponent(fragment))) {
      console.error(`${from}: link to ${href}: no such place on that page`);
      problems++;
    }
  }
  await send('Browser.close').catch(() => {});
} catch (error) {
  console.error(`render_pages: ${error.message}`);
  if (browserLog) console.error(`chromium said:\n${browserLog}`);
  problems++;
}

// Give the browser a moment to exit by itself, then end it (we started it).
if (!exited) {
  await new Promise((resolve) => {
    const timer = setTimeout(() => { browser.kill('SIGKILL'); resolve(); }, 5000);
    browser.once('exit', () => { clearTimeout(timer); resolve(); });
  });
}
fs.rmSync(profile, { recursive: true, force: true });

const seconds = ((Date.now() - started) / 1000).toFixed(1);
const summary = `browser: ${pages.length} pages, ${diagrams} diagrams drawn, ` +
                `${pages.length} screenshots in ${screenshots}, ${seconds} s`;
if (problems > 0) {
  console.log(`${summary}; ${problems} problem(s)`);
  process.exit(1);
}
console.log(summary);
