/**
 * `cargo xtask bench ui`, the page half: the Experiments panel in a real JupyterLab on a real
 * `kiln server` seeded with 1 000 runs × 5 params × 3 metrics and one run with a
 * 100 000-point curve. Timed in the page, from the action to the DOM showing its answer:
 * the table's first paint, a sort, a filter, and the comparison's curve of the long run
 * drawn (ECharts loaded, the store's down-sample drawn), then a zoom redrawn with the
 * range's detail. Writes the figures as JSON to `KILN_UI_BENCH_OUT`; xtask prints them next
 * to the store's half (`xtask/bench/experiments.py`, against MLflow). Not a test: nothing
 * here asserts a time.
 */
import * as fs from 'fs';

import { expect, test } from '@jupyterlab/galata';
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { Page } from '@playwright/test';

test.use({ autoGoto: true });

const RUNS = Number(process.env.KILN_UI_BENCH_RUNS ?? '5');
const STORE = process.env.KILN_SERVER ?? '';
const HEADERS = { Authorization: `Bearer ${process.env.KILN_TOKEN}`, 'Content-Type': 'application/json' };

async function api(path: string, body: unknown): Promise<unknown> {
  const answer = await fetch(`${STORE}/api/v1/${path}`, { method: 'POST', headers: HEADERS, body: JSON.stringify(body) });
  if (!answer.ok) {
    throw new Error(`${path}: HTTP ${answer.status}: ${await answer.text()}`);
  }
  return answer.json();
}

async function seed(experiment: string): Promise<void> {
  let seedValue = 7;
  const random = () => ((seedValue = (seedValue * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let start = 0; start < 1000; start += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async (_, j) => {
        const i = start + j;
        const run = (await api('runs', { experiment, name: `run-${String(i).padStart(4, '0')}`, start_time: 1_700_000_000_000 + i })) as { id: string };
        await api(`runs/${run.id}/log`, {
          params: Array.from({ length: 5 }, (_, k) => ({ key: `p${k}`, value: String(k < 3 ? [0.001, 0.01, 0.1, 1][Math.floor(random() * 4)] : 1 + Math.floor(random() * 64)) })),
          metrics: Array.from({ length: 30 }, (_, n) => ({ key: `m${n % 3}`, value: random(), timestamp: 1_700_000_000_000 + n, step: Math.floor(n / 3) }))
        });
      })
    );
  }
  const long = (await api('runs', { experiment, name: 'long', start_time: 1_800_000_000_000 })) as { id: string };
  for (let b = 0; b < 100; b++) {
    const metrics = Array.from({ length: 1000 }, (_, n) => {
      const step = b * 1000 + n;
      return { key: 'm0', value: step === 73_421 ? 50 : 1 / (1 + step / 1000), timestamp: 1_700_000_000_000 + step, step };
    });
    await api(`runs/${long.id}/log`, { metrics });
  }
}

/** Runs `action` in the page and times until `done` holds, in the page. */
async function timeIt(page: IJupyterLabPageFixture, action: string, done: string): Promise<number> {
  return page.evaluate(
    async ({ action, done }) => {
      const act = new Function(`return (async () => { ${action} })();`) as () => Promise<void>;
      const ready = new Function(`return (${done});`) as () => boolean;
      const start = performance.now();
      await act();
      return new Promise<number>((resolve, reject) => {
        const limit = window.setTimeout(() => reject(new Error(`not done within 60 s: ${done}`)), 60000);
        const check = () => {
          if (ready()) {
            window.clearTimeout(limit);
            resolve(performance.now() - start);
          } else {
            requestAnimationFrame(check);
          }
        };
        check();
      });
    },
    { action, done }
  );
}

test('the Experiments panel on 1 000 runs and a 100 000-point curve', async ({ page }) => {
  const experiment = `bench-${Date.now()}`;
  await seed(experiment);
  const figures: Record<string, number[]> = { table: [], sort: [], filter: [], curve: [], zoom: [] };
  const panel = "document.querySelector('#kiln-experiments')";
  for (let round = 0; round < RUNS; round++) {
    await page.evaluate(async () => {
      await window.jupyterapp.commands.execute('kiln:open-experiments');
    });
    await expect(page.locator('#kiln-experiments select[aria-label="Experiment"]')).toContainText(experiment, { timeout: 60000 });
    // First paint: choosing the experiment until its rows are drawn.
    figures.table.push(
      await timeIt(
        page,
        `const s = ${panel}.querySelector('select'); s.value = ${JSON.stringify(experiment)}; s.dispatchEvent(new Event('change'));`,
        `${panel}.querySelector('.kiln-ExperimentsMessage').textContent === '1001 runs in ${experiment}' && ${panel}.querySelectorAll('.kiln-RunsRow').length > 0`
      )
    );
    figures.sort.push(
      await timeIt(
        page,
        `${panel}.querySelector('.kiln-RunsHeader button[data-column="metrics.m1"]').click();`,
        `${panel}.querySelector('.kiln-RunsHeader [aria-sort="ascending"] button[data-column="metrics.m1"]') !== null`
      )
    );
    figures.filter.push(
      await timeIt(
        page,
        `const f = ${panel}.querySelector('input[aria-label="Filter runs"]'); f.value = 'metrics.m0 > 0.5'; f.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));`,
        `/^\\d+ runs in /.test(${panel}.querySelector('.kiln-ExperimentsMessage').textContent) && ${panel}.querySelector('.kiln-ExperimentsMessage').textContent !== '1001 runs in ${experiment}'`
      )
    );
    // The long run alone, compared: the curve drawn from the store's down-sample.
    await page.locator('#kiln-experiments input[aria-label="Filter runs"]').fill("attributes.run_name = 'long'");
    await page.locator('#kiln-experiments input[aria-label="Filter runs"]').press('Enter');
    await expect(page.locator('#kiln-experiments .kiln-RunsRow')).toHaveCount(1);
    await page.locator('#kiln-experiments .kiln-RunsRow input[type="checkbox"]').check();
    figures.curve.push(
      await timeIt(
        page,
        `${panel}.querySelector('.kiln-ExperimentsActions button.kiln-Button').click();`,
        `(() => { const c = document.querySelector('.kiln-CurveChart'); return c !== null && c.dataset.total === '100000' && c.querySelector('canvas') !== null; })()`
      )
    );
    // A zoom by the mouse wheel, from the first wheel event until the range's detail is
    // drawn (the panel waits 250 ms for the wheel to stop, then asks the store).
    await page.evaluate(() => {
      const chart = document.querySelector('.kiln-CurveChart') as HTMLElement;
      const note = document.querySelector('.kiln-CompareNote') as HTMLElement;
      const before = note.textContent;
      let start = 0;
      chart.addEventListener('wheel', () => (start = start || performance.now()), { capture: true });
      (window as unknown as { kilnZoom: Promise<number> }).kilnZoom = new Promise(resolve => {
        const check = () => (start && note.textContent !== before ? resolve(performance.now() - start) : requestAnimationFrame(check));
        check();
      });
    });
    const box = (await page.locator('.kiln-CurveChart').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -800);
    figures.zoom.push(await page.evaluate(() => (window as unknown as { kilnZoom: Promise<number> }).kilnZoom));
    await page.evaluate(() => {
      for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
        if (widget.id.startsWith('kiln-compare-')) {
          widget.close();
        }
      }
    });
    await page.locator('#kiln-experiments input[aria-label="Filter runs"]').fill('');
    await page.reload();
  }
  fs.writeFileSync(process.env.KILN_UI_BENCH_OUT ?? 'figures.json', JSON.stringify({ figures }, null, 1));
});

/** Waits in the page until `done` (an expression) holds; the milliseconds since `start`. */
async function until(page: Page, done: string): Promise<number> {
  return page.evaluate(
    ({ done }) =>
      new Promise<number>((resolve, reject) => {
        const ready = new Function(`return (${done});`) as () => boolean;
        const limit = window.setTimeout(() => reject(new Error(`not done within 120 s: ${done}`)), 120000);
        const check = () => {
          if (ready()) {
            window.clearTimeout(limit);
            resolve(performance.now() - (window as unknown as { kilnStart: number }).kilnStart);
          } else {
            requestAnimationFrame(check);
          }
        };
        check();
      }),
    { done }
  );
}

/**
 * The anchor: MLflow's own UI (the React app in its wheel), on the same data, left running
 * by `xtask/bench/experiments.py --keep-mlflow`. The app is loaded once; each round moves
 * inside it as a user does, timed from the route change to the answer drawn: the
 * experiment's runs table (first run row shown), then the long run's chart ("Model
 * metrics", Plotly's line drawn). Whether the chart holds the spike is read from Plotly's
 * own data.
 */
test("MLflow's own UI on the same data", async ({ browser }) => {
  const file = process.env.KILN_UI_BENCH_MLFLOW;
  test.skip(!file || !fs.existsSync(file), 'no seeded mlflow server (KILN_UI_BENCH_MLFLOW)');
  const mlflow = JSON.parse(fs.readFileSync(file!, 'utf8')) as { base: string; experiment: string; long: string };
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${mlflow.base}/#/experiments`);
  await expect(page.getByText('Experiments').first()).toBeVisible({ timeout: 60000 });
  const figures: Record<string, number[]> = { table: [], curve: [] };
  let spikeDrawn = false;
  const go = (hash: string) =>
    page.evaluate(hash => {
      (window as unknown as { kilnStart: number }).kilnStart = performance.now();
      window.location.hash = hash;
    }, hash);
  for (let round = 0; round < RUNS; round++) {
    await go(`#/experiments/${mlflow.experiment}/runs`);
    figures.table.push(await until(page, `Array.from(document.querySelectorAll('a')).some(a => /^run-\\d{4}$/.test(a.textContent.trim()))`));
    await go(`#/experiments/${mlflow.experiment}/runs/${mlflow.long}/model-metrics`);
    figures.curve.push(
      await until(page, `(() => { const p = document.querySelector('.js-plotly-plot'); return p !== null && Array.isArray(p.data) && p.data.length > 0 && (p.data[0].y || []).length > 0 && p.querySelector('.scatterlayer path.js-line') !== null; })()`)
    );
    spikeDrawn = await page.evaluate(() => {
      const plot = document.querySelector('.js-plotly-plot') as unknown as { data: { y: number[] }[] };
      return plot.data.some(trace => trace.y.includes(50));
    });
    if (round === RUNS - 1) {
      await page.screenshot({ path: test.info().outputPath('mlflow-model-metrics.png') });
    }
    await go('#/experiments');
    await expect(page.getByText('Experiments').first()).toBeVisible();
  }
  await context.close();
  fs.writeFileSync(process.env.KILN_UI_BENCH_MLFLOW_OUT ?? 'mlflow-figures.json', JSON.stringify({ figures, spikeDrawn }, null, 1));
});
