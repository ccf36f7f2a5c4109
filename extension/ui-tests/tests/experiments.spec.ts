/**
 * The Experiments panel against the real kernel and store: the classifier's train cell run
 * twice with other params gives two runs, found in the notebook's experiment, compared with
 * their differing params and two curves; a run goes back to its cell; a bad filter says
 * where; a run that is still logging grows in the comparison while its cell runs.
 */
import { expect, test } from '@jupyterlab/galata';
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';

import { BUILD_MS, SDK, classifier, open, shot, upload } from './helpers';

// A wide window, as the README's screenshots show the views (galata's 1024×768 crams the side panels).
test.use({ autoGoto: true, viewport: { width: 1440, height: 900 } });

async function openExperiments(page: IJupyterLabPageFixture): Promise<void> {
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('kiln:open-experiments');
  });
  await expect(page.locator('#kiln-experiments')).toBeVisible();
}

/** A request to the store itself (the test has its token), not through the page. */
async function store(path: string, body: unknown): Promise<Response> {
  return fetch(`${process.env.KILN_SERVER}/api/v1/${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${process.env.KILN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body)
  });
}

async function runsIn(experiment: string): Promise<number> {
  const answer = await store('runs/search', { experiments: [experiment] });
  return answer.ok ? ((await answer.json()) as { runs: unknown[] }).runs.length : 0;
}

async function refreshRuns(page: IJupyterLabPageFixture): Promise<void> {
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('kiln:refresh-runs');
  });
}

test('two runs of the train cell with other params compare side by side and lead back to their cell', async ({ page, tmpPath }) => {
  const file = await upload(page, tmpPath, 'classifier.ipynb', classifier());
  await open(page, file);
  // Setup, parameters, data, then train (candle builds in the kernel's slot the first time).
  for (const cell of [1, 2, 3, 5]) {
    await page.notebook.runCell(cell);
  }
  await expect(page.locator('.jp-Cell >> nth=5').locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);
  await page.notebook.setCell(2, 'code', '// kiln: parameters\nlet lr = 0.1;\nlet epochs = 200;\nlet samples_per_class: usize = 50;');
  await page.notebook.runCell(2);
  await page.notebook.runCell(5);

  await openExperiments(page);
  await refreshRuns(page);
  const panel = page.locator('#kiln-experiments');
  // The notebook's experiment is the one shown.
  await expect(panel.locator('select[aria-label="Experiment"]')).toHaveValue('iris', { timeout: 30000 });
  const rows = panel.locator('.kiln-RunsRow');
  await expect(rows).toHaveCount(2, { timeout: 30000 });
  await expect(panel.locator('.kiln-RunsRow [data-column="attributes.status"]').first()).toHaveText('FINISHED');
  await expect(panel.locator('.kiln-RunsHeader button[data-column="params.lr"]')).toBeVisible();
  // Sorting by a param orders the rows by it.
  await panel.locator('.kiln-RunsHeader button[data-column="params.lr"]').click();
  await expect(panel.locator('.kiln-RunsRow [data-column="params.lr"]')).toHaveText(['0.05', '0.1']);
  await shot(page, 'experiments-table');

  for (const box of await rows.locator('input[type="checkbox"]').all()) {
    await box.check();
  }
  await panel.locator('button', { hasText: 'Compare (2)' }).click();
  const comparison = page.locator('.kiln-Comparison');
  await expect(comparison).toBeVisible();
  // Only the params that differ, then all of them.
  const diff = comparison.locator('.kiln-ParamDiff tr.kiln-mod-differs td:first-child');
  await expect(diff).toHaveText(['epochs', 'lr']);
  await comparison.locator('input[aria-label="Show all params"]').check();
  await expect(comparison.locator('.kiln-ParamDiff tr td:first-child')).toHaveText(['epochs', 'lr']);
  // Two loss curves overlaid, every point of both (one per epoch: 300 and 200).
  const curves = comparison.locator('.kiln-CurveChart');
  await expect(curves).toHaveAttribute('data-series', '2');
  await expect(curves).toHaveAttribute('data-total', '500');
  await expect(comparison.locator('.kiln-CompareNote')).toHaveText(/^2 curves of loss: 500 points drawn of 500/);
  await shot(page, 'experiments-compare');

  // Back to the cell that started a run.
  await page.evaluate(() => {
    for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
      if (widget.id.startsWith('kiln-compare-')) {
        widget.close();
      }
    }
  });
  await page.notebook.selectCells(0);
  await rows.first().click();
  await panel.locator('button[aria-label^="Go to the cell that started"]').click();
  await expect(page.locator('.jp-Cell >> nth=5')).toHaveClass(/jp-mod-active/);

  // A filter the store cannot read says where, under the field; the table stays.
  const filter = panel.locator('input[aria-label="Filter runs"]');
  await filter.fill('metrics.accuracy ~ 1');
  await filter.press('Enter');
  const problem = panel.locator('.kiln-FilterError');
  await expect(problem).toBeVisible();
  await expect(problem).toContainText('expected an operator');
  // The caret stands under the `~`, the 18th character.
  // (Read raw: Playwright's text matchers collapse the spaces that place the caret.)
  expect(await problem.textContent()).toContain(`metrics.accuracy ~ 1\n${' '.repeat(17)}^ expected an operator`);
  await expect(filter).toHaveAttribute('aria-invalid', 'true');
  await expect(rows).toHaveCount(2);
  await shot(page, 'experiments-bad-filter');
  // A good one narrows the table.
  await filter.fill("params.lr = '0.1'");
  await filter.press('Enter');
  await expect(problem).toBeHidden();
  await expect(rows).toHaveCount(1);
});

test('a running cell grows its run in the comparison, and the run says when it ended', async ({ page, tmpPath }) => {
  const cells = [
    `:dep kiln = { path = "${SDK}" }`,
    [
      'let mut run = kiln::run("live-ui")?;',
      'run.log_param("rate", 0.5)?;',
      // No metric for a while: the comparison opens before the first one, and must take
      // `loss` among its choices when it arrives.
      'std::thread::sleep(std::time::Duration::from_secs(6));',
      'for step in 0..60 {',
      '    run.log_metric("loss", 1.0 / (step as f64 + 1.0), step)?;',
      '    std::thread::sleep(std::time::Duration::from_millis(250));',
      '}',
      'run.end()?;'
    ].join('\n')
  ].map((source, i) => ({ cell_type: 'code', id: `live${i}`, metadata: {}, source, outputs: [], execution_count: null }));
  const notebook = { nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'kiln', display_name: 'Rust (Kiln)', language: 'rust' } }, cells };
  const file = await upload(page, tmpPath, 'live.ipynb', JSON.stringify(notebook));
  await open(page, file);
  await page.notebook.runCell(0);
  await openExperiments(page);
  const panel = page.locator('#kiln-experiments');
  // Started, not awaited: the cell logs for about fifteen seconds.
  await page.notebook.selectCells(1);
  await page.evaluate(() => {
    void window.jupyterapp.commands.execute('notebook:run-cell');
  });
  await expect.poll(() => runsIn('live-ui'), { timeout: BUILD_MS }).toBe(1);
  // A newer experiment does not take its place: the panel shows this notebook's.
  await store('experiments', { name: `newer-${Date.now()}` });
  await refreshRuns(page);
  await expect(panel.locator('select[aria-label="Experiment"]')).toHaveValue('live-ui');
  const row = panel.locator('.kiln-RunsRow');
  await expect(row).toHaveCount(1);
  await expect(row.locator('[data-column="attributes.status"]')).toHaveText('RUNNING');
  // Only the running runs: this one until it ends.
  const filter = panel.locator('input[aria-label="Filter runs"]');
  await filter.fill("attributes.status = 'RUNNING'");
  await filter.press('Enter');
  await expect(panel.locator('.kiln-ExperimentsMessage')).toHaveText('1 run in live-ui');
  await row.locator('input[type="checkbox"]').check();
  await panel.locator('button', { hasText: 'Compare (1)' }).click();
  const curves = page.locator('.kiln-Comparison .kiln-CurveChart');
  await expect(curves).toHaveAttribute('data-series', '1');
  const total = async () => Number((await curves.getAttribute('data-total')) ?? '0');
  const first = await total();
  await expect.poll(total, { timeout: 30000 }).toBeGreaterThan(first);
  await shot(page, 'experiments-live');
  // The cell ends its run: the comparison and the table say so, with every point.
  await expect(page.locator('.kiln-CompareStatus')).toHaveText(/finished/, { timeout: 60000 });
  await expect.poll(total, { timeout: 10000 }).toBe(60);
  // The filtered table lets the finished run go; without the filter it is back, finished.
  await expect(row).toHaveCount(0, { timeout: 10000 });
  await filter.fill('');
  await filter.press('Enter');
  await expect(row).toHaveCount(1);
  await expect(row.locator('[data-column="attributes.status"]')).toHaveText('FINISHED', { timeout: 10000 });
});
