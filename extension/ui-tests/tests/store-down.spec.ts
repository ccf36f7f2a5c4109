/**
 * A JupyterLab whose Kiln store does not answer (its server extension points at a port
 * nothing listens on; the registry, kernel and CLI are the real ones): the status bar says
 * so with the reason, and "Componentize notebook" stops before building, says why in a
 * notification, and pushes nothing to the registry; the Experiments and Deployments panels
 * say the store does not answer, with the reason, and "Push to production" opens no dialog.
 */
import { execFileSync } from 'child_process';

import { expect, test } from '@jupyterlab/galata';

import { REGISTRY, classifier, componentize, open, shot, upload } from './helpers';

test.use({ autoGoto: true });

test('a store that does not answer: the status bar and Componentize say so, and nothing is pushed', async ({ page, tmpPath }) => {
  expect(REGISTRY, 'KILN_REGISTRY: set by cargo xtask test').not.toBe('');
  const file = await upload(page, tmpPath, 'classifier.ipynb', classifier());
  await open(page, file);
  const status = page.locator('.kiln-Status');
  await expect(status).toContainText('store ✗', { timeout: 30000 });
  await expect(status).toHaveAttribute('title', /store \(http:\/\/127\.0\.0\.1:1\): does not answer/);
  await expect(status).toContainText('registry ✓');

  await componentize(page, 'iris-ui-no-store');
  const state = page.locator('.kiln-Componentize .kiln-ComponentizeState');
  await expect(state).toHaveText(/the store at http:\/\/127\.0\.0\.1:1 does not answer/, { timeout: 60000 });
  await expect(state).toContainText('nothing was built');
  await expect(page.locator('.Toastify__toast', { hasText: 'the store at http://127.0.0.1:1 does not answer' }).first()).toBeVisible();
  await shot(page, 'store-down');
  expect(() => execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${REGISTRY}/iris-ui-no-store-data:latest`], { stdio: 'pipe' })).toThrow();
});

test('a store that does not answer: the Experiments panel says so, with the reason', async ({ page }) => {
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('kiln:open-experiments');
  });
  const panel = page.locator('#kiln-experiments');
  await expect(panel).toBeVisible();
  const message = panel.locator('.kiln-ExperimentsMessage');
  await expect(message).toHaveText(/^the store does not answer: the Kiln store at http:\/\/127\.0\.0\.1:1 does not answer/, { timeout: 30000 });
  await expect(message).toHaveClass(/kiln-mod-error/);
  await expect(page.locator('.Toastify__toast', { hasText: 'the store does not answer' }).first()).toBeVisible();
  await shot(page, 'experiments-store-down');
});

test('a store that does not answer: the Deployments panel and Push to production say so, and open nothing half-done', async ({ page }) => {
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('kiln:open-deployments');
  });
  const panel = page.locator('#kiln-deployments');
  await expect(panel).toBeVisible();
  await expect(panel.locator('.kiln-DeploymentsStatus')).toHaveText(/^The store does not answer: the Kiln store at http:\/\/127\.0\.0\.1:1 does not answer/, { timeout: 30000 });
  await expect(page.locator('.Toastify__toast', { hasText: 'the Deployments panel could not read the store' }).first()).toBeVisible();
  await page.evaluate(() => {
    void window.jupyterapp.commands.execute('kiln:push-to-production', { handle: 'iris' });
  });
  await expect(page.locator('.Toastify__toast', { hasText: 'could not read iris from the store' }).first()).toBeVisible({ timeout: 30000 });
  // No dialog was opened on what could not be read.
  await expect(page.locator('.jp-Dialog')).toHaveCount(0);
  await shot(page, 'deployments-store-down');
});
