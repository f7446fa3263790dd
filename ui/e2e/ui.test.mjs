// End-to-end tests of smolder's web UI in headless Chromium (Debian's
// `chromium`, driven by playwright-core from npm) against a running smolder.
//
//   SMOLDER_URL=http://127.0.0.1:8080 node ui/e2e/ui.test.mjs [artifacts dir]
//
// The server must hold sample data with a burning SLO and its page alert
// (tests/tests/ui.rs sets that up). Each page must load without console
// errors; a screenshot of each is saved in the artifacts directory
// (default ui/e2e/artifacts). Exits non-zero on the first failed check.
import { join } from 'node:path';
import { ARTIFACTS, launchChromium } from './browser.mjs';
import assert from 'node:assert/strict';

const BASE = process.env.SMOLDER_URL;
if (!BASE) {
  console.error('Set SMOLDER_URL to the address of a running smolder (http://127.0.0.1:PORT).');
  process.exit(2);
}

const browser = await launchChromium();
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(20000);

// Every console error, failed request or uncaught exception fails the run.
const problems = [];
// API paths a step expects to answer 404 (what the page then shows).
const expected404 = [];
const expected = (url, status) => status === 404 && expected404.some((p) => url.includes(p));
// The browser logs an answered 400 of the SQL API (a query error the page
// shows) as a console error; those are expected, every other one fails.
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  if (m.text().includes('status of 400') && (m.location().url || '').includes('/api/v1/sql')) return;
  if (m.text().includes('status of 404') && expected(m.location().url || '', 404)) return;
  problems.push(`console error on ${page.url()}: ${m.text()}`);
});
page.on('pageerror', (e) => problems.push(`uncaught exception on ${page.url()}: ${e.message}`));
// Requests cut off by a navigation (ERR_ABORTED) are not failures.
page.on('requestfailed', (r) => {
  if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
});
page.on('response', (r) => {
  if (r.status() >= 400 && !r.url().includes('/api/v1/sql') && !expected(r.url(), r.status())) problems.push(`HTTP ${r.status()} for ${r.url()}`);
});
// Nothing may be fetched from outside the server (works offline).
page.on('request', (r) => {
  if (!r.url().startsWith(BASE) && !r.url().startsWith('data:')) problems.push(`request outside smolder: ${r.url()}`);
});

const results = [];
async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    assert.deepEqual(problems, [], 'no console errors, failed or external requests');
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    results.push(`ok   ${name} (${Date.now() - started} ms)`);
    console.log(`ok   ${name}`);
  } catch (e) {
    await page.screenshot({ path: join(ARTIFACTS, `${name}-FAILED.png`), fullPage: true }).catch(() => {});
    console.log(`FAIL ${name}: ${e.stack || e}`);
    await browser.close();
    process.exit(1);
  }
}

await step('slos-overview', async () => {
  await page.goto(`${BASE}/`);
  await page.waitForSelector('#slo-table tbody tr[data-slo]');
  const rows = await page.locator('#slo-table tbody tr[data-slo]').count();
  assert.ok(rows >= 4, `the sample SLOs are listed (${rows} rows)`);
  // The worst budget comes first, and the burning SLO's page alert fires.
  const firing = page.locator('#slo-table tbody tr[data-state="firing"]');
  assert.ok(await firing.count() >= 1, 'a burning SLO shows its firing alert');
  await page.locator('#slo-table tbody tr[data-slo] .spark canvas').first().waitFor();
  // One fast-burn and one slow-burn cell, coloured against the thresholds.
  await page.locator('#slo-table tr[data-slo="checkout-availability"] td.fast .badge.bad').waitFor();
  // The "Alerts firing" card counts alerts.
  const alertsNow = await page.evaluate(async () => (await (await fetch('/api/v1/alerts')).json()).alerts.filter((a) => a.status === 'firing').length);
  assert.equal(await page.locator('.card', { hasText: 'Alerts firing' }).locator('.value').textContent(), String(alertsNow));
  // Sortable: by name, then back.
  await page.click('#slo-table th button[aria-label="Sort by SLO"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('sort') === 'slo');
  const names = await page.locator('#slo-table tbody tr[data-slo] td.name > a').allTextContents();
  assert.deepEqual(names, [...names].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase())), 'sorted by name');
  assert.equal(await page.locator('#slo-table th[aria-sort="ascending"]').count(), 1);
  // A grouped SLO opens to its groups.
  const catalog = page.locator('#slo-table tr[data-slo="catalog-availability"][data-kind="parent"]');
  await catalog.locator('button.expand').click();
  await page.locator('#slo-table tr[data-slo="catalog-availability"][data-kind="group"]').first().waitFor();
  await page.locator('#slo-table tr[data-slo="catalog-availability"][data-kind="parent"] button.expand').click();
  // No horizontal overflow at 1280 px.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.waitForTimeout(100);
  const overflow = await page.evaluate(() => { const s = document.querySelector('.table-scroll'); return s.scrollWidth - s.clientWidth; });
  assert.ok(overflow <= 0, `the table fits at 1280 px (${overflow} px too wide)`);
  await page.screenshot({ path: join(ARTIFACTS, 'slos-1280.png'), fullPage: true });
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.click('#slo-table th button[aria-label="Sort by Budget left"]');
  // Filters live in the URL.
  await page.fill('input[name="q"]', 'checkout');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('q') === 'checkout');
  const shown = await page.locator('#slo-table tbody tr[data-slo]').count();
  assert.ok(shown >= 1 && shown < rows, `search narrows the list (${shown} of ${rows})`);
  await page.reload();
  await page.waitForSelector('#slo-table tbody tr[data-slo]');
  assert.equal(await page.inputValue('input[name="q"]'), 'checkout', 'the search survives a reload');
  assert.equal(await page.locator('#slo-table tbody tr[data-slo]').count(), shown);
});

let sloUrl;
await step('slo-detail', async () => {
  await page.goto(`${BASE}/slos?state=firing&q=checkout-availability`);
  await page.waitForSelector('#slo-table tbody tr[data-slo]');
  await page.locator('#slo-table tbody tr[data-state="firing"] a').first().click();
  await page.waitForURL(/\/slos\/checkout-availability/);
  sloUrl = page.url();
  await page.locator('.burn-chart canvas').first().waitFor();
  assert.ok(await page.locator('.burn-chart').count() >= 2, 'a burn-rate chart per alert condition');
  await page.locator('h1 .badge.bad', { hasText: 'firing' }).waitFor();
  await page.locator('#conditions td .badge.bad', { hasText: 'met' }).first().waitFor();
  // Each condition's bad events against what the low-traffic guard needs.
  assert.match(await page.locator('#conditions tbody tr').first().textContent(), /[\d,]+ of 5 needed/);
  // Two minutes of data in a 28-day period: said next to the figures, and
  // the budget as bad events left, not days of negative downtime.
  assert.match(await page.locator('#coverage').textContent(), /Data since .* — \d+m( \d+s)? of 28d/);
  assert.match(await page.locator('.budget-events').textContent(), /bad events left of|overspent by/);
  assert.doesNotMatch(await page.locator('.card', { hasText: 'Downtime left' }).textContent(), /-\d+d/);
  await page.locator('#example-traces a').first().waitFor();
  assert.equal(await page.locator('a.runbook').getAttribute('href'), 'https://runbooks.example.com/checkout', 'the runbook is a button');
  await page.locator('text=Share of bad events').waitFor();
  await page.locator('#slo-alerts tbody tr', { hasText: 'page' }).first().waitFor();
  await page.locator('#slo-notifications tbody tr .badge', { hasText: 'delivered' }).first().waitFor();
  // The burn-driven scaling target's decision, with its figures.
  const decision = page.locator('#scaling-history tbody tr', { hasText: 'checkout-burn' }).first();
  await decision.waitFor();
  const cells = await decision.locator('td').allTextContents();
  assert.equal(cells[2], 'scale up', `${cells}`);
  assert.equal(cells[4], '2m', `${cells}`);
  assert.ok(Number(cells[3].replace(/[^\d.]/g, '')) >= 1.5 && /1\.5/.test(cells[5]), `burn rate at or over the 1.5 threshold: ${cells}`);
  await page.locator('#scaling-state tbody tr', { hasText: 'checkout-burn' }).waitFor();
  await page.locator('#slo-scaling').screenshot({ path: join(ARTIFACTS, 'slo-scaling.png') });
});

await step('trace-from-slo', async () => {
  const link = page.locator('#example-traces a').first();
  const id = (await link.textContent()).trim();
  // The link says when the trace happened, so the lookup reads those hours only.
  const lookups = [];
  const seen = (r) => { if (r.url().includes(`/api/v1/traces/${id}`)) lookups.push(r.url()); };
  page.on('request', seen);
  await link.click();
  await page.waitForURL(new RegExp(`/traces/${id}\\?at=\\d+`));
  await page.waitForSelector('#waterfall .wf-row');
  page.off('request', seen);
  assert.deepEqual(lookups.map((u) => new URL(u).searchParams.has('from')), [true], `one lookup, bounded in time: ${lookups}`);
  assert.ok(await page.locator('#waterfall .wf-row').count() >= 2, 'the waterfall shows the trace\'s spans');
  assert.ok(await page.locator('#waterfall .wf-bar.err').count() >= 1, 'the failing span is marked');
  // Keyboard: Enter on a span opens its attributes.
  await page.locator('#waterfall .wf-row').first().focus();
  await page.keyboard.press('Enter');
  await page.locator('.wf-detail:not([hidden]) dl.kv').first().waitFor();
  assert.equal(await page.locator('#waterfall .wf-row').first().getAttribute('aria-expanded'), 'true');
});

await step('back-to-slo', async () => {
  await page.goBack();
  await page.waitForURL(sloUrl);
  await page.locator('.burn-chart canvas').first().waitFor();
});

await step('slo-what-if', async () => {
  // The running policy and a looser objective, replayed over the range:
  // the incident's page is gone with the change.
  await page.locator('#what-if input[name="objective"]').fill('0.5');
  await page.locator('#what-if-run').click();
  await page.locator('#what-if-current tbody tr', { hasText: 'page' }).first().waitFor();
  await page.locator('#what-if-variant').waitFor();
  assert.equal(await page.locator('#what-if-variant tbody tr', { hasText: 'page' }).count(), 0,
    'at 50 % no failure rate of the incident burns fast enough to page');
  await page.locator('#what-if').screenshot({ path: join(ARTIFACTS, 'slo-what-if.png') });
});

await step('slo-editor', async () => {
  await page.locator('#edit-slo').click();
  await page.waitForURL(/\/slos\/checkout-availability\/edit/);
  await page.locator('#slo-problems .badge.ok').waitFor();
  // A file's SLO is tried here and changed in its file.
  assert.ok(await page.locator('#save-slo').isDisabled(), 'no saving over the SLO directory');
  // A mistake is named with its field as it is typed.
  const yaml = await page.locator('#slo-yaml').inputValue();
  await page.locator('#slo-yaml').fill(yaml.replace('target: 0.995', 'target: 1.5'));
  const problem = page.locator('#slo-problems li').first();
  await problem.waitFor();
  assert.match(await problem.textContent(), /target/);
  assert.ok(await page.locator('#run-backtest').isDisabled(), 'no backtest of an invalid SLO');
  await page.locator('#slo-yaml').fill(yaml);
  await page.locator('#slo-problems .badge.ok').waitFor();
  // The backtest shows the burn rates and the page the incident raised.
  await page.locator('#run-backtest').click();
  await page.locator('#backtest-alerts tbody tr', { hasText: 'page' }).first().waitFor();
  await page.locator('#backtest-results .burn-chart canvas').first().waitFor();
  assert.match(await page.locator('#backtest-summary').textContent(), /evaluated every/);
  assert.match(await page.locator('#backtest-results').textContent(), /Same policy as the running SLO/);
  await page.screenshot({ path: join(ARTIFACTS, 'slo-backtest.png'), fullPage: true });
  // A new SLO starts from a template that validates.
  await page.goto(`${BASE}/slos/new`);
  await page.locator('#slo-problems .badge.ok').waitFor();
});

await step('slo-exclusion', async () => {
  // An SRE excludes the last half hour of catalog's events (a maintenance
  // that went wrong): the figures leave them out at once, the charts shade
  // them, and removing the exclusion counts them again.
  await page.goto(`${BASE}/slos/catalog-availability`);
  await page.locator('#exclusion-form').waitFor();
  await page.locator('#slo-exclusions p.muted', { hasText: 'No exclusions' }).waitFor();
  const events = async () => (await page.locator('.card', { hasText: 'Events this period' }).innerText()).replace(/\s+/g, ' ');
  const before = await events();
  const utc = (ms) => new Date(ms).toISOString().slice(0, 16);
  await page.fill('#exclusion-form input[name="start"]', utc(Date.now() - 30 * 60000));
  await page.fill('#exclusion-form input[name="end"]', utc(Date.now() + 30 * 60000));
  await page.fill('#exclusion-form input[name="time_zone"]', 'UTC');
  await page.fill('#exclusion-form input[name="reason"]', 'maintenance from the UI test');
  await page.click('#exclusion-form button[type="submit"]');
  await page.locator('#exclusions-table tbody tr', { hasText: 'maintenance from the UI test' }).waitFor();
  await page.locator('.excluded-now', { hasText: 'maintenance from the UI test' }).waitFor();
  assert.match(await events(), /0 good \/ 0/, `no event counts while excluded (before: ${before})`);
  await page.locator('.chart [data-bands="1"]').first().waitFor();
  assert.match(await page.locator('.chart [role="img"]').first().getAttribute('aria-label'), /shaded: excluded: maintenance from the UI test/);
  await page.screenshot({ path: join(ARTIFACTS, 'slo-exclusion-in-force.png'), fullPage: true });
  await page.locator('#exclusions-table button', { hasText: 'Remove' }).click();
  await page.locator('#slo-exclusions p.muted', { hasText: 'No exclusions' }).waitFor();
  assert.equal(await page.locator('.excluded-now').count(), 0);
  assert.equal(await events(), before, 'the events count again');
});

await step('explore', async () => {
  await page.goto(`${BASE}/explore`);
  await page.waitForSelector('#sql');
  await page.fill('#sql', "SELECT date_bin(INTERVAL '10 seconds', start_time) AS t, service_name, count(*) AS spans FROM spans GROUP BY 1, 2 ORDER BY 1");
  await page.focus('#sql');
  await page.keyboard.press('Control+Enter');
  await page.waitForSelector('#results .vtable tbody tr[role="row"]');
  await page.waitForSelector('#chart canvas');
  assert.ok(await page.locator('#chart .u-legend .u-series').count() >= 3, 'one line per service');
  assert.ok(new URL(page.url()).searchParams.get('q').includes('date_bin'), 'the query is in the URL');
  // Reloading the URL runs the query again.
  await page.reload();
  await page.waitForSelector('#results .vtable tbody tr[role="row"]');
  assert.ok((await page.inputValue('#sql')).includes('date_bin'));
});

await step('explore-10k-rows', async () => {
  await page.fill('#sql', 'SELECT * FROM (SELECT unnest(range(0, 10000)) AS n) ORDER BY n');
  await page.click('#run');
  await page.waitForFunction(() => document.querySelector('#results .vtable')?.getAttribute('aria-rowcount') === '10001');
  const rendered = await page.locator('#results .vtable tbody tr[role="row"]').count();
  assert.ok(rendered < 200, `only the rows in view are in the DOM (${rendered})`);
  // Scrolling to the end shows the last row; the keyboard moves the active row.
  await page.locator('#results .vtable').focus();
  await page.keyboard.press('End');
  await page.locator('#results .vtable tr.active td.num', { hasText: /^9,999$/ }).waitFor();
  const responsive = await page.evaluate(async () => {
    const el = document.querySelector('#results .vtable');
    const t0 = performance.now();
    for (let i = 0; i < 20; i += 1) {
      el.scrollTop = (i * 7919 * 27) % el.scrollHeight;
      await new Promise(requestAnimationFrame);
    }
    return performance.now() - t0;
  });
  console.log(`     20 scroll frames over 10,000 rows: ${responsive.toFixed(0)} ms`);
});

await step('explore-units-and-numbers', async () => {
  await page.fill('#sql', "SELECT date_bin(INTERVAL '1 minute', start_time) AS t, avg(duration_ns) AS duration_ns, count(*) * 1.0 / 7 AS ratio FROM spans GROUP BY 1 ORDER BY 1");
  await page.click('#run');
  await page.waitForSelector('#chart canvas');
  // Durations read as durations on the axis, numbers rounded and right-aligned.
  const cell = page.locator('#results .vtable tbody tr[role="row"]').first().locator('td').nth(2);
  assert.equal(await cell.getAttribute('class'), 'num');
  assert.match(await cell.textContent(), /^[\d,]+(\.\d{1,4})?$/, 'at most 4 decimals');
  assert.match(await page.locator('#results .vtable tbody tr[role="row"] td').first().textContent(), /\d\d:\d\d:\d\d (UTC|[A-Z]{2,5}|GMT[+-][\d:]+)$/, 'times with their zone');
});

await step('explore-error', async () => {
  await page.fill('#sql', 'SELECT nope FROM spans');
  await page.click('#run');
  await page.locator('#results .error', { hasText: 'nope' }).waitFor();
  await page.fill('#sql', 'DROP TABLE spans');
  await page.click('#run');
  await page.locator('#results .error', { hasText: /read-only|not allowed|only/i }).waitFor();
});

/** "450.0ms", "1.25s", "850.0µs" → ns. */
const durationNs = (text) => {
  const m = /([\d.]+)\s*(ns|µs|ms|s)/.exec(text);
  return Number(m[1]) * { ns: 1, 'µs': 1e3, ms: 1e6, s: 1e9 }[m[2]];
};

await step('traces', async () => {
  await page.goto(`${BASE}/traces?status=ERROR`);
  await page.waitForSelector('#trace-results table tbody tr');
  // The durations found, over time.
  await page.waitForSelector('#trace-plot canvas');
  await page.locator('#trace-plot .u-legend', { hasText: 'with errors' }).waitFor();
  // Services, routes and operations are offered from the data.
  await page.locator('select[name="service"] option[value="checkout"]').waitFor({ state: 'attached' });
  await page.selectOption('select[name="service"]', 'checkout');
  const routes = await page.locator('select[name="route"] option').allTextContents();
  assert.ok(routes.some((r) => r.startsWith('/')), `checkout's routes are offered: ${routes}`);
  assert.ok(await page.locator('select[name="name"] option').count() > 1, 'checkout\'s operations are offered');
  await page.selectOption('select[name="sort"]', 'longest');
  // The search draws a new results list: the old one is marked, so that
  // the rows read below are the new search's.
  await page.evaluate(() => { document.querySelector('#trace-results').dataset.stale = 'yes'; });
  await page.click('#main form button[type="submit"]');
  await page.waitForURL((u) => u.searchParams.get('service') === 'checkout' && u.searchParams.get('sort') === 'longest');
  await page.waitForSelector('#trace-results:not([data-stale]) table tbody tr');
  // Each trace's own duration and span count, longest first.
  const rows = await page.locator('#trace-results:not([data-stale]) table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
  const durations = rows.map((r) => durationNs(r[3]));
  assert.deepEqual(durations, [...durations].sort((a, b) => b - a), `longest first: ${durations}`);
  const count = (text) => Number(text.replace(/,/g, ''));
  for (const r of rows) assert.ok(count(r[4]) >= count(r[7]), `spans ≥ matching spans: ${r}`);
  assert.ok(rows.some((r) => count(r[4]) > count(r[7])), `the trace's spans are counted, not only the matching ones: ${JSON.stringify(rows.slice(0, 5))} (${rows.length} rows, ${page.url()})`);
  await page.screenshot({ path: join(ARTIFACTS, 'traces-search.png'), fullPage: false });

  // Pages of 50: the next page starts where the first ended.
  await page.goto(`${BASE}/traces`);
  await page.waitForSelector('#trace-results table tbody tr');
  const first = await page.locator('#trace-results table tbody tr a').first().textContent();
  await page.click('#page-next');
  await page.waitForURL(/offset=50/);
  await page.locator('#trace-count', { hasText: 'Traces 51–' }).waitFor();
  assert.notEqual(await page.locator('#trace-results table tbody tr a').first().textContent(), first);
  await page.click('#page-prev');
  await page.locator('#trace-count', { hasText: 'Traces 1–50' }).waitFor();
  await page.goto(`${BASE}/traces?status=ERROR&service=checkout`);
  await page.locator('#trace-results table tbody tr a').first().click();
  await page.waitForSelector('#waterfall .wf-row');
});

await step('trace-view', async () => {
  const spans = await page.locator('#waterfall .wf-row').count();
  // A colour per service, with a legend; a time ruler over the bars.
  const services = await page.locator('#trace-services li').count();
  assert.ok(services >= 2, 'the legend lists the trace\'s services');
  const colours = await page.locator('#waterfall .wf-bar').evaluateAll((bars) => new Set(bars.map((b) => b.style.background)).size);
  assert.equal(colours, services, 'one bar colour per service');
  assert.ok(await page.locator('.wf-ruler .wf-tick').count() >= 3, 'the ruler has ticks');
  assert.match(await page.locator('.wf-ruler .wf-tick').nth(1).textContent(), /^\d+(\.\d+)?(ns|µs|ms|s)$/);
  // Span offsets: beside each bar and in the details.
  assert.match(await page.locator('#waterfall .wf-row .wf-offset').first().textContent(), /^\+\d/);
  // Collapse the root's subtree: only the root is left; Arrow keys too.
  const root = page.locator('#waterfall .wf-row').first();
  await root.locator('.wf-toggle').click();
  assert.equal(await page.locator('#waterfall .wf-row:not([hidden])').count(), 1);
  await page.locator('#trace-collapsed', { hasText: `${spans - 1} spans hidden` }).waitFor();
  await root.focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.locator('#waterfall .wf-row:not([hidden])').count(), spans);
  await page.click('#collapse-all');
  const shown = await page.locator('#waterfall .wf-row:not([hidden])').count();
  assert.ok(shown < spans, 'collapse all hides the inner subtrees');
  // Find in the trace: matches marked, others dimmed; Enter reaches a
  // match inside a collapsed subtree.
  const name = await page.locator('#trace-services li').last().textContent();
  const service = name.replace(/\s*\(\d+\)\s*$/, '');
  await page.fill('#trace-find', service);
  await page.locator('#trace-find-count', { hasText: `of ${spans} spans match` }).waitFor();
  const matching = await page.locator('#waterfall .wf-row.match').count();
  assert.ok(matching >= await page.locator(`#waterfall .wf-row[data-service="${service}"]`).count(), 'every span of the service matches');
  assert.match(await page.locator('#trace-find-count').textContent(), new RegExp(`^${matching} of ${spans} spans match`));
  assert.ok(await page.locator('#waterfall .wf-row.dim').count() >= spans - matching);
  await page.locator('#trace-find').press('Enter');
  await page.locator('#trace-find-count', { hasText: `1 of ${matching} matching spans` }).waitFor();
  assert.ok(await page.locator('#waterfall .wf-row.match:not([hidden])').count() >= 1, 'the first match is shown');
  await page.click('#expand-all');
  await page.locator('#waterfall .wf-row.match').first().click();
  await page.locator('.wf-detail:not([hidden]) dt', { hasText: 'offset' }).waitFor();
  await page.fill('#trace-find', '');
  assert.equal(await page.locator('#waterfall .wf-row.dim').count(), 0);
});

await step('logs', async () => {
  // A text search: the volume per severity, column headers, the matches
  // marked, and a record that opens to its attributes.
  await page.goto(`${BASE}/logs?q=declined`);
  await page.waitForSelector('#log-volume canvas');
  await page.locator('#log-results .log-header', { hasText: 'Message' }).waitFor();
  assert.equal((await page.locator('#log-results .logrecord mark').first().textContent()).toLowerCase(), 'declined');
  const record = page.locator('#log-results .logrecord .logline').first();
  await record.focus();
  await page.keyboard.press('Enter');
  assert.equal(await record.getAttribute('aria-expanded'), 'true');
  await page.locator('#log-results .log-detail:not([hidden]) dt', { hasText: 'trace_id' }).waitFor();
  await page.locator('#log-results .log-detail:not([hidden]) h4', { hasText: 'Resource' }).waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'logs-search.png'), fullPage: false });
  // A thousand records: only those in view are in the page, and the list
  // scrolls to its end.
  await page.goto(`${BASE}/logs`);
  await page.locator('#log-count', { hasText: '1,000 records' }).waitFor();
  assert.ok(await page.locator('#log-list .logrecord').count() < 150, 'only the records in view are rendered');
  assert.ok(await page.evaluate(() => document.documentElement.scrollHeight) < 1400, 'the page does not grow with the records');
  await page.locator('#log-volume .u-legend', { hasText: 'info and below' }).waitFor();
  await page.locator('#log-scroll').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await page.waitForFunction(() => {
    const el = document.getElementById('log-scroll');
    const spacer = document.querySelector('#log-list > .spacer:last-child');
    return spacer && spacer.style.height === '0px' && el.scrollTop + el.clientHeight >= el.scrollHeight - 2;
  });
  assert.ok(await page.locator('#log-list .logrecord').count() < 150);
  await page.screenshot({ path: join(ARTIFACTS, 'logs-1000.png'), fullPage: false });
  await page.goto(`${BASE}/logs?severity=ERROR`);
  await page.waitForSelector('#log-results .logline');
  const link = page.locator('#log-results .logline a').first();
  await link.waitFor();
  await link.click();
  await page.waitForSelector('#waterfall .wf-row');
});

/** Sends one log record over OTLP/HTTP JSON, as an SDK would. */
async function sendLog(body) {
  const record = { timeUnixNano: String(BigInt(Date.now()) * 1000000n), severityNumber: 9, severityText: 'INFO', body: { stringValue: body } };
  const answer = await fetch(`${process.env.SMOLDER_OTLP_URL}/v1/logs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'live-check' } }] }, scopeLogs: [{ logRecords: [record] }] }] }),
  });
  assert.equal(answer.status, 200, await answer.text());
}

await step('logs-live-tail', async () => {
  await page.goto(`${BASE}/logs`);
  await page.click('#live-tail');
  await page.waitForURL(/live=1/);
  await page.locator('#live-status', { hasText: 'Live' }).waitFor();
  assert.equal(await page.locator('#live-tail').getAttribute('aria-pressed'), 'true');
  // At the top of the list, a new record appears on top by itself.
  await sendLog('live tail shows this first');
  await page.locator('#log-list .logrecord', { hasText: 'live tail shows this first' }).waitFor({ timeout: 10000 });
  assert.match(await page.locator('#log-list .logrecord').first().textContent(), /live tail shows this first/);
  // Scrolled down to read, new records wait behind a button.
  await page.locator('#log-scroll').evaluate((el) => { el.scrollTop = 3000; });
  await sendLog('live tail kept this one waiting');
  await page.locator('#live-new', { hasText: '1 new record' }).waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#log-list .logrecord', { hasText: 'live tail kept this one waiting' }).count(), 0);
  await page.click('#live-new');
  await page.locator('#log-list .logrecord', { hasText: 'live tail kept this one waiting' }).first().waitFor();
  assert.equal(await page.locator('#log-scroll').evaluate((el) => el.scrollTop), 0);
  await page.click('#live-tail');
  await page.waitForURL((u) => !u.searchParams.has('live'));
});

await step('alerts-and-silence', async () => {
  await page.goto(`${BASE}/alerts`);
  // Grouped by SLO and severity; few groups open by themselves.
  const group = page.locator('#alert-groups details.alert-group[data-slo="checkout-availability"]').first();
  await group.waitFor();
  await page.waitForSelector('#notifications-table tbody tr');
  // Notifications say firing or resolved, and their group (the on-call
  // receiver's; the scaling target's say scale_up).
  const note = page.locator('#notifications-table tbody tr', { hasText: 'checkout-availability' }).filter({ hasText: 'on-call' }).first();
  await page.locator('#notifications-table tbody tr .status-scale_up').first().waitFor();
  assert.match(await note.locator('.badge').first().textContent(), /firing|resolved/);
  assert.match(await note.locator('.group-key').textContent(), /slo="checkout-availability"/);
  // And what was sent: the webhook's body.
  await note.locator('details.payload > summary').click();
  await page.waitForFunction(() => !document.querySelector('details.payload[open] pre').textContent.startsWith('Loading'));
  const sent = JSON.parse(await note.locator('details.payload pre').textContent());
  assert.equal(sent.status, 'firing');
  assert.ok(sent.alerts.some((a) => a.slo === 'checkout-availability'), 'the payload holds the alert');
  // An alert opens, by keyboard, to its description, values, causes,
  // example traces and runbook.
  // Few groups: they are open, each alert a line of its own.
  assert.equal(await group.getAttribute('open'), '', 'a short list opens whole');
  // A ticket under a firing page of the same SLO is inhibited, and says by what.
  const inhibited = page.locator('#alert-groups details.alert[data-state="inhibited"]').first();
  await inhibited.locator(':scope > summary').click();
  assert.match(await inhibited.locator('.suppressed-by').first().textContent(), /Inhibited by the page alert of /);
  const alert = group.locator('details.alert').first();
  await alert.locator(':scope > summary').focus();
  await page.keyboard.press('Enter');
  const detail = alert.locator('.alert-detail');
  await detail.waitFor();
  assert.match(await detail.textContent(), /Burn rate over 1h/);
  assert.equal(await detail.locator('a.runbook').getAttribute('href'), 'https://runbooks.example.com/checkout');
  await detail.locator('ul.examples a').first().waitFor();
  // Label matchers filter the list, from the URL too; a bad one is explained.
  await page.fill('#alert-filter', 'severity="ticket", slo="checkout-availability"');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('filter')?.includes('ticket'));
  assert.equal(await page.locator('#alert-groups details.alert-group.severity-page').count(), 0, 'only tickets are left');
  await page.fill('#alert-filter', 'slo=checkout');
  await page.locator('#active-alerts ~ div .error, .error', { hasText: 'cannot read the matcher' }).first().waitFor();
  await page.fill('#alert-filter', 'slo="checkout-availability", severity="page"');
  await group.waitFor();
  // Silence it: it shows as silenced, with who and why.
  const row = page.locator('#alert-groups details.alert', { hasText: 'page' }).first();
  if ((await row.getAttribute('open')) === null) await row.locator(':scope > summary').click();
  await row.locator('button.silence').click();
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  assert.match(await dialog.locator('textarea[name="matchers"]').inputValue(), /slo="checkout-availability"/);
  await dialog.locator('input[name="created_by"]').fill('e2e-test');
  await dialog.locator('input[name="comment"]').fill('silenced from the UI test');
  await dialog.locator('button[type="submit"]').click();
  await page.locator('#silences-table tbody tr', { hasText: 'silenced from the UI test' }).waitFor();
  const silenced = page.locator('#alert-groups details.alert[data-state="silenced"]').first();
  await silenced.waitFor();
  if ((await silenced.getAttribute('open')) === null) await silenced.locator(':scope > summary').click();
  assert.match(await silenced.locator('.suppressed-by').first().textContent(), /Silenced by e2e-test until .* — “silenced from the UI test”/);
  await page.screenshot({ path: join(ARTIFACTS, "alerts-silenced.png"), fullPage: true });
  const silence = page.locator('#silences-table tbody tr', { hasText: 'silenced from the UI test' });
  assert.match(await silence.textContent(), /slo="checkout-availability"/);
  // Expire it again.
  await silence.locator('button', { hasText: 'Expire' }).click();
  await page.locator('#silences-table tbody tr', { hasText: 'silenced from the UI test' }).locator('.badge', { hasText: 'expired' }).waitFor();
});

await step('reports', async () => {
  await page.goto(`${BASE}/reports`);
  // This month per service: the burning checkout SLO with its page.
  const checkout = page.locator('#report tr[data-slo="checkout-availability"]');
  await checkout.waitFor();
  const cells = await checkout.locator('td').allInnerTexts();
  assert.match(cells[2], /%/, 'the SLI');
  assert.match(cells[6], /\d+ page/, 'its page counted as an incident');
  assert.match(await page.locator('#report-heading').innerText(), /^Month from \d{4}-\d\d-01 00:00:00/);
  // The CSV link gives the same lines.
  const href = await page.locator('#report-csv').getAttribute('href');
  const csv = await page.evaluate(async (u) => (await fetch(u)).text(), href);
  assert.match(csv.split('\n')[0], /^group,slo,service,team,objective,sli/);
  assert.ok(csv.includes(',checkout-availability,checkout,'), csv);
  // Per team label, for the week: the form puts it in the URL.
  await page.selectOption('#report-by', 'team');
  await page.selectOption('#report-period', 'week');
  await page.click('#report-form button[type="submit"]');
  await page.waitForURL(/by=team/);
  await page.waitForFunction(() => /^Week from/.test(document.querySelector('#report-heading')?.textContent || ''));
  await page.locator('#report section.report-group').first().waitFor();
});

await step('status', async () => {
  await page.goto(`${BASE}/status`);
  await page.waitForSelector('#ingest-table tbody tr');
  const text = await page.locator('#status').textContent();
  assert.match(text, /traces/);
  assert.match(text, /fsync|off/);
  // The SLO engine's ticks and the notification queue.
  assert.match(await page.locator('#slo-engine').textContent(), /last tick\d{4}-\d\d-\d\d .* rollups [\d.]+ ms/);
  assert.match(await page.locator('#notification-queue').textContent(), /delivered[1-9]/);
});

await step('zone-theme-and-not-found', async () => {
  // The time picker shows only where the time range applies.
  await page.goto(`${BASE}/alerts`);
  await page.waitForSelector('#alert-groups, #active-alerts p');
  assert.equal(await page.locator('#timepicker').isVisible(), false, 'no time range on the Alerts page');
  // One format, in UTC once switched to it, everywhere.
  await page.click('#zone');
  await page.locator('#zone', { hasText: 'UTC' }).waitFor();
  await page.waitForSelector('#notifications-table tbody tr');
  assert.match(await page.locator('#notifications-table tbody tr td').first().textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  await page.click('#zone');
  await page.locator('#zone', { hasText: 'Local' }).waitFor();
  // Dark theme: the system's preference, and the switch.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${BASE}/slos`);
  await page.waitForSelector('#slo-table tbody tr[data-slo]');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor || getComputedStyle(document.documentElement).backgroundColor);
  const rootBg = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  assert.ok([bg, rootBg].some((c) => c === 'rgb(13, 17, 23)'), `dark background (${bg}, ${rootBg})`);
  await page.screenshot({ path: join(ARTIFACTS, 'dark-slos.png'), fullPage: true });
  await page.goto(sloUrl);
  await page.locator('.burn-chart canvas').first().waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'dark-slo-detail.png'), fullPage: true });
  await page.goto(`${BASE}/traces?status=ERROR`);
  await page.waitForSelector('#trace-plot canvas');
  await page.screenshot({ path: join(ARTIFACTS, 'dark-traces.png'), fullPage: false });
  await page.locator('#trace-results table tbody tr a').first().click();
  await page.waitForSelector('#waterfall .wf-row');
  // The first service's bars take the dark palette's first colour (#58a6ff).
  assert.equal(await page.locator('#waterfall .wf-bar').first().evaluate((b) => b.style.background), 'rgb(88, 166, 255)');
  await page.screenshot({ path: join(ARTIFACTS, 'dark-trace.png'), fullPage: false });
  await page.goto(`${BASE}/logs`);
  await page.waitForSelector('#log-volume canvas');
  await page.screenshot({ path: join(ARTIFACTS, 'dark-logs.png'), fullPage: false });
  await page.click('#theme'); // auto → light
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light', 'light although the system is dark');
  await page.click('#theme'); // light → dark
  await page.click('#theme'); // dark → auto
  await page.emulateMedia({ colorScheme: 'light' });
  // An unknown SLO: a proper view with ways back.
  expected404.push('/api/v1/slos/no-such-slo');
  await page.goto(`${BASE}/slos/no-such-slo`);
  await page.locator('#not-found', { hasText: 'no-such-slo' }).waitFor();
  await page.locator('#not-found a', { hasText: 'All SLOs' }).click();
  await page.waitForSelector('#slo-table tbody tr[data-slo]');
});

await step('time-picker', async () => {
  await page.goto(`${BASE}/slos/checkout-availability?range=1h`);
  await page.locator('.burn-chart canvas').first().waitFor();
  // Shift back by the range's length: an absolute hour ending an hour ago.
  await page.click('#shift-back');
  await page.waitForURL(/range=custom/);
  let u = new URL(page.url());
  const len = Date.parse(u.searchParams.get('to')) - Date.parse(u.searchParams.get('from'));
  assert.ok(Math.abs(len - 3600e3) < 5e3, `an hour long (${len} ms)`);
  assert.ok(Date.now() - Date.parse(u.searchParams.get('to')) > 3500e3, 'ending about an hour ago');
  // Zoom out: twice as long.
  await page.click('#zoom-out');
  await page.waitForFunction((prev) => new URL(location.href).searchParams.get('from') !== prev, u.searchParams.get('from'));
  u = new URL(page.url());
  assert.ok(Math.abs(Date.parse(u.searchParams.get('to')) - Date.parse(u.searchParams.get('from')) - 7200e3) < 5e3, 'two hours after zooming out');
  // A relative custom range stays relative.
  const drawn = await page.locator('.charts').getAttribute('data-range');
  await page.fill('#from', 'now-30m');
  await page.fill('#to', 'now');
  await page.click('#timepicker button[type="submit"]');
  await page.waitForURL(/from=now-30m/);
  // Drag across a chart (once the page drew the new range): the page's
  // range becomes the dragged stretch.
  await page.waitForFunction((before) => {
    const c = document.querySelector('.charts');
    return c && c.dataset.range !== before && c.querySelector('.burn-chart canvas');
  }, drawn);
  const over = page.locator('.burn-chart .u-over').first();
  await over.scrollIntoViewIfNeeded();
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => /^\d{4}-/.test(new URL(location.href).searchParams.get('from') || ''));
  u = new URL(page.url());
  const dragged = Date.parse(u.searchParams.get('to')) - Date.parse(u.searchParams.get('from'));
  assert.ok(dragged > 5 * 60e3 && dragged < 16 * 60e3, `about 40% of 30 minutes (${dragged} ms)`);
  // Auto-refresh is in the URL and follows navigation.
  await page.selectOption('#refresh', '30s');
  await page.waitForURL(/refresh=30s/);
  // Explore's macros stand for the range.
  await page.goto(`${BASE}/explore?range=15m&q=${encodeURIComponent('SELECT count(*) AS n, min(start_time) AS first FROM spans WHERE $__timeFilter(start_time)')}`);
  await page.waitForSelector('#results .vtable tbody tr[role="row"]');
  assert.ok(await page.locator('#timepicker').isVisible(), 'Explore has the picker');
});

await step('time-range-and-keyboard', async () => {
  await page.goto(`${BASE}/traces`);
  await page.waitForSelector('#trace-results');
  await page.selectOption('#range', '15m');
  await page.waitForURL(/range=15m/);
  // The range follows in-app navigation.
  await page.click('nav a[data-page="logs"]');
  await page.waitForURL(/\/logs\?range=15m/);
  assert.equal(await page.inputValue('#range'), '15m');
  // From a fresh load, Tab reaches the skip link first, then the navigation.
  await page.reload();
  await page.waitForSelector('#log-results');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.closest('nav') !== null), true);
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none', 'focus is visible');
});

await step('cross-origin-pages-cannot-change-anything', async () => {
  // The same server under another name is another origin: a page there is
  // what a hostile page in the SRE's browser would be. Its requests reach the
  // server (both are local), and must change nothing.
  const elsewhere = BASE.replace('127.0.0.1', 'localhost');
  assert.notEqual(elsewhere, BASE, 'SMOLDER_URL names 127.0.0.1');
  const other = await context.newPage();
  await other.goto(`${elsewhere}/healthz`);
  const silence = JSON.stringify({ matchers: ['slo=~".+"'], duration: '720h', created_by: 'cross-origin' });
  const sent = await other.evaluate(async ({ target, body }) => {
    const attempts = [
      fetch(`${target}/api/v1/silences`, { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body }),
      fetch(`${target}/api/v1/silences`, { method: 'POST', mode: 'no-cors', body: new URLSearchParams({ body }) }),
      fetch(`${target}/-/reload`, { method: 'POST', mode: 'no-cors' }),
    ];
    return (await Promise.allSettled(attempts)).map((r) => r.status);
  }, { target: BASE, body: silence });
  await other.close();
  assert.deepEqual(sent, ['fulfilled', 'fulfilled', 'fulfilled'], 'the requests were sent');
  const answer = await page.evaluate(async () => (await fetch('/api/v1/silences')).json());
  assert.ok(!JSON.stringify(answer).includes('cross-origin'), `a page of another origin created a silence: ${JSON.stringify(answer)}`);
});

await browser.close();
console.log(`\n${results.length} UI checks passed; screenshots in ${ARTIFACTS}`);
