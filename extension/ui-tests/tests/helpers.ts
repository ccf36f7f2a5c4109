/**
 * What the browser tests share: the notebooks they upload, opening one, screenshots, and
 * the toolbar's "Componentize notebook" dialog.
 */
import * as fs from 'fs';
import * as path from 'path';

import { expect, test } from '@jupyterlab/galata';
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';

export const REPO = path.resolve(__dirname, '../../..');
export const SDK = path.join(REPO, 'server-client/client');
export const KILN = process.env.KILN_BIN ?? path.join(REPO, 'target/release/kiln');
export const REGISTRY = process.env.KILN_REGISTRY ?? '';
export const BUILD_MS = 12 * 60 * 1000;

/** The classifier notebook, its `:dep kiln` path made absolute so it builds from the test's folder. */
export function classifier(): string {
  const text = fs.readFileSync(path.join(REPO, 'notebooks/classifier.ipynb'), 'utf8');
  return text.split('path = \\"../server-client/client\\"').join(`path = \\"${SDK}\\"`);
}

export async function upload(page: IJupyterLabPageFixture, tmpPath: string, name: string, content: string): Promise<string> {
  const local = path.join(test.info().outputPath(), name);
  fs.mkdirSync(path.dirname(local), { recursive: true });
  fs.writeFileSync(local, content);
  await page.contents.uploadFile(local, `${tmpPath}/${name}`);
  return `${tmpPath}/${name}`;
}

export async function open(page: IJupyterLabPageFixture, file: string): Promise<void> {
  await page.filebrowser.refresh();
  await page.notebook.openByPath(file);
  await page.notebook.activate(path.basename(file));
  await expect(page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).toHaveCount(1, { timeout: 120000 });
}

export async function savedNotebook(page: IJupyterLabPageFixture, file: string): Promise<{ cells: { metadata: { tags?: string[] } }[] }> {
  const answer = await page.request.get(`/api/contents/${file}?content=1`);
  expect(answer.ok()).toBeTruthy();
  return (await answer.json()).content;
}

export async function shot(page: IJupyterLabPageFixture, name: string): Promise<void> {
  await page.screenshot({ path: test.info().outputPath(`${name}.png`) });
}

export async function openPipeline(page: IJupyterLabPageFixture): Promise<void> {
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('kiln:open-pipeline');
  });
  await expect(page.locator('#kiln-pipeline')).toBeVisible();
}

export async function componentize(page: IJupyterLabPageFixture, handle: string, registry?: string): Promise<void> {
  const button = page.locator('.jp-NotebookPanel-toolbar [data-jp-item-name="kiln-componentize"]');
  await expect(button).toBeVisible();
  await button.click();
  const dialog = page.locator('.jp-Dialog');
  // The registry the server pushes to is offered first.
  await expect(dialog.locator('input[name="registry"]')).toHaveValue(REGISTRY);
  await dialog.locator('input[name="handle"]').fill(handle);
  if (registry !== undefined) {
    await dialog.locator('input[name="registry"]').fill(registry);
  }
  await dialog.locator('.jp-mod-accept').click();
}

/** Closes the Componentize views, so the notebook has its whole width (and its toolbar). */
export async function closeComponentizeViews(page: IJupyterLabPageFixture): Promise<void> {
  await page.evaluate(() => {
    for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
      if (widget.id.startsWith('kiln-componentize-')) {
        widget.close();
      }
    }
  });
}

/** The store's code packages of `handle`, asked directly (the test has the store's token). */
export async function codePackages(handle: string): Promise<unknown[]> {
  const answer = await fetch(`${process.env.KILN_SERVER}/api/v1/code-packages?handle=${handle}`, {
    headers: { Authorization: `Bearer ${process.env.KILN_TOKEN}` }
  });
  expect(answer.ok).toBeTruthy();
  return (await answer.json()) as unknown[];
}

