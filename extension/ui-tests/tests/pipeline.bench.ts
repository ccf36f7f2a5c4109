/**
 * `cargo xtask bench lab`: how long the extension takes to show what the user did, in a real
 * JupyterLab on the real kernel, store and registry, next to the CLI doing the same work in
 * a terminal (the anchor: the UI should add almost nothing to it).
 *
 * - An edit (a new parameter) and a role change, until the Pipeline panel shows it: first
 *   from the cells' reading (syntactic), then with the compiler's type. Timed in the page,
 *   from the change in the notebook model to the DOM showing it. The anchor is
 *   `kiln show --stdin --json [--syntax-only]` on the same content.
 * - "Componentize notebook" to "done: 3 images" after a one-line train edit, against
 *   `kiln componentize --progress json` of the same notebook after the same kind of edit.
 *
 * On `notebooks/classifier.ipynb` and on a generated 60-cell notebook. Writes the figures as
 * JSON to `KILN_UI_BENCH_OUT`; xtask prints the table. Not a test: nothing here asserts a time.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { expect, test } from '@jupyterlab/galata';
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';

import { BUILD_MS, KILN, REGISTRY, SDK, classifier, closeComponentizeViews, componentize, open, openPipeline, upload } from './helpers';

test.use({ autoGoto: true });

const RUNS = Number(process.env.KILN_UI_BENCH_RUNS ?? '5');
const ROOT = process.env.KILN_UI_ROOT ?? '';

interface Timing {
  syntactic: number;
  typed: number;
}

/** A 60-cell notebook: setup, parameters, 21 data cells, 31 train cells, 5 exploration
 * cells, infer. One value crosses each boundary (`table`, `weight`). */
export function sixtyCells(): string {
  const cell = (tags: string[], source: string) => ({ cell_type: 'code', metadata: { tags }, source, outputs: [], execution_count: null });
  const cells = [
    cell(['setup'], `:dep kiln = { path = "${SDK}" }\nfn scale(v: &[f64], k: f64) -> Vec<f64> {\n    v.iter().map(|x| x * k).collect()\n}`),
    cell(['parameters'], 'let factor = 2.0;\nlet rows = 8;')
  ];
  for (let i = 0; i < 20; i++) {
    cells.push(cell(['data'], `let d${i}: Vec<f64> = (0..rows).map(|r| (r * ${i + 1}) as f64).collect();`));
  }
  cells.push(cell(['data'], `let table: Vec<Vec<f64>> = vec![${Array.from({ length: 20 }, (_, i) => `d${i}.clone()`).join(', ')}];`));
  for (let i = 0; i < 30; i++) {
    cells.push(cell(['train'], `let t${i} = scale(&table[${i % 20}], factor).iter().sum::<f64>();`));
  }
  cells.push(cell(['train'], `let weight = (${Array.from({ length: 30 }, (_, i) => `t${i}`).join(' + ')}) / 30.0;`));
  for (let i = 0; i < 5; i++) {
    cells.push(cell([], `let look${i} = table[${i}].len();`));
  }
  cells.push(cell(['infer'], 'fn infer(weight: &f64, x: f64) -> f64 {\n    weight * x\n}'));
  const notebook = { nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'kiln', display_name: 'Rust (Kiln)', language: 'rust' } }, cells };
  return JSON.stringify(notebook, null, 1);
}

/**
 * Applies `change` to the notebook in the page and times, in the page, until the panel
 * shows `shown` (syntactic) and `typed` (the compiler's answer).
 */
async function timeInPanel(page: IJupyterLabPageFixture, change: string, args: Record<string, unknown>, shown: string, typed: string): Promise<Timing> {
  return page.evaluate(
    async ({ change, args, shown, typed, limit }) => {
      const panel = document.querySelector('#kiln-pipeline') as HTMLElement;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const notebook = (window.jupyterapp.shell.currentWidget as any).content;
      const start = performance.now();
      const until = (test: (panel: HTMLElement) => boolean) =>
        new Promise<number>((resolve, reject) => {
          const timer = window.setTimeout(() => reject(new Error(`not shown within ${limit} ms`)), limit);
          const check = () => {
            if (test(panel)) {
              window.clearTimeout(timer);
              observer.disconnect();
              resolve(performance.now() - start);
            }
          };
          const observer = new MutationObserver(check);
          observer.observe(panel, { subtree: true, childList: true, characterData: true, attributes: true });
        });
      const syntactic = until(new Function('panel', `return ${shown};`) as (p: HTMLElement) => boolean);
      const typedAt = until(new Function('panel', `return ${typed};`) as (p: HTMLElement) => boolean);
      // The change may await (a command): an async function made from its text.
      const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...names: string[]) => (n: unknown, a: unknown, app: unknown) => Promise<void>;
      await new AsyncFunction('notebook', 'args', 'app', change)(notebook, args, window.jupyterapp);
      return { syntactic: await syntactic, typed: await typedAt };
    },
    { change, args, shown, typed, limit: BUILD_MS }
  );
}

/** A parameter added at the end of the parameters cell. */
const ADD_PARAMETER = `
  const cell = notebook.model.cells.get(args.index);
  cell.sharedModel.setSource(cell.sharedModel.getSource() + '\\nlet ' + args.name + ' = ' + args.value + ';');
`;
const PARAMETER_SHOWN = (name: string) => `panel.querySelector('[data-kiln-parameter="${name}"]') !== null`;
const PARAMETER_TYPED = (name: string) =>
  `(() => { const t = panel.querySelector('[data-kiln-parameter="${name}"] .kiln-ValueType'); return t !== null && t.textContent === 'i32' && !t.classList.contains('kiln-mod-carried') && panel.querySelector('.kiln-PipelineStatus').textContent === 'types from the compiler'; })()`;

/** A cell's role set through its command (as the palette, menu and shortcut do). */
const SET_ROLE = `
  notebook.activeCellIndex = args.index;
  await app.commands.execute('kiln:tag-' + args.role);
`;
const STEP_CELLS = (step: string, has: boolean, cell: number) =>
  `(() => { const c = panel.querySelector('[data-kiln-step="${step}"] .kiln-StepCells'); return c !== null && (c.textContent.split(/[ ,]+/).includes('${cell}') === ${has}); })()`;
const STEP_TYPED = (step: string, has: boolean, cell: number) => `${STEP_CELLS(step, has, cell)} && panel.querySelector('.kiln-PipelineStatus').textContent === 'types from the compiler'`;

/** `kiln show` of the notebook's current content in a terminal, timed. */
function cliShow(content: unknown, where: string, syntaxOnly: boolean): number {
  const args = ['show', where, '--stdin', '--json', ...(syntaxOnly ? ['--syntax-only'] : [])];
  const start = performance.now();
  try {
    execFileSync(KILN, args, { input: JSON.stringify(content), encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    // `kiln show` exits 1 when it found problems; the timing is the same.
    if ((error as { status?: number }).status !== 1) {
      throw error;
    }
  }
  return performance.now() - start;
}

async function content(page: IJupyterLabPageFixture): Promise<unknown> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return page.evaluate(() => (window.jupyterapp.shell.currentWidget as any).content.model.toJSON());
}

async function waitTyped(page: IJupyterLabPageFixture): Promise<void> {
  await expect(page.locator('#kiln-pipeline .kiln-PipelineStatus')).toHaveText('types from the compiler', { timeout: BUILD_MS });
}

interface Figures {
  [key: string]: number[];
}

async function measurePanel(page: IJupyterLabPageFixture, tmpPath: string, name: string, text: string, parametersCell: number, roleCell: number, roleStep: string, figures: Figures): Promise<void> {
  const file = await upload(page, tmpPath, name, text);
  await open(page, file);
  await openPipeline(page);
  await waitTyped(page);
  const where = path.join(test.info().outputPath(), name);
  const record = (key: string, value: number) => (figures[`${name}: ${key}`] ??= []).push(value);
  for (let run = 1; run <= RUNS; run++) {
    const parameter = `bench_p${run}`;
    const edit = await timeInPanel(page, ADD_PARAMETER, { index: parametersCell, name: parameter, value: run }, PARAMETER_SHOWN(parameter), PARAMETER_TYPED(parameter));
    record('edit, syntactic (UI)', edit.syntactic);
    record('edit, typed (UI)', edit.typed);
    const now = await content(page);
    record('edit, syntactic (kiln show)', cliShow(now, where, true));
    record('edit, typed (kiln show)', cliShow(now, where, false));
    // The role off and back on: two changes, each timed.
    for (const [role, has] of [
      ['skip', false],
      [roleStep, true]
    ] as [string, boolean][]) {
      const change = await timeInPanel(page, SET_ROLE, { index: roleCell, role }, STEP_CELLS(roleStep, has, roleCell), STEP_TYPED(roleStep, has, roleCell));
      record('role change, syntactic (UI)', change.syntactic);
      record('role change, typed (UI)', change.typed);
      const after = await content(page);
      record('role change, syntactic (kiln show)', cliShow(after, where, true));
      record('role change, typed (kiln show)', cliShow(after, where, false));
    }
  }
  await page.notebook.save();
  await page.notebook.close(true);
}

/** The train cell of the open notebook gets one more line, as a researcher's edit. */
async function editTrain(page: IJupyterLabPageFixture, index: number, run: number): Promise<void> {
  await page.evaluate(
    ({ index, run }) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const cell = (window.jupyterapp.shell.currentWidget as any).content.model.cells.get(index);
      cell.sharedModel.setSource(cell.sharedModel.getSource() + `\nprintln!("edited in the browser: ${run}");`);
    },
    { index, run }
  );
}

function editTrainOnDisk(file: string, index: number, run: number): void {
  const notebook = JSON.parse(fs.readFileSync(file, 'utf8'));
  const source = notebook.cells[index].source;
  const text = Array.isArray(source) ? source.join('') : source;
  notebook.cells[index].source = `${text}\nprintln!("edited in the terminal: ${run}");`;
  fs.writeFileSync(file, JSON.stringify(notebook));
}

async function measureComponentize(page: IJupyterLabPageFixture, tmpPath: string, figures: Figures): Promise<void> {
  const trainCell = 5;
  const file = await upload(page, tmpPath, 'componentize.ipynb', classifier());
  await open(page, file);
  // The notebook at its full width, so its toolbar shows the button.
  await page.evaluate(() => (window.jupyterapp.shell as unknown as { collapseRight(): void }).collapseRight());
  const onDisk = path.join(ROOT, tmpPath, 'componentize-cli.ipynb');
  fs.copyFileSync(path.join(ROOT, file), onDisk);
  // Round 0 warms both handles' builds; rounds 1… are timed.
  for (let run = 0; run <= Math.min(RUNS, 3); run++) {
    await editTrain(page, trainCell, run);
    // From the dialog's Componentize button to "done" (the save and the dialog come before).
    await componentize(page, 'iris-bench-ui');
    const start = performance.now();
    const state = page.locator('.kiln-Componentize .kiln-ComponentizeState').last();
    await expect(state).toHaveText(/^(done|failed|cancelled|ended)/, { timeout: BUILD_MS });
    const ui = performance.now() - start;
    await expect(state).toHaveText('done: 3 images');
    await closeComponentizeViews(page);
    await page.notebook.activate('componentize.ipynb');

    editTrainOnDisk(onDisk, trainCell, run);
    const cliStart = performance.now();
    execFileSync(KILN, ['componentize', onDisk, '--handle', 'iris-bench-cli', '--registry', REGISTRY, '--progress', 'json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const cli = performance.now() - cliStart;
    if (run > 0) {
      (figures['classifier.ipynb: componentize after a train edit (UI)'] ??= []).push(ui);
      (figures['classifier.ipynb: componentize after a train edit (kiln componentize)'] ??= []).push(cli);
    }
  }
}

test('the Pipeline panel and Componentize, timed against the CLI', async ({ page, tmpPath }) => {
  test.setTimeout(90 * 60 * 1000);
  const figures: Figures = {};
  // Written after each part, so a later failure keeps what was measured.
  const save = () => {
    const out = process.env.KILN_UI_BENCH_OUT;
    if (out) {
      fs.writeFileSync(out, JSON.stringify({ runs: RUNS, figures }, null, 1));
    }
  };
  await measurePanel(page, tmpPath, 'classifier.ipynb', classifier(), 2, 3, 'data', figures);
  save();
  await measurePanel(page, tmpPath, 'sixty-cells.ipynb', sixtyCells(), 1, 20, 'data', figures);
  save();
  await measureComponentize(page, tmpPath, figures);
  save();
});
