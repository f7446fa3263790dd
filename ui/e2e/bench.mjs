// Browser side of scripts/bench_ui.py: how long the SLO overview takes to
// render in headless Chromium, from navigation start until the table knows
// all its rows and paints those in view (module loading, the API calls and
// rendering included); then how long a jump to the last row takes.
//
//   SMOLDER_URL=http://127.0.0.1:PORT node ui/e2e/bench.mjs ROWS RUNS
// Prints one JSON line: {"runs_ms": [...], "scroll_ms": [...], "dom_rows": N}.
// With a third argument `alerts` (scripts/bench_alerts_ui.py): the Alerts
// page instead, {"runs_ms": [...], "dom_nodes": N, "height_px": N}.
import { chromium } from 'playwright-core';

const BASE = process.env.SMOLDER_URL;
const rows = Number(process.argv[2] || 1000);
const runs = Number(process.argv[3] || 10);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
page.setDefaultTimeout(60000);
if (process.argv[4] === 'alerts') {
  // The Alerts page: navigation start → the grouped list painted.
  const times = [];
  let dom = 0;
  let height = 0;
  for (let i = 0; i < runs + 1; i += 1) {
    await page.goto(`${BASE}/alerts`);
    await page.waitForSelector('#alert-groups details.alert-group');
    const ms = await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now()))));
    if (i === 0) continue;
    times.push(ms);
    dom = await page.evaluate(() => document.getElementsByTagName('*').length);
    height = await page.evaluate(() => document.documentElement.scrollHeight);
  }
  await browser.close();
  console.log(JSON.stringify({ runs_ms: times, dom_nodes: dom, height_px: height }));
  process.exit(0);
}
const times = [];
const scrolls = [];
let domRows = 0;
for (let i = 0; i < runs + 1; i += 1) {
  await page.goto(`${BASE}/slos`);
  await page.waitForFunction((n) => {
    const table = document.querySelector('#slo-table');
    return table && Number(table.getAttribute('aria-rowcount')) >= n + 1
      && table.querySelector('tbody tr[data-slo]');
  }, rows);
  // Rendered: wait for the frame that paints the table.
  const ms = await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now()))));
  if (i === 0) continue; // the first load warms the server's caches and the browser
  times.push(ms);
  domRows = await page.locator('#slo-table tbody tr[data-slo]').count();
  // Jump to the end: the last row must be painted.
  scrolls.push(await page.evaluate(async (n) => {
    const scroller = document.querySelector('#slo-table').parentElement;
    const t0 = performance.now();
    scroller.scrollTop = scroller.scrollHeight;
    for (;;) {
      await new Promise(requestAnimationFrame);
      if (document.querySelector(`#slo-table tr[aria-rowindex="${n + 1}"]`)) break;
    }
    await new Promise(requestAnimationFrame);
    return performance.now() - t0;
  }, rows));
}
await browser.close();
console.log(JSON.stringify({ runs_ms: times, scroll_ms: scrolls, dom_rows: domRows }));
