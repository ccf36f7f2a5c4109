/**
 * Kiln's extension in a real JupyterLab, with the real Kiln kernel, `kiln server`, registry
 * and CLI behind it (started by `cargo xtask test`): roles set from the UI land in the saved
 * notebook, the Pipeline panel shows the compiler's types, a problem links to its cell, and
 * "Componentize notebook" builds three images the registry holds, or stops when cancelled.
 * Each view is saved as a screenshot in the test's output folder.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';

import { expect, test } from '@jupyterlab/galata';

import { BUILD_MS, KILN, REGISTRY, classifier, closeComponentizeViews, codePackages, componentize, open, openPipeline, savedNotebook, shot, upload } from './helpers';

// A wide window, as the README's screenshots show the views (galata's 1024×768 crams the side panels).
test.use({ autoGoto: true, viewport: { width: 1440, height: 900 } });

test('roles set from the cell toolbar and the commands land in the saved notebook', async ({ page, tmpPath }) => {
  const cells = ['setup', 'parameters', 'data', 'train', 'infer', 'skip'].map((_, i) => ({
    cell_type: 'code',
    id: `c${i}`,
    metadata: { tags: i === 0 ? ['keep-me'] : [] },
    source: `let v${i} = ${i};`,
    outputs: [],
    execution_count: null
  }));
  const notebook = { nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'kiln', display_name: 'Rust (Kiln)', language: 'rust' } }, cells };
  const file = await upload(page, tmpPath, 'roles.ipynb', JSON.stringify(notebook));
  await open(page, file);
  const roles = ['setup', 'parameters', 'data', 'train', 'infer'];
  for (const [i, role] of roles.entries()) {
    await page.notebook.selectCells(i);
    const picker = page.locator('.jp-Cell.jp-mod-active select[aria-label="Kiln cell role"]');
    await picker.selectOption(role);
    await expect(page.locator(`.jp-Cell >> nth=${i}`).locator('.kiln-Badge')).toHaveAttribute('data-kiln-role', role);
  }
  // The last one through its command's keyboard shortcut, in command mode.
  await page.notebook.selectCells(5);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+Alt+6');
  await expect(page.locator('.jp-Cell >> nth=5').locator('.kiln-Badge')).toHaveAttribute('data-kiln-role', 'skip');
  await shot(page, 'roles');
  await page.notebook.save();
  const saved = await savedNotebook(page, file);
  expect(saved.cells.map(c => c.metadata.tags ?? [])).toEqual([['keep-me', 'setup'], ['parameters'], ['data'], ['train'], ['infer'], ['skip']]);
  // A role changed again replaces the first: one role per cell.
  await page.notebook.selectCells(2);
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('kiln:tag-train');
  });
  await page.notebook.save();
  expect((await savedNotebook(page, file)).cells[2].metadata.tags).toEqual(['train']);
});

test('the Pipeline panel shows the compiler types and links a problem to its cell', async ({ page, tmpPath }) => {
  const file = await upload(page, tmpPath, 'classifier.ipynb', classifier());
  await open(page, file);
  await openPipeline(page);
  const panel = page.locator('#kiln-pipeline');
  await expect(panel.locator('.kiln-PipelineStatus')).toHaveText('types from the compiler', { timeout: BUILD_MS });
  // The same types the CLI gives for the same notebook.
  const local = path.join(test.info().outputPath(), 'classifier.ipynb');
  const analysis = JSON.parse(execFileSync(KILN, ['show', local, '--json', '--handle', 'iris-ui-show'], { encoding: 'utf8', maxBuffer: 1 << 26 }));
  for (const flow of analysis.flows as { name: string; type: string }[]) {
    await expect(panel.locator(`[data-kiln-value="${flow.name}"] .kiln-ValueType`).first()).toHaveText(flow.type);
  }
  for (const p of analysis.parameters as { name: string; type: string }[]) {
    await expect(panel.locator(`[data-kiln-parameter="${p.name}"] .kiln-ValueType`)).toHaveText(p.type);
  }
  await expect(panel.locator('.kiln-Served')).toContainText('fn infer(');
  // Badges: the directive and tag roles as Kiln reads them; the untagged cell is exploration.
  await expect(page.locator('.jp-Cell >> nth=3').locator('.kiln-Badge')).toHaveAttribute('data-kiln-role', 'data');
  await expect(page.locator('.jp-Cell >> nth=4').locator('.kiln-Badge')).toHaveAttribute('data-kiln-role', 'exploration');
  await shot(page, 'pipeline');

  // An edit that breaks the data step: a name only the untagged cell defines.
  const data = await page.notebook.getCellTextInput(3);
  await page.notebook.setCell(3, 'code', `${data}\nlet leak = scratch;`);
  await page.notebook.setCell(4, 'code', 'let scratch = 1;');
  const problem = panel.locator('.kiln-Diagnostic', { hasText: 'scratch' });
  await expect(problem).toBeVisible();
  await expect(problem.locator('.kiln-DiagnosticPlace')).toContainText('cell 3');
  await expect(page.locator('.jp-Cell >> nth=3')).toHaveClass(/kiln-mod-problem/);
  // The code no longer builds: the panel keeps the last types it knew, rather than none.
  await expect(panel.locator('.kiln-PipelineStatus')).toHaveText('types from the compiler', { timeout: BUILD_MS });
  for (const flow of analysis.flows as { name: string; type: string }[]) {
    await expect(panel.locator(`[data-kiln-value="${flow.name}"] .kiln-ValueType`).first()).toHaveText(flow.type);
  }
  await page.notebook.selectCells(0);
  await problem.click();
  await expect(page.locator('.jp-Cell >> nth=3')).toHaveClass(/jp-mod-active/);
  await shot(page, 'problem');
});

test('Componentize notebook pushes three images the registry holds', async ({ page, tmpPath }) => {
  expect(REGISTRY, 'KILN_REGISTRY: set by cargo xtask test').not.toBe('');
  const file = await upload(page, tmpPath, 'classifier.ipynb', classifier());
  await open(page, file);
  await componentize(page, 'iris-ui');
  const view = page.locator('.kiln-Componentize');
  const state = view.locator('.kiln-ComponentizeState');
  // A failure ends the wait at once, and the assertion below then says why.
  await expect(view.locator('.kiln-Rows tr[data-kiln-phase="compile"]').or(state.filter({ hasText: /^failed/ }))).toBeVisible({ timeout: BUILD_MS });
  await shot(page, 'componentize-running');
  await expect(state).toHaveText(/^(done|failed|cancelled|ended)/, { timeout: BUILD_MS });
  await expect(state).toHaveText('done: 3 images');
  for (const role of ['data', 'train', 'infer']) {
    await expect(view.locator(`.kiln-Rows tr[data-kiln-phase="push"][data-kiln-component="${role}"]`)).toHaveAttribute('data-kiln-state', 'done');
  }
  const rows = view.locator('.kiln-Images tr[data-kiln-role]');
  await expect(rows).toHaveCount(3);
  for (const role of ['data', 'train', 'infer']) {
    const digest = (await view.locator(`.kiln-Images tr[data-kiln-role="${role}"] td`).nth(2).textContent())?.trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${REGISTRY}/iris-ui-${role}:latest`], { encoding: 'utf8' }));
    expect(inspected.Digest).toBe(digest);
  }
  await shot(page, 'componentize-done');
});

test('Cancel stops the build and leaves no image behind', async ({ page, tmpPath }) => {
  const file = await upload(page, tmpPath, 'classifier.ipynb', classifier());
  await open(page, file);
  await componentize(page, 'iris-ui-cancelled');
  const view = page.locator('.kiln-Componentize');
  await expect(view.locator('.kiln-Rows tr')).not.toHaveCount(0, { timeout: 60000 });
  await view.locator('button[aria-label="Cancel componentizing iris-ui-cancelled"]').click();
  await expect(view.locator('.kiln-ComponentizeState')).toHaveText('cancelled: the build was stopped');
  await expect(page.getByText('Componentizing iris-ui-cancelled was cancelled.')).toBeVisible();
  await shot(page, 'componentize-cancelled');
  // The CLI and everything it started are gone, and nothing reached the registry.
  await expect
    .poll(() => {
      try {
        return execFileSync('pgrep', ['-f', 'componentize .*--handle iris-ui-cancelled'], { encoding: 'utf8' }).trim();
      } catch {
        return '';
      }
    }, { timeout: 30000 })
    .toBe('');
  expect(() => execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${REGISTRY}/iris-ui-cancelled-infer:latest`], { stdio: 'pipe' })).toThrow();
});


test('a registry that does not answer or a handle that is no image name: the reason, and nothing built or registered', async ({ page, tmpPath }) => {
  const file = await upload(page, tmpPath, 'classifier.ipynb', classifier());
  await open(page, file);
  const cases: [string, string, RegExp][] = [
    ['iris-ui-unreachable', '127.0.0.1:1', /the registry at 127\.0\.0\.1:1 does not answer/],
    ['Iris UI', REGISTRY, /`Iris UI` cannot be a handle/]
  ];
  for (const [handle, registry, reason] of cases) {
    await componentize(page, handle, registry);
    const view = page.locator('.kiln-Componentize').last();
    await expect(view.locator('.kiln-ComponentizeState')).toHaveText(reason, { timeout: 60000 });
    await expect(view.locator('.kiln-ComponentizeState')).toContainText('nothing was built');
    await expect(page.locator('.Toastify__toast', { hasText: reason }).first()).toBeVisible();
    // It stopped before building: no compile row, and the store holds nothing for it.
    await expect(view.locator('.kiln-Rows tr[data-kiln-phase="compile"]')).toHaveCount(0);
    await expect(view.locator('.kiln-Rows tr[data-kiln-phase="connect"]')).toHaveAttribute('data-kiln-state', 'failed');
    expect(await codePackages(handle)).toEqual([]);
    await shot(page, `componentize-${handle === 'Iris UI' ? 'bad-handle' : 'registry-down'}`);
    // Back to the notebook at its full width for the next case.
    await closeComponentizeViews(page);
    await page.notebook.activate('classifier.ipynb');
  }
});
