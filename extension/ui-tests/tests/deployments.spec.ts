/**
 * "Push to production" and the Deployments panel against the real JupyterLab, the real
 * `kiln server` (store and serving gateway) and real instances of the componentized
 * classifier (its infer image, run as a process): version 1 pushed blue-green from the
 * notebook's toolbar; a version 2 trained from the panel ("Train a new version") and pushed
 * as a 30 % canary (after a refused 0 %);
 * bounded traffic from the unmodified Triton client while the panel is open, whose shares
 * match what the gateway counted; a change made by someone else while a confirmation is open
 * is refused with what they did; roll back, push again, promote; a bandit with feedback shows
 * each arm's mean reward; a version whose instance cannot start shows the reason and leaves
 * the deployment as it was; the try-it box answers with the version that served it; a run in
 * the Experiments panel opens the dialog on the version it registered.
 */
import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { expect, test } from '@jupyterlab/galata';
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';

import { BUILD_MS, KILN, REGISTRY, classifier, open, shot, upload } from './helpers';

const HANDLE = 'iris-prod';
const STORE = process.env.KILN_SERVER ?? '';
const TOKEN = process.env.KILN_TOKEN ?? '';
const TRITON = process.env.KILN_TRITON_PYTHON ?? '';
const DEPLOY_MS = 4 * 60 * 1000;

// Wide enough for the notebook, its toolbar's Kiln buttons and the Deployments panel side by side
// (the screenshots are the README's).
test.use({ autoGoto: true, viewport: { width: 1440, height: 900 } });
test.describe.configure({ mode: 'serial' });

function kiln(...args: string[]): string {
  return execFileSync(KILN, args, { encoding: 'utf8', env: { ...process.env, KILN_SERVER: STORE, KILN_TOKEN: TOKEN }, timeout: BUILD_MS, stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Sent {
  answers: Record<string, number>;
  failed: number;
  failures: string[];
}

/** `count` requests through the Triton client (with feedback per version when given),
 * spread over `seconds`; resolves when the last has answered. */
function traffic(count: number, rewards = '', seconds = 0): Promise<Sent> {
  const script = path.resolve(__dirname, '../triton_traffic.py');
  const args = [script, new URL(STORE).host, HANDLE, String(count), rewards, String(seconds)];
  return new Promise((resolve, reject) => {
    execFile(TRITON, args, { encoding: 'utf8', timeout: 5 * 60 * 1000 }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout))));
  });
}

/** Widens the right sidebar (drags its split handle), so the panel's charts have room. */
async function widenRightPanel(page: IJupyterLabPageFixture): Promise<void> {
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)').last();
  const box = await handle.boundingBox();
  if (!box) {
    return;
  }
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width / 2, y);
  await page.mouse.down();
  await page.mouse.move(box.x - 360, y, { steps: 8 });
  await page.mouse.up();
}

async function storeApi(method: string, route: string, body?: unknown): Promise<{ status: number; json: any }> {
  const answer = await fetch(`${STORE}/api/v1/${route}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  return { status: answer.status, json: await answer.json().catch(() => null) };
}

async function openDeployments(page: IJupyterLabPageFixture): Promise<void> {
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('kiln:open-deployments');
  });
  await expect(page.locator('#kiln-deployments')).toBeVisible();
  await widenRightPanel(page);
}

async function command(page: IJupyterLabPageFixture, id: string, args: Record<string, unknown> = {}): Promise<void> {
  // Not awaited: the command waits on dialogs the test answers.
  await page.evaluate(
    ([id, args]) => {
      void window.jupyterapp.commands.execute(id as string, args as any);
    },
    [id, args] as const
  );
}

/** The dialog's fields, by their accessible labels. */
function field(page: IJupyterLabPageFixture, label: string) {
  return page.locator('.jp-Dialog').getByLabel(label, { exact: true });
}

async function closeDeployViews(page: IJupyterLabPageFixture): Promise<void> {
  await page.evaluate(() => {
    for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
      if (widget.id.startsWith('kiln-deploy-')) {
        widget.close();
      }
    }
  });
}

async function closeTrainViews(page: IJupyterLabPageFixture): Promise<void> {
  await page.evaluate(() => {
    for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
      if (widget.id.startsWith('kiln-train-')) {
        widget.close();
      }
    }
  });
}

async function deployed(): Promise<any> {
  return (await storeApi('GET', `deployments/${HANDLE}`)).json;
}

test.beforeAll(async () => {
  test.setTimeout(BUILD_MS + DEPLOY_MS);
  // The classifier componentized (its three images pushed and registered) and trained once:
  // version 1. What the CLI does here the Componentize tests do from the toolbar.
  const notebook = path.join(test.info().outputDir, `${HANDLE}.ipynb`);
  fs.mkdirSync(path.dirname(notebook), { recursive: true });
  fs.writeFileSync(notebook, classifier());
  kiln('componentize', notebook, '--handle', HANDLE, '--registry', REGISTRY, '--json');
  kiln('run', HANDLE, '--runner', 'process');
});

test('version 1 pushed blue-green from the notebook toolbar, followed until it serves', async ({ page, tmpPath }) => {
  test.setTimeout(DEPLOY_MS + 2 * 60 * 1000);
  const file = await upload(page, tmpPath, `${HANDLE}.ipynb`, classifier());
  await open(page, file);
  // The file browser closed, so the toolbar has the width for both Kiln buttons.
  await page.sidebar.close('left');
  const button = page.locator('.jp-NotebookPanel-toolbar [data-jp-item-name="kiln-push-to-production"]');
  await expect(button).toBeVisible();
  await button.click();
  // The notebook's handle, its newest version, blue-green (nothing is deployed yet).
  await expect(field(page, 'Handle')).toHaveValue(HANDLE);
  await expect(field(page, 'Model version')).toHaveValue('1');
  await expect(field(page, 'Strategy')).toHaveValue('blue-green');
  await expect(field(page, 'Percent')).toBeHidden();
  await field(page, 'Runner').selectOption('process');
  await expect(page.locator('.kiln-PushSummary')).toHaveText(`v1 starts serving ${HANDLE}: it takes all of its traffic. Nothing serves ${HANDLE} yet.`);
  await shot(page, 'push-dialog-first');
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Deploy' }).click();

  const state = page.locator('.kiln-DeployState');
  await expect(state).toHaveAttribute('data-kiln-outcome', 'done', { timeout: DEPLOY_MS });
  await expect(state).toContainText(`v1 takes all of ${HANDLE}`);
  for (const kind of ['starting', 'ready', 'saved', 'switched', 'done']) {
    await expect(page.locator(`.kiln-DeployStep[data-kiln-step="${kind}"]`)).toHaveCount(1);
  }
  await expect(page.locator('.kiln-DeployStep').filter({ hasText: '/v2/health/ready answered' })).toHaveCount(1);
  await shot(page, 'push-followed');

  const panel = page.locator('#kiln-deployments');
  await expect(panel).toBeVisible();
  await widenRightPanel(page);
  await expect(panel.locator(`.kiln-DeploymentItem[data-kiln-handle="${HANDLE}"]`)).toContainText('blue-green');
  await expect(panel.locator('.kiln-Instances tr[data-kiln-version="1"]')).toHaveAttribute('data-kiln-health', 'ready');
  // Who pushed it: the Jupyter user, vouched for by the server extension's token.
  await expect(panel.locator('.kiln-HistoryItem').first()).toContainText('by ');
  await closeDeployViews(page);
});

test('a version 2 trained from the panel, pushed as a 30 % canary after a refused 0 %, its split live under Triton traffic', async ({ page }) => {
  test.setTimeout(BUILD_MS);
  await openDeployments(page);
  // Version 2, trained from JupyterLab (`kiln run` through the server extension).
  await page.locator('#kiln-deployments').getByRole('button', { name: 'Train a new version' }).click();
  await expect(field(page, 'Handle')).toHaveValue(HANDLE);
  await field(page, 'Parameters').fill('epochs=150');
  await field(page, 'Runner').selectOption('process');
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Train' }).click();
  const trained = page.locator('.kiln-DeployState');
  await expect(trained).toHaveAttribute('data-kiln-outcome', 'done', { timeout: BUILD_MS / 2 });
  await expect(trained).toHaveText(`done: ${HANDLE} v2 registered`);
  await expect(page.locator('.kiln-DeployStep').first()).toBeVisible();
  await shot(page, 'train-version');
  await closeTrainViews(page);
  await command(page, 'kiln:push-to-production', { handle: HANDLE });
  await expect(field(page, 'Model version')).toHaveValue('2');
  await expect(field(page, 'Strategy')).toHaveValue('canary');
  await field(page, 'Percent').fill('0');
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Deploy' }).click();
  // Refused before anything is sent: the dialog again, with what was typed and the reason.
  await expect(page.locator('.kiln-PushProblem')).toHaveText("Percent: '0' is not a whole number from 1 to 99");
  await expect(page.locator('.Toastify__toast', { hasText: "Percent: '0' is not a whole number from 1 to 99" }).first()).toBeVisible();
  await expect(field(page, 'Percent')).toHaveValue('0');
  await expect(field(page, 'Model version')).toHaveValue('2');
  await field(page, 'Percent').fill('30');
  await field(page, 'Runner').selectOption('process');
  await expect(page.locator('.kiln-PushSummary')).toHaveText(`v2 takes 30 % of ${HANDLE}; v1 keeps 70 %.`);
  await shot(page, 'push-dialog-canary');
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Deploy' }).click();
  await expect(page.locator('.kiln-DeployState')).toHaveAttribute('data-kiln-outcome', 'done', { timeout: DEPLOY_MS });
  await closeDeployViews(page);

  const panel = page.locator('#kiln-deployments');
  await expect(panel.locator('.kiln-DeploymentSplit')).toContainText(`v2 takes 30 % of ${HANDLE}; v1 keeps 70 %`);
  // 200 requests over 30 s while the panel is open: it shows them as they arrive…
  const sending = traffic(200, '', 30);
  const row = (v: string) => panel.locator(`.kiln-TrafficSummary tr[data-kiln-version="${v}"]`);
  await expect(row('1')).toHaveAttribute('data-kiln-requests', /^[1-9]\d*$/, { timeout: 30000 });
  const early = Number(await row('1').getAttribute('data-kiln-requests'));
  const sent = await sending;
  expect(early, 'the panel counted requests while they flowed').toBeLessThan(sent.answers['1']);
  expect(sent.failed, sent.failures.join('\n')).toBe(0);
  // …and in the end, per version, what the gateway answered per version.
  await expect(row('1')).toHaveAttribute('data-kiln-requests', String(sent.answers['1']), { timeout: 30000 });
  await expect(row('2')).toHaveAttribute('data-kiln-requests', String(sent.answers['2']), { timeout: 30000 });
  const share = Number(await row('2').getAttribute('data-kiln-share'));
  expect(share).toBeCloseTo((100 * sent.answers['2']) / 200, 0);
  expect(share).toBeGreaterThan(15);
  expect(share).toBeLessThan(45);
  // Both versions are series of the stacked chart (ECharts' generated description).
  const chart = panel.locator('.kiln-TrafficChart');
  await expect(chart).toHaveAttribute('aria-label', /v1[\s\S]*v2/);
  await shot(page, 'deployments-canary-traffic');
});

test('a change made elsewhere while the confirmation is open is refused with what it was', async ({ page }) => {
  await openDeployments(page);
  const panel = page.locator('#kiln-deployments');
  await expect(panel.locator('.kiln-ChangePercent')).toBeVisible();
  await panel.locator('.kiln-ChangePercent').click();
  await field(page, 'Percent').fill('50');
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Next' }).click();
  await expect(page.locator('.kiln-ConfirmText')).toHaveText(`v2 takes 50 % of ${HANDLE} (now 30 %); v1 keeps 50 %.`);
  // Someone else changes the canary from a terminal meanwhile.
  kiln('deploy', HANDLE, '--model-version', '2', '--strategy', 'canary:40', '--runner', 'process');
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Change percent' }).click();
  await expect(page.locator('.kiln-DeployState')).toHaveAttribute('data-kiln-outcome', 'failed', { timeout: DEPLOY_MS });
  await expect(page.locator('.kiln-DeployState')).toContainText('canary: 40% to version 2');
  await expect(page.locator('.Toastify__toast', { hasText: 'someone changed it first' }).first()).toBeVisible();
  expect((await deployed()).strategy).toBe('canary:40');
  await closeDeployViews(page);
  await expect(panel.locator('.kiln-DeploymentSplit')).toContainText(`v2 takes 40 % of ${HANDLE}`);
});

test('roll back, push the canary again, promote: each confirmed with what it does', async ({ page }) => {
  test.setTimeout(3 * DEPLOY_MS);
  await openDeployments(page);
  const panel = page.locator('#kiln-deployments');
  await panel.getByRole('button', { name: 'Roll back', exact: true }).click();
  await expect(page.locator('.kiln-ConfirmText')).toHaveText(`the canary v2 stops; v1 takes all of ${HANDLE} again.`);
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Roll back' }).click();
  await expect(page.locator('.kiln-DeployState')).toHaveAttribute('data-kiln-outcome', 'done', { timeout: DEPLOY_MS });
  await closeDeployViews(page);
  await expect(panel.locator('.kiln-DeploymentSplit')).toContainText(`v1 takes all of ${HANDLE}`);

  await command(page, 'kiln:push-to-production', { handle: HANDLE, version: 2 });
  await field(page, 'Strategy').selectOption('canary');
  await field(page, 'Percent').fill('30');
  await field(page, 'Runner').selectOption('process');
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Deploy' }).click();
  await expect(page.locator('.kiln-DeployState')).toHaveAttribute('data-kiln-outcome', 'done', { timeout: DEPLOY_MS });
  await closeDeployViews(page);

  await panel.getByRole('button', { name: 'Promote', exact: true }).click();
  await expect(page.locator('.kiln-ConfirmText')).toHaveText(`v2 takes all of ${HANDLE}; v1 stops.`);
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Promote' }).click();
  await expect(page.locator('.kiln-DeployState')).toHaveAttribute('data-kiln-outcome', 'done', { timeout: DEPLOY_MS });
  await closeDeployViews(page);
  await expect(panel.locator('.kiln-DeploymentSplit')).toContainText(`v2 takes all of ${HANDLE}`);
  await expect(panel.locator('.kiln-Instances tr[data-kiln-version="1"]')).toHaveCount(0);
  const actions = await panel.locator('.kiln-HistoryItem').evaluateAll(items => items.map(i => (i as HTMLElement).dataset.kilnAction));
  expect(actions.slice(0, 3)).toEqual(['promote', 'deploy', 'rollback']);
  await shot(page, 'deployments-promoted');
});

test("a bandit's arms show their mean reward and pulls from the feedback", async ({ page }) => {
  test.setTimeout(2 * DEPLOY_MS);
  await openDeployments(page);
  await command(page, 'kiln:push-to-production', { handle: HANDLE, version: 1 });
  await field(page, 'Strategy').selectOption('bandit');
  await field(page, 'Policy').selectOption('thompson');
  await expect(field(page, 'Epsilon')).toBeHidden();
  await field(page, 'Runner').selectOption('process');
  await expect(page.locator('.kiln-PushSummary')).toHaveText(`v2, v1 compete for ${HANDLE} by Thompson sampling; traffic follows their rewards.`);
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Deploy' }).click();
  await expect(page.locator('.kiln-DeployState')).toHaveAttribute('data-kiln-outcome', 'done', { timeout: DEPLOY_MS });
  await closeDeployViews(page);
  const sent = await traffic(150, '1=0.2,2=0.9', 20);
  expect(sent.failed, sent.failures.join('\n')).toBe(0);
  const panel = page.locator('#kiln-deployments');
  const row = (v: string) => panel.locator(`.kiln-TrafficSummary tr[data-kiln-version="${v}"]`);
  await expect(row('2')).toHaveAttribute('data-kiln-mean-reward', '0.900', { timeout: 30000 });
  if ((sent.answers['1'] ?? 0) > 0) {
    await expect(row('1')).toHaveAttribute('data-kiln-mean-reward', '0.200', { timeout: 30000 });
  }
  await expect(panel.locator('.kiln-TrafficSummary th', { hasText: 'pulls' })).toHaveCount(1);
  // Pulls: what the bandit routed to each arm (not the canary's earlier traffic in the window).
  await expect(row('2')).toHaveAttribute('data-kiln-pulls', String(sent.answers['2']));
  await expect(row('1')).toHaveAttribute('data-kiln-pulls', String(sent.answers['1'] ?? 0));
  await shot(page, 'deployments-bandit');
});

test('a version whose instance cannot start shows why and switches nothing; try it answers', async ({ page }) => {
  test.setTimeout(2 * DEPLOY_MS);
  // Version 3's model values are not in the store: its instance exits while it loads them.
  const made = await storeApi('POST', `models/${HANDLE}/versions`, { source: `artifact:${'0'.repeat(64)}` });
  expect(made.status, JSON.stringify(made.json)).toBeLessThan(300);
  const before = await deployed();
  await openDeployments(page);
  await command(page, 'kiln:push-to-production', { handle: HANDLE, version: 3 });
  await field(page, 'Strategy').selectOption('blue-green');
  await field(page, 'Runner').selectOption('process');
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Deploy' }).click();
  const state = page.locator('.kiln-DeployState');
  await expect(state).toHaveAttribute('data-kiln-outcome', 'failed', { timeout: DEPLOY_MS });
  await expect(state).toContainText('exited before it was ready');
  await expect(state).toContainText('nothing was switched');
  await expect(page.locator('.kiln-DeployStep[data-kiln-step="failed"]')).toHaveCount(1);
  await expect(page.locator('.Toastify__toast', { hasText: 'nothing was switched' }).first()).toBeVisible();
  await shot(page, 'deploy-instance-failed');
  const after = await deployed();
  expect([after.revision, after.strategy, after.arms]).toEqual([before.revision, before.strategy, before.arms]);
  await closeDeployViews(page);

  const panel = page.locator('#kiln-deployments');
  // The failure's toast covers the panel's foot: the box opens and sends through its
  // command, as the palette would.
  const send = async () => {
    await page.evaluate(async () => {
      await window.jupyterapp.commands.execute('kiln:try-deployment');
    });
  };
  await panel.locator('.kiln-TryIt summary').dispatchEvent('click');
  await expect(panel.locator('.kiln-TryBody')).toHaveValue(/"name": "features"/, { timeout: 30000 });
  await send();
  await expect(panel.locator('.kiln-TryAnswer')).toContainText(/answered by v[12]/);
  // A burst, one request after another, tallied by the version that answered.
  await panel.getByLabel('Times', { exact: true }).fill('20');
  await send();
  await expect(panel.locator('.kiln-TryAnswer')).toContainText(/^20 answers: v\d+ \d+/, { timeout: 60000 });
  await panel.getByLabel('Times', { exact: true }).fill('1');
  // A body that is not JSON is refused in the page, the text kept.
  await panel.locator('.kiln-TryBody').fill('{"inputs": [');
  await send();
  await expect(panel.locator('.kiln-TryAnswer')).toContainText('the request body is not JSON');
  await expect(panel.locator('.kiln-TryBody')).toHaveValue('{"inputs": [');
  await shot(page, 'deployments-try-it');
});

test('a run in the Experiments panel pushes the model version it registered', async ({ page }) => {
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('kiln:open-experiments');
  });
  const panel = page.locator('#kiln-experiments');
  await expect(panel).toBeVisible();
  // The workflow's runs log to the handle's experiment: the oldest registered version 1.
  await panel.locator('select[aria-label="Experiment"]').selectOption(HANDLE);
  const rows = panel.locator('.kiln-RunsRow');
  await expect(rows).toHaveCount(2, { timeout: 30000 });
  await rows.last().click();
  await panel.locator(`button[aria-label="Push ${HANDLE} v1 to production"]`).click();
  await expect(field(page, 'Handle')).toHaveValue(HANDLE);
  await expect(field(page, 'Model version')).toHaveValue('1');
  await expect(page.locator('.kiln-PushSummary')).not.toBeEmpty();
  await shot(page, 'push-from-experiments');
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Cancel' }).click();
  await expect(page.locator('.jp-Dialog')).toHaveCount(0);
});
