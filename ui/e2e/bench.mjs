// Browser side of scripts/bench_ui.py: how long the SLO overview takes to
// render in headless Chromium, from navigation start until every row is in
// the table (module loading, the API calls and rendering included).
//
//   SMOLDER_URL=http://127.0.0.1:PORT node ui/e2e/bench.mjs ROWS RUNS
// Prints one JSON line: {"runs_ms": [...]}.
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
const times = [];
for (let i = 0; i < runs + 1; i += 1) {
  await page.goto(`${BASE}/slos`);
  await page.waitForFunction((n) => document.querySelectorAll('#slo-table tbody tr').length >= n, rows);
  // Rendered: wait for the frame that paints the table.
  const ms = await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now()))));
  if (i > 0) times.push(ms); // the first load warms the server's caches and the browser
}
await browser.close();
console.log(JSON.stringify({ runs_ms: times }));
