// Real-browser check of the livetape console: Debian's chromium driven by playwright-core.
// Run by crates/server/tests/it/browser.rs against a live server; exits non-zero on any failure.
//
// Env: LIVETAPE_URL (http://127.0.0.1:PORT, required), LIVETAPE_API_KEY, LIVETAPE_FORMATS
// (recordings to play, e.g. "mp4,flv,hls"), LIVETAPE_LIVE_STREAM ("app/stream" being pushed),
// LIVETAPE_EXPECT_DEAD=1 (a dead callback exists: retry it from the page),
// LIVETAPE_ARTIFACTS (screenshot dir), LIVETAPE_DOCS_SCREENSHOT (copy for the README),
// CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { mkdirSync, copyFileSync } from 'node:fs';
import { join, dirname } from 'node:path';

const base = process.env.LIVETAPE_URL;
if (!base) throw new Error('LIVETAPE_URL is required');
const key = process.env.LIVETAPE_API_KEY || '';
const formats = (process.env.LIVETAPE_FORMATS || 'mp4').split(',').filter(Boolean);
const liveStream = process.env.LIVETAPE_LIVE_STREAM || '';
const artifacts = process.env.LIVETAPE_ARTIFACTS || 'target/browser-artifacts';
const docsShot = process.env.LIVETAPE_DOCS_SCREENSHOT || '';
const WAIT = 20_000;
const KIND = { mp4: 'native', aac: 'native', flv: 'flv', hls: 'hls' };

const log = (...a) => console.log('[console.mjs]', ...a);
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root in CI cannot use the sandbox; autoplay as if the user had clicked before; and no
  // background connections to Google's hosts (the test machines have no network).
  args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--disable-gpu',
    '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const problems = [];
const verified = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') {
      // A missing live HLS fallback while FLV plays is not the console's fault.
      // 401s are the key prompt doing its job (no key yet, then a wrong one on purpose).
      if (!/\/live\/|status of 401/.test(m.text())) problems.push(`console error: ${m.text()}`);
      log('browser console error:', m.text());
    }
  });

  // ---- key prompt ----
  await page.goto(`${base}/console`);
  if (key) {
    await page.locator('#apikey').waitFor({ timeout: WAIT });
    await page.fill('#apikey', 'wrong-key');
    await page.click('form.key button[type=submit]');
    await page.getByText('That key was refused.').waitFor({ timeout: WAIT });
    await page.fill('#apikey', key);
    await page.click('form.key button[type=submit]');
    log('API key prompt: wrong key refused, right key accepted');
  }

  // ---- recordings: play and seek each format ----
  await page.goto(`${base}/console#/recordings`);
  await page.locator('tr[data-file-id]').first().waitFor({ timeout: WAIT });
  for (const fmt of formats) {
    const row = page.locator(`tr[data-format="${fmt}"]`).first();
    await row.waitFor({ timeout: WAIT });
    await row.locator('[data-action=play]').click();
    await page.waitForFunction(
      (kind) => window.livetapePlayer && window.livetapePlayer.kind === kind && window.livetapePlayer.video.currentTime > 0.5,
      KIND[fmt], { timeout: WAIT });
    await advancing(page, `${fmt} start`);
    const duration = await page.evaluate(() => window.livetapePlayer.video.duration);
    if (!(duration > 4 && Number.isFinite(duration))) throw new Error(`${fmt}: duration ${duration}`);
    const mid = duration / 2;
    await page.evaluate((t) => { window.livetapePlayer.video.currentTime = t; }, mid);
    await page.waitForFunction(
      (t) => { const v = window.livetapePlayer.video; return !v.seeking && v.currentTime >= t - 1.5 && v.currentTime <= t + 3; },
      mid, { timeout: WAIT });
    const at = await advancing(page, `${fmt} after seek`);
    if (Math.abs(at - mid) > 3) throw new Error(`${fmt}: seek to ${mid.toFixed(2)} resumed at ${at.toFixed(2)}`);
    verified.push(`${fmt} recording via ${KIND[fmt]}: played, seek to ${mid.toFixed(1)} s resumed at ${at.toFixed(1)} s`);
    log(verified.at(-1));
  }
  const shot = join(artifacts, 'console.png');
  await page.screenshot({ path: shot });
  log('screenshot', shot);
  if (docsShot) {
    mkdirSync(dirname(docsShot), { recursive: true });
    copyFileSync(shot, docsShot);
  }

  // ---- a stream's history ----
  const first = page.locator('tr[data-file-id] a[href^="#/stream/"]').first();
  const streamName = await first.textContent();
  await first.click();
  await page.locator('h1', { hasText: streamName }).waitFor({ timeout: WAIT });
  await page.locator('tr[data-file-id]').first().waitFor({ timeout: WAIT });
  log('history page of', streamName, 'lists its recordings');

  // ---- deliveries: retry a dead callback ----
  if (process.env.LIVETAPE_EXPECT_DEAD === '1') {
    await page.goto(`${base}/console#/deliveries?status=dead`);
    const dead = page.locator('tr[data-status=dead]').first();
    await dead.waitFor({ timeout: WAIT });
    const id = await dead.getAttribute('data-id');
    await dead.locator('[data-action=retry]').click();
    await page.goto(`${base}/console#/deliveries`);
    await page.locator(`tr[data-id="${id}"][data-status=delivered]`).waitFor({ timeout: WAIT });
    verified.push(`dead callback ${id} retried from the page and delivered`);
    log(verified.at(-1));
  }

  // ---- live ----
  if (liveStream) {
    await page.goto(`${base}/console#/live`);
    const row = page.locator(`tr[data-stream="${liveStream}"]`);
    await row.waitFor({ timeout: WAIT });
    log('live page lists', liveStream);
    const status = await probe(`${base}/live/${liveStream}.flv`);
    if (status === 200) {
      await row.locator('button', { hasText: 'Watch' }).click();
      await page.waitForFunction(
        () => window.livetapePlayer && window.livetapePlayer.kind && window.livetapePlayer.video.currentTime > 0.3,
        null, { timeout: WAIT });
      await advancing(page, 'live');
      const kind = await page.evaluate(() => window.livetapePlayer.kind);
      verified.push(`live ${liveStream} via ${kind}`);
      log(verified.at(-1));
      await page.screenshot({ path: join(artifacts, 'console-live.png') });
    } else {
      // The server has /live/: a non-200 is a failure, never a skipped check.
      throw new Error(`live endpoint answered ${status} for ${liveStream}`);
    }
  }

  // ---- delete with confirmation ----
  await page.goto(`${base}/console#/recordings`);
  const victim = page.locator('tr[data-file-id]').first();
  await victim.waitFor({ timeout: WAIT });
  const fileId = await victim.getAttribute('data-file-id');
  page.once('dialog', (d) => d.dismiss());
  await victim.locator('[data-action=delete]').click();
  if (await apiStatus(`/v1/recordings/${fileId}`) !== 200) throw new Error('dismissed delete still deleted');
  page.once('dialog', (d) => d.accept());
  await victim.locator('[data-action=delete]').click();
  await page.locator(`tr[data-file-id="${fileId}"]`).waitFor({ state: 'detached', timeout: WAIT });
  if (await apiStatus(`/v1/recordings/${fileId}`) !== 404) throw new Error('confirmed delete left the recording');
  verified.push('delete: cancel keeps, confirm deletes');
  log(verified.at(-1));

  // ---- templates ----
  await page.goto(`${base}/console#/templates`);
  await page.locator('h2', { hasText: 'Record templates' }).waitFor({ timeout: WAIT });
  await page.locator('td', { hasText: 'default' }).first().waitFor({ timeout: WAIT });

  // ---- API: /v1/openapi.json, browsable ----
  await page.goto(`${base}/console#/api`);
  const op = page.locator('details.op[data-method=get][data-path="/v1/recordings"]');
  await op.waitFor({ timeout: WAIT });
  await op.locator('summary').click();
  await op.locator('a', { hasText: 'RecordingPage' }).waitFor({ timeout: WAIT });
  const ops = await page.locator('details.op').count();
  if (ops < 26) throw new Error(`the API page lists ${ops} operations`);
  verified.push(`API page: ${ops} operations from /v1/openapi.json`);
  log(verified.at(-1));

  // ---- phone width: no horizontal scrolling ----
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/console#/recordings`);
  await page.locator('tr[data-file-id]').first().waitFor({ timeout: WAIT });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: join(artifacts, 'console-phone.png'), fullPage: true });
  if (overflow > 1) throw new Error(`phone layout scrolls sideways by ${overflow}px`);
  log('phone width: no sideways scrolling');
} catch (e) {
  problems.push(e.stack || String(e));
} finally {
  await browser.close();
}

if (problems.length) {
  console.error('[console.mjs] FAILED:\n' + problems.join('\n'));
  process.exit(1);
}
log('OK:', verified.join('; '));

// currentTime moves forward by at least 0.5 s within the wait; returns where it was.
async function advancing(page, what) {
  const t0 = await page.evaluate(() => window.livetapePlayer.video.currentTime);
  try {
    await page.waitForFunction((t) => window.livetapePlayer.video.currentTime > t + 0.5, t0, { timeout: WAIT });
  } catch (_) {
    const st = await page.evaluate(() => { const v = window.livetapePlayer.video; return { t: v.currentTime, paused: v.paused, rs: v.readyState, err: v.error && v.error.message }; });
    throw new Error(`${what}: playback stuck at ${t0} (${JSON.stringify(st)})`);
  }
  return t0;
}

// Status of a (possibly endless, live) response: headers only, then hang up.
async function probe(url) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 5000);
  try {
    const r = await fetch(url, { signal: ac.signal });
    ac.abort();
    return r.status;
  } catch (e) {
    return `error ${e.message}`;
  } finally {
    clearTimeout(timer);
  }
}

async function apiStatus(path) {
  const r = await fetch(base + path, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  return r.status;
}
