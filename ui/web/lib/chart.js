// Charts through uPlot (npm `uplot`, embedded at build time): fast canvas
// charts that stay smooth with thousands of points.
import uPlot from '/ui/vendor/uPlot.esm.js';

export const PALETTE = ['#0b57d0', '#c2410c', '#15803d', '#7e22ce', '#be123c', '#0e7490', '#a16207', '#4338ca', '#525252', '#b45309'];

/**
 * A time-series chart in `el`.
 * spec: { title, timestamps: ms[], series: [{label, values, color?, dash?}], format?(v) for the legend,
 *         axisFormat?(v) for the y axis, height?, min?, max? }
 */
export function timeChart(el, spec) {
  const format = spec.format || ((v) => (v === null || v === undefined ? '—' : +v.toPrecision(4)));
  const width = Math.max(300, el.clientWidth || 600);
  const opts = {
    width,
    height: spec.height || 220,
    series: [
      { label: 'time' },
      ...spec.series.map((s, i) => ({
        label: s.label,
        stroke: s.color || PALETTE[i % PALETTE.length],
        width: s.dash ? 1 : 1.75,
        dash: s.dash ? [6, 4] : undefined,
        value: (u, v) => format(v),
        // A line of a few points is hard to see: mark them.
        points: { show: s.values.filter((v) => v !== null && v !== undefined).length < 30 },
      })),
    ],
    axes: [
      { stroke: '#57606a', grid: { stroke: '#eaeef2' } },
      { stroke: '#57606a', grid: { stroke: '#eaeef2' }, size: 72, values: (u, vals) => vals.map(spec.axisFormat || format) },
    ],
    scales: {
      x: { time: true },
      y: spec.min !== undefined || spec.max !== undefined
        ? { range: (u, lo, hi) => [spec.min ?? lo, Math.max(spec.max ?? hi, hi)] }
        : {},
    },
    legend: { live: true },
  };
  const data = [spec.timestamps.map((t) => t / 1000), ...spec.series.map((s) => s.values)];
  el.setAttribute('role', 'img');
  el.setAttribute('aria-label', spec.title || spec.series.map((s) => s.label).join(', '));
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
export function sparkline(el, timestamps, values, color = '#0b57d0') {
  const opts = {
    width: 120,
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
