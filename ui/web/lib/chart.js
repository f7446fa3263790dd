// Charts through uPlot (npm `uplot`, embedded at build time): fast canvas
// charts that stay smooth with thousands of points.
import uPlot from '/ui/vendor/uPlot.esm.js';
import { si, tick, time, zone } from '/ui/lib/format.js';

const LIGHT = ['#0b57d0', '#c2410c', '#15803d', '#7e22ce', '#be123c', '#0e7490', '#a16207', '#4338ca', '#525252', '#b45309'];
const DARK = ['#58a6ff', '#f0883e', '#56d364', '#d2a8ff', '#ff7b72', '#39c5cf', '#e3b341', '#a5b4fc', '#b1bac4', '#ffa657'];

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** The series colours of the current theme. */
export function palette() {
  return css('color-scheme') === 'dark' ? DARK : LIGHT;
}

/** Tick spacings (seconds) a time axis may use: whole seconds, minutes,
 * hours and days, never finer than the data's own step. */
const INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
  86400, 172800, 604800, 2592000];

function dataStep(timestamps) {
  let step = Infinity;
  for (let i = 1; i < timestamps.length; i += 1) {
    const d = (timestamps[i] - timestamps[i - 1]) / 1000;
    if (d > 0 && d < step) step = d;
  }
  return Number.isFinite(step) ? step : 1;
}

/**
 * A time-series chart in `el`.
 * spec: { title, timestamps: ms[], series: [{label, values, color?, dash?}], format?(v) for the legend,
 *         axisFormat?(v) for the y axis, height?, min?, max?, xRange?: [from, to] ms }
 * A series may be `bars` (filled bars) or `scatter` (points only), and carry
 * `raw` values for the legend when it draws others (stacked sums).
 * `bands: [{from, to (ms), label}]` are shaded behind the lines (budget
 * exclusions).
 */
export function timeChart(el, spec) {
  const format = spec.format || ((v) => (v === null || v === undefined ? '—' : si(v)));
  const width = Math.max(300, el.clientWidth || 600);
  const colours = palette();
  const step = dataStep(spec.timestamps);
  const axis = css('--chart-axis') || '#57606a';
  const grid = css('--chart-grid') || '#eaeef2';
  const opts = {
    width,
    height: spec.height || 220,
    // Times in the zone the header chose.
    tzDate: zone() === 'utc' ? (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC') : (ts) => new Date(ts * 1000),
    series: [
      { label: 'time', value: (u, v) => (v === null || v === undefined ? '—' : time(v * 1000)) },
      ...spec.series.map((s, i) => {
        const stroke = s.color || colours[i % colours.length];
        return {
          label: s.label,
          stroke,
          width: s.dash ? 1 : 1.75,
          dash: s.dash ? [6, 4] : undefined,
          // `raw`: the values the legend shows when the drawn ones differ
          // (stacked bars draw sums).
          value: s.raw ? (u, v, si, i) => format(i === null ? null : s.raw[i]) : (u, v) => format(v),
          // A line of a few points is hard to see: mark them. A scatter
          // series is its points only; a bar series fills its bars.
          points: s.scatter
            ? { show: true, size: 7, width: 1, stroke, fill: `${stroke}99` }
            : { show: !s.bars && s.values.filter((v) => v !== null && v !== undefined).length < 30 },
          paths: s.scatter ? () => null : s.bars ? uPlot.paths.bars({ size: [0.9, 40], align: 1 }) : undefined,
          fill: s.bars ? stroke : undefined,
        };
      }),
    ],
    axes: [
      {
        stroke: axis,
        grid: { stroke: grid },
        ticks: { stroke: grid },
        // Ticks no closer than the data's step, 24-hour labels on one line.
        incrs: INCRS.filter((x) => x >= Math.min(step, 86400)),
        space: 70,
        values: (u, splits, ax, space, incr) => splits.map((v) => tick(v, incr)),
      },
      {
        stroke: axis,
        grid: { stroke: grid },
        ticks: { stroke: grid },
        size: 64,
        values: (u, vals) => vals.map(spec.axisFormat || format),
      },
    ],
    scales: {
      // `xRange` ([from, to] ms): the page's range rather than the data's.
      x: spec.xRange ? { time: true, range: () => spec.xRange.map((t) => t / 1000) } : { time: true },
      y: spec.min !== undefined || spec.max !== undefined
        ? {
          // A fixed end where asked for; the other rounded up to a tick, so
          // the top of the data has a label above it.
          range: (u, lo, hi) => {
            const [niceLo, niceHi] = uPlot.rangeNum(spec.min ?? lo, hi, 0.1, true);
            return [spec.min ?? niceLo, spec.max !== undefined ? Math.max(spec.max, hi) : niceHi];
          },
        }
        : {},
    },
    legend: { live: true },
    // A drag selects a stretch of time for the whole page (app.js), not a
    // zoom of this chart alone.
    cursor: { drag: { x: true, y: false, setScale: false } },
    hooks: {
      setSelect: [(u) => {
        if (u.select.width < 3) return;
        const from = u.posToVal(u.select.left, 'x') * 1000;
        const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        if (to > from) window.dispatchEvent(new CustomEvent('smolder:range', { detail: { from, to } }));
      }],
    },
  };
  const bands = spec.bands || [];
  if (bands.length) {
    // Behind the axes and lines: drawn right after the canvas is cleared.
    opts.hooks.drawClear = [(u) => {
      const c = u.ctx;
      c.save();
      c.fillStyle = css('--chart-band') || 'rgba(130, 80, 223, 0.14)';
      for (const b of bands) {
        const left = Math.max(u.valToPos(b.from / 1000, 'x', true), u.bbox.left);
        const right = Math.min(u.valToPos(b.to / 1000, 'x', true), u.bbox.left + u.bbox.width);
        if (right > left) c.fillRect(left, u.bbox.top, right - left, u.bbox.height);
      }
      c.restore();
    }];
  }
  const data = [spec.timestamps.map((t) => t / 1000), ...spec.series.map((s) => s.values)];
  el.setAttribute('role', 'img');
  const shaded = bands.length ? `; shaded: ${[...new Set(bands.map((b) => b.label))].join(', ')}` : '';
  el.setAttribute('aria-label', (spec.title || spec.series.map((s) => s.label).join(', ')) + shaded);
  el.dataset.bands = String(bands.length);
  const chart = new uPlot(opts, data, el);
  const ro = new ResizeObserver(() => {
    const w = Math.max(300, el.clientWidth);
    if (Math.abs(w - chart.width) > 4) chart.setSize({ width: w, height: opts.height });
  });
  ro.observe(el);
  chart.dispose = () => { ro.disconnect(); chart.destroy(); };
  return chart;
}

/** A small line without axes, for tables. */
export function sparkline(el, timestamps, values, color = palette()[0]) {
  const opts = {
    width: 100,
    height: 28,
    cursor: { show: false },
    select: { show: false },
    legend: { show: false },
    axes: [{ show: false }, { show: false }],
    scales: { x: { time: false } },
    series: [{}, { stroke: color, width: 1.5, fill: `${color}22`, points: { show: false } }],
  };
  return new uPlot(opts, [timestamps, values], el);
}

/**
 * A scatter plot over time (Jaeger's duration plot): points `{ t: ms, v,
 * bad?: bool }`, ok points in the first colour, bad ones red. A click on a
 * point (within 8 px) calls `onPick(index)`; a drag selects a range like
 * the other charts.
 */
export function scatterChart(el, { title, points, format = si, axisFormat, okLabel = 'ok', badLabel = 'error', onPick, height = 160 }) {
  const order = points.map((p, i) => i).sort((a, b) => points[a].t - points[b].t);
  const xs = order.map((i) => points[i].t / 1000);
  const ok = order.map((i) => (points[i].bad ? null : points[i].v));
  const bad = order.map((i) => (points[i].bad ? points[i].v : null));
  const colours = palette();
  const chart = timeChart(el, {
    title,
    height,
    min: 0,
    format,
    axisFormat,
    timestamps: xs.map((x) => x * 1000),
    series: [
      { label: okLabel, values: ok, color: colours[0], scatter: true },
      { label: badLabel, values: bad, color: css('--fill-bad') || '#cf222e', scatter: true },
    ],
  });
  if (onPick) {
    chart.over.style.cursor = 'pointer';
    chart.over.addEventListener('click', () => {
      const { left, top } = chart.cursor;
      let best = -1;
      let bestDist = 64; // 8 px squared
      for (let k = 0; k < xs.length; k += 1) {
        const v = ok[k] ?? bad[k];
        const dx = chart.valToPos(xs[k], 'x') - left;
        const dy = chart.valToPos(v, 'y') - top;
        if (dx * dx + dy * dy < bestDist) { best = k; bestDist = dx * dx + dy * dy; }
      }
      if (best >= 0) onPick(order[best]);
    });
  }
  return chart;
}
