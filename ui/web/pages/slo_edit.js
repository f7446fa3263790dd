// The SLO editor (/slos/new, /slos/{id}/edit): OpenSLO or Sloth YAML,
// validated as it is typed (POST /api/v1/slos/validate: every problem with
// its field), backtested over stored history before it is saved (the burn
// rates, the alerts it would have raised and the notifications they would
// have sent, and for a change the alerts it adds, removes and moves), then
// saved with PUT /api/v1/slos/{id}.
import { api } from '/ui/lib/api.js';
import { errorBox, h, mount, toast } from '/ui/lib/dom.js';
import { navigate, notFound } from '/ui/app.js';
import { backtestCharts, backtestView, runBacktest } from '/ui/pages/backtest.js';

const TEMPLATE = `apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
spec:
  service: checkout
  indicator:
    metadata:
      name: checkout-ok
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'checkout' AND status_code <> 'ERROR'"
        total:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'checkout'"
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.995
`;

const RANGES = [['1d', 86400], ['7d', 7 * 86400], ['30d', 30 * 86400]];

export async function render(main, ctx) {
  const id = ctx.args[0];
  let source = null;
  if (id) {
    ctx.title(`Edit ${id}`);
    try {
      const slo = await api(`/api/v1/slos/${encodeURIComponent(id)}`);
      source = slo.source || null;
    } catch (err) {
      if (err.status !== 404) throw err;
      if (ctx.alive()) notFound(main, `There is no SLO “${id}”.`);
      return;
    }
    if (!ctx.alive()) return;
  } else {
    ctx.title('New SLO');
  }
  const fromFile = source && source.origin === 'file';
  const editor = h('textarea', {
    id: 'slo-yaml', class: 'code', rows: '28', spellcheck: 'false', 'aria-label': 'SLO YAML',
    value: source ? source.yaml : TEMPLATE,
  });
  const problems = h('div', { id: 'slo-problems', role: 'status', 'aria-live': 'polite' });
  const results = h('div', { id: 'backtest-results' });
  const range = h('select', { 'aria-label': 'Backtest range' },
    RANGES.map(([label, secs]) => h('option', { value: String(secs), selected: label === '7d' }, `last ${label}`)));
  const backtestButton = h('button', { type: 'button', id: 'run-backtest', onclick: () => backtest() }, 'Backtest');
  const saveButton = h('button', {
    type: 'button', id: 'save-slo', class: 'primary', disabled: fromFile,
    title: fromFile ? `Defined in the SLO directory (${source.file}): change the file there.` : undefined,
    onclick: () => save(),
  }, 'Save');
  let valid = null; // {ids} of the last valid text
  let disposables = [];
  ctx.onCleanup(() => disposables.forEach((d) => d.dispose()));

  mount(main,
    h('p', {}, h('a', { href: id ? `/slos/${encodeURIComponent(id)}` : '/slos' }, id ? `← ${id}` : '← All SLOs')),
    h('h1', {}, id ? `Edit ${id}` : 'New SLO'),
    fromFile ? h('p', { class: 'note' }, `This SLO comes from ${source.file} in the SLO directory: try changes here, then make them in the file.`) : null,
    h('div', { class: 'editor' }, editor, problems),
    h('div', { class: 'toolbar' }, range, backtestButton, saveButton),
    results);

  let timer = null;
  editor.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(validate, 400);
  });
  ctx.onCleanup(() => clearTimeout(timer));
  await validate();

  async function validate() {
    const yaml = editor.value;
    try {
      const answer = await api('/api/v1/slos/validate', { method: 'POST', body: { slo: yaml } });
      if (!ctx.alive() || yaml !== editor.value) return;
      if (answer.problems.length) {
        valid = null;
        mount(problems, h('ul', { class: 'problems' }, answer.problems.map((p) =>
          h('li', {}, h('span', { class: 'mono' }, p.field || `document ${p.document}`), ': ', p.message))));
      } else {
        valid = { ids: answer.slos.map((s) => s.id) };
        mount(problems, h('p', { class: 'badge ok' }, `Valid: ${answer.slos.map((s) => `${s.id} (${s.service}, objective ${(s.objective * 100).toFixed(3).replace(/\.?0+$/, '')}%)`).join(', ')}`));
      }
      backtestButton.disabled = !valid;
      saveButton.disabled = fromFile || !valid || (id && !valid.ids.includes(id));
    } catch (err) {
      if (ctx.alive()) mount(problems, errorBox(err));
    }
  }

  function target() {
    if (!valid) return null;
    return id && valid.ids.includes(id) ? id : valid.ids[0];
  }

  async function backtest() {
    const slo = target();
    if (!slo) return;
    const to = Date.now();
    const from = to - Number(range.value) * 1000;
    mount(results, h('p', { class: 'muted' }, 'Replaying the policy over the stored history…'));
    try {
      const answer = await runBacktest(editor.value, { id: slo, from, to });
      if (!ctx.alive()) return;
      disposables.forEach((d) => d.dispose());
      const charts = h('div', { class: 'charts' });
      mount(results, h('h2', {}, 'Backtest'), backtestView(answer, charts));
      disposables = backtestCharts(charts, answer);
    } catch (err) {
      if (ctx.alive()) mount(results, errorBox(err));
    }
  }

  async function save() {
    const slo = target();
    if (!slo) return;
    try {
      await api(`/api/v1/slos/${encodeURIComponent(slo)}`, { method: 'PUT', text: editor.value, contentType: 'application/yaml' });
      toast(`Saved ${slo}`);
      navigate(`/slos/${encodeURIComponent(slo)}`);
    } catch (err) {
      if (ctx.alive()) mount(problems, errorBox(err));
    }
  }
}

