/**
 * "Deployments" (right panel, `kiln:open-deployments`): every handle the gateway serves, with
 * its strategy, its versions and their instances' health; for the chosen handle, the traffic
 * split over time (requests per version, stacked, over a window the user picks), errors and
 * p95 latency per version, a bandit's mean reward and pulls per arm — polled while the panel
 * is shown; Promote, Roll back and Change percent, each confirmed with what it will do; the
 * history of changes (when, what, who); and a "try it" box that sends one OIP v2 request
 * built from the model's metadata and shows the answer and the version that gave it.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import type { EChartsType } from 'echarts/core';

import {
  Deployment,
  DeploymentStatus,
  Traffic,
  WINDOWS,
  banditSince,
  bestArm,
  bucketsSince,
  bucketFor,
  clock,
  describePercent,
  describePromote,
  describeRollback,
  describeSplit,
  exampleRequest,
  isBandit,
  servedVersions,
  stackedSeries,
  strategyLabel,
  summarize
} from './deployments';
import { element } from './dom';
import { PUSH_TO_PRODUCTION, follow, pushToProduction, reasonOf } from './push-dialog';
import { defaultHandle } from './roles';
import { CATEGORY } from './roles-plugin';
import * as serving from './serving';
import { IKilnPipeline } from './tokens';
import { TRAIN_VERSION, trainVersion } from './train';

export const OPEN_DEPLOYMENTS = 'kiln:open-deployments';
export const REFRESH_DEPLOYMENTS = 'kiln:refresh-deployments';
export const PROMOTE_DEPLOYMENT = 'kiln:promote-deployment';
export const ROLLBACK_DEPLOYMENT = 'kiln:rollback-deployment';
export const CHANGE_CANARY_PERCENT = 'kiln:change-canary-percent';
export const TRY_DEPLOYMENT = 'kiln:try-deployment';

const POLL_MS = 2000;
/** The most requests one "Send" makes (one after another, so the gateway is never flooded). */
const MAX_TRIES = 500;
const PALETTE = ['#5470c6', '#91cc75', '#fac858', '#ee6666', '#73c0de', '#3ba272', '#fc8452', '#9a60b4'];

const deploymentsIcon = new LabIcon({
  name: 'kiln:deployments',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M3 20h18v1H3z"/><path d="M4 19V13l4-3v9zM10 19V9l4-4v14zM16 19V7l4 3v9z" opacity=".85"/></g></svg>'
});

function versionColor(version: number): string {
  return PALETTE[(version - 1 + PALETTE.length) % PALETTE.length];
}

export class DeploymentsPanel extends Widget {
  private readonly list = element('ul', 'kiln-DeploymentList');
  private readonly detail = element('section', 'kiln-DeploymentDetail');
  private readonly split = element('p', 'kiln-DeploymentSplit');
  private readonly instances = element('table', 'kiln-Instances');
  private readonly windowSelect = document.createElement('select');
  private readonly chartNode = element('div', 'kiln-TrafficChart');
  private readonly latencyNode = element('div', 'kiln-LatencyChart');
  private readonly summaryTable = element('table', 'kiln-TrafficSummary');
  private readonly history = element('ol', 'kiln-History');
  private readonly tryBody = document.createElement('textarea');
  private readonly tryAnswer = element('pre', 'kiln-TryAnswer');
  private readonly tryTimes = document.createElement('input');
  private readonly statusLine = element('p', 'kiln-DeploymentsStatus');
  readonly promoteButton = element('button', 'jp-mod-styled kiln-Promote', 'Promote');
  readonly rollbackButton = element('button', 'jp-mod-styled kiln-Rollback', 'Roll back');
  readonly percentButton = element('button', 'jp-mod-styled kiln-ChangePercent', 'Change percent');
  private charts: typeof import('./charts') | null = null;
  private chart: EChartsType | null = null;
  private latency: EChartsType | null = null;
  private timer = 0;
  private polling = false;
  private lastError: string | null = null;
  private windowMs = WINDOWS[0].ms;
  /** The handle shown, and what the store last said about it. */
  handle: string | null = null;
  deployment: Deployment | null = null;
  status: DeploymentStatus | null = null;
  traffic: Traffic | null = null;
  /** A bandit's arm with the best mean reward over what the bandit routed (what Promote keeps). */
  bestArm: number | null = null;
  private all: Deployment[] = [];
  private tryHandle: string | null = null;

  constructor(app: JupyterFrontEnd) {
    super();
    this.id = 'kiln-deployments';
    this.addClass('kiln-DeploymentsPanel');
    this.title.label = 'Deployments';
    this.title.caption = 'Kiln: deployments, their traffic split over time, promote and roll back';
    this.title.icon = deploymentsIcon;
    const header = element('div', 'kiln-DeploymentsHeader');
    const refresh = element('button', 'jp-mod-styled', 'Refresh');
    refresh.setAttribute('aria-label', 'Refresh deployments');
    refresh.addEventListener('click', () => void app.commands.execute(REFRESH_DEPLOYMENTS));
    const push = element('button', 'jp-mod-styled jp-mod-accept', 'Push to production');
    push.setAttribute('aria-label', 'Push to production');
    push.addEventListener('click', () => void app.commands.execute(PUSH_TO_PRODUCTION, this.handle ? { handle: this.handle } : {}));
    const train = element('button', 'jp-mod-styled', 'Train a version');
    train.setAttribute('aria-label', 'Train a new version');
    train.addEventListener('click', () => void app.commands.execute(TRAIN_VERSION, this.handle ? { handle: this.handle } : {}));
    header.append(element('h2', '', 'Deployments'), refresh, train, push);
    this.statusLine.setAttribute('role', 'status');
    this.list.setAttribute('aria-label', 'Deployed handles');

    for (const w of WINDOWS) {
      const o = document.createElement('option');
      o.value = String(w.ms);
      o.textContent = w.label;
      this.windowSelect.append(o);
    }
    this.windowSelect.setAttribute('aria-label', 'Window');
    this.windowSelect.className = 'jp-mod-styled';
    this.windowSelect.addEventListener('change', () => {
      this.windowMs = Number(this.windowSelect.value);
      void this.refresh();
    });
    this.chartNode.setAttribute('aria-label', 'Requests per version over time, stacked');
    this.latencyNode.setAttribute('aria-label', 'p95 latency and errors per version over time');
    this.summaryTable.setAttribute('aria-label', 'Traffic per version');
    this.instances.setAttribute('aria-label', 'Instances');
    this.history.setAttribute('aria-label', 'History of changes');
    this.promoteButton.setAttribute('aria-label', 'Promote');
    this.rollbackButton.setAttribute('aria-label', 'Roll back');
    this.percentButton.setAttribute('aria-label', 'Change percent');
    this.promoteButton.addEventListener('click', () => void app.commands.execute(PROMOTE_DEPLOYMENT));
    this.rollbackButton.addEventListener('click', () => void app.commands.execute(ROLLBACK_DEPLOYMENT));
    this.percentButton.addEventListener('click', () => void app.commands.execute(CHANGE_CANARY_PERCENT));
    const actions = element('div', 'kiln-DeploymentActions');
    actions.append(this.promoteButton, this.rollbackButton, this.percentButton);

    this.tryBody.className = 'jp-mod-styled kiln-TryBody';
    this.tryBody.setAttribute('aria-label', 'Request body');
    this.tryBody.rows = 6;
    const send = element('button', 'jp-mod-styled', 'Send');
    send.setAttribute('aria-label', 'Send the request');
    send.addEventListener('click', () => void app.commands.execute(TRY_DEPLOYMENT));
    this.tryAnswer.setAttribute('aria-label', 'Answer');
    this.tryAnswer.setAttribute('role', 'status');
    this.tryTimes.type = 'number';
    this.tryTimes.min = '1';
    this.tryTimes.max = String(MAX_TRIES);
    this.tryTimes.value = '1';
    this.tryTimes.className = 'jp-mod-styled kiln-TryTimes';
    this.tryTimes.setAttribute('aria-label', 'Times');
    const times = element('label', 'kiln-TryTimesLabel');
    times.append(element('span', '', 'Times '), this.tryTimes);
    const tryBox = element('details', 'kiln-TryIt');
    const summary = element('summary', '', 'Try it (OIP v2)');
    tryBox.append(summary, this.tryBody, times, send, this.tryAnswer);
    tryBox.addEventListener('toggle', () => {
      if (tryBox.open) {
        void this.fillTryBody();
      }
    });

    const windowRow = element('label', 'kiln-Field');
    windowRow.append(element('span', '', 'Window'), this.windowSelect);
    this.detail.append(
      this.split,
      this.instances,
      actions,
      windowRow,
      this.chartNode,
      this.latencyNode,
      this.summaryTable,
      element('h3', '', 'History'),
      this.history,
      tryBox
    );
    this.detail.hidden = true;
    this.node.append(header, this.statusLine, this.list, this.detail);
  }

  protected onAfterShow(): void {
    void this.refresh();
    this.poll();
  }

  protected onBeforeHide(): void {
    window.clearTimeout(this.timer);
  }

  protected onResize(): void {
    this.chart?.resize();
    this.latency?.resize();
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    this.chart?.dispose();
    this.latency?.dispose();
    super.dispose();
  }

  private poll(): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(async () => {
      await this.refresh();
      if (this.isVisible) {
        this.poll();
      }
    }, POLL_MS);
  }

  /** Shows `handle` (and reads it now). */
  async select(handle: string): Promise<void> {
    this.handle = handle;
    this.deployment = null;
    this.traffic = null;
    this.tryAnswer.textContent = '';
    await this.refresh();
  }

  async refresh(): Promise<void> {
    if (this.polling) {
      return;
    }
    this.polling = true;
    try {
      this.all = await serving.deployments();
      if (this.handle === null && this.all.length > 0) {
        this.handle = this.all[0].handle;
      }
      const handle = this.handle;
      if (handle !== null && this.all.some(d => d.handle === handle)) {
        const now = Date.now();
        const since = now - this.windowMs;
        const [deployment, status, traffic] = await Promise.all([serving.deployment(handle), serving.status(handle), serving.traffic(handle, since, bucketFor(this.windowMs))]);
        if (handle === this.handle) {
          this.deployment = deployment;
          this.status = status;
          this.traffic = traffic;
          await this.draw(since, now);
        }
      }
      this.drawList();
      this.statusLine.textContent = this.all.length === 0 ? 'Nothing is deployed yet: "Push to production" serves a model version.' : '';
      this.lastError = null;
    } catch (error) {
      const why = reasonOf(error);
      this.statusLine.textContent = `The store does not answer: ${why}`;
      if (why !== this.lastError) {
        Notification.error(`Kiln: the Deployments panel could not read the store: ${why}`, { autoClose: 8000 });
      }
      this.lastError = why;
    } finally {
      this.polling = false;
    }
  }

  private drawList(): void {
    this.list.replaceChildren(
      ...this.all.map(d => {
        const li = element('li', 'kiln-DeploymentItem');
        li.dataset.kilnHandle = d.handle;
        const button = element('button', 'kiln-DeploymentPick');
        button.setAttribute('aria-pressed', String(d.handle === this.handle));
        button.setAttribute('aria-label', `Show ${d.handle}`);
        const versions = servedVersions(d)
          .map(v => `v${v}${v === d.candidate ? ' (canary)' : v === d.standby ? ' (standby)' : ''}`)
          .join(', ');
        button.append(element('strong', '', d.handle), element('span', 'kiln-DeploymentStrategy', ` ${strategyLabel(d.strategy)}`), element('span', 'kiln-DeploymentVersions', ` · ${versions}`));
        button.addEventListener('click', () => void this.select(d.handle));
        li.append(button);
        return li;
      })
    );
  }

  private async draw(since: number, now: number): Promise<void> {
    const d = this.deployment;
    if (!d || !this.traffic) {
      this.detail.hidden = true;
      return;
    }
    this.detail.hidden = false;
    this.detail.dataset.kilnHandle = d.handle;
    this.split.textContent = `${d.handle}: ${describeSplit(d)} — ${strategyLabel(d.strategy)}, revision ${d.revision}`;
    const instances = this.status?.instances ?? [];
    const head = element('tr', '');
    for (const title of ['version', 'instance', 'health', 'in flight', 'started']) {
      head.append(element('th', '', title));
    }
    this.instances.replaceChildren(
      head,
      ...servedVersions(d).flatMap(version => {
        const mine = instances.filter(i => i.version === version);
        if (mine.length === 0) {
          const tr = element('tr', '');
          tr.dataset.kilnVersion = String(version);
          tr.dataset.kilnHealth = 'none';
          tr.append(element('td', '', `v${version}`), element('td', '', '—'), element('td', '', 'no instance on this server'), element('td', '', ''), element('td', '', ''));
          return [tr];
        }
        return mine.map((i, n) => {
          const tr = element('tr', '');
          tr.dataset.kilnVersion = String(version);
          tr.dataset.kilnHealth = i.state;
          tr.append(
            element('td', '', `v${version}`),
            element('td', '', `#${n + 1}`),
            element('td', `kiln-Health kiln-Health-${i.state}`, i.state),
            element('td', '', String(i.in_flight)),
            element('td', '', clock(i.started_at))
          );
          return tr;
        });
      })
    );
    const bandit = isBandit(d.strategy);
    const summary = summarize(this.traffic.buckets);
    // An arm's pulls and mean reward: the requests the bandit itself routed.
    const armsSince = banditSince(d);
    const arms = armsSince === null ? summary : summarize(bucketsSince(this.traffic, armsSince));
    this.bestArm = bestArm(arms);
    const promote = describePromote(d, this.bestArm);
    const rollback = describeRollback(d);
    this.promoteButton.disabled = !promote.ok;
    this.promoteButton.title = promote.text;
    this.rollbackButton.disabled = !rollback.ok;
    this.rollbackButton.title = rollback.text;
    this.percentButton.hidden = d.candidate === undefined;

    const columns = ['version', 'requests', 'share', 'errors', 'p95 ms', ...(bandit ? ['mean reward', 'pulls', 'rewards'] : [])];
    const headRow = element('tr', '');
    columns.forEach(c => headRow.append(element('th', '', c)));
    this.summaryTable.replaceChildren(
      headRow,
      ...summary.map(s => {
        const tr = element('tr', '');
        tr.dataset.kilnVersion = String(s.version);
        tr.dataset.kilnRequests = String(s.requests);
        tr.dataset.kilnShare = s.share.toFixed(1);
        const cells = [`v${s.version}`, String(s.requests), `${s.share.toFixed(1)} %`, String(s.errors), s.p95.toFixed(1)];
        if (bandit) {
          const arm = arms.find(a => a.version === s.version);
          const mean = arm?.meanReward ?? null;
          cells.push(mean === null ? '—' : mean.toFixed(3), String(arm?.requests ?? 0), String(arm?.rewards ?? 0));
          tr.dataset.kilnPulls = String(arm?.requests ?? 0);
          if (mean !== null) {
            tr.dataset.kilnMeanReward = mean.toFixed(3);
          }
        }
        cells.forEach(c => tr.append(element('td', '', c)));
        return tr;
      })
    );
    this.history.replaceChildren(
      ...d.history
        .slice()
        .reverse()
        .map(e => {
          const li = element('li', 'kiln-HistoryItem', `${new Date(e.at).toLocaleString()} · ${e.action} · ${e.detail}${e.actor ? ` · by ${e.actor}` : ''}`);
          li.dataset.kilnAction = e.action;
          return li;
        })
    );
    await this.drawCharts(since, now);
  }

  private async drawCharts(since: number, now: number): Promise<void> {
    if (!this.traffic) {
      return;
    }
    if (!this.charts) {
      try {
        this.charts = await import('./charts');
      } catch (error) {
        this.statusLine.textContent = `the charts could not load: ${reasonOf(error)}`;
        return;
      }
    }
    const { echarts } = this.charts;
    this.chart ??= echarts.init(this.chartNode);
    this.latency ??= echarts.init(this.latencyNode);
    const series = stackedSeries(this.traffic, since, now);
    const x = series.times;
    this.chart.setOption(
      {
        aria: { enabled: true },
        animation: false,
        title: { text: `requests per ${this.traffic.bucket_ms / 1000} s`, left: 0, textStyle: { fontSize: 12 } },
        tooltip: { trigger: 'axis' },
        legend: { top: 0, right: 0, data: series.versions.map(v => `v${v}`) },
        grid: { left: 40, right: 12, top: 32, bottom: 24 },
        xAxis: { type: 'time', min: x[0], max: now },
        yAxis: { type: 'value', minInterval: 1 },
        series: series.versions.map(v => ({
          id: `v${v}`,
          name: `v${v}`,
          type: 'line',
          stack: 'requests',
          areaStyle: {},
          symbol: 'none',
          color: versionColor(v),
          data: x.map((t, i) => [t, series.requests.get(v)![i]])
        }))
      },
      { replaceMerge: ['series'] }
    );
    this.latency.setOption(
      {
        aria: { enabled: true },
        animation: false,
        title: { text: 'p95 latency (ms) — errors dashed', left: 0, textStyle: { fontSize: 12 } },
        tooltip: { trigger: 'axis' },
        grid: { left: 40, right: 32, top: 28, bottom: 24 },
        xAxis: { type: 'time', min: x[0], max: now },
        yAxis: [
          { type: 'value', name: 'ms' },
          { type: 'value', name: 'errors', minInterval: 1 }
        ],
        series: series.versions.flatMap(v => [
          { id: `p95-v${v}`, name: `v${v} p95`, type: 'line', symbol: 'none', connectNulls: false, color: versionColor(v), data: x.map((t, i) => [t, series.p95.get(v)![i]]) },
          {
            id: `errors-v${v}`,
            name: `v${v} errors`,
            type: 'line',
            yAxisIndex: 1,
            symbol: 'none',
            lineStyle: { type: 'dashed' },
            color: versionColor(v),
            data: x.map((t, i) => [t, series.errors.get(v)![i]])
          }
        ])
      },
      { replaceMerge: ['series'] }
    );
  }

  /** The try-it box's body, from the model's metadata, when the handle changed. */
  async fillTryBody(): Promise<void> {
    const handle = this.handle;
    if (!handle || this.tryHandle === handle) {
      return;
    }
    try {
      const metadata = await serving.metadata(handle);
      this.tryBody.value = JSON.stringify(exampleRequest(metadata), null, 1);
      this.tryHandle = handle;
      const inputs = metadata.inputs.map(i => `${i.name} ${i.datatype} [${i.shape.join(', ')}]`).join('; ');
      this.tryAnswer.textContent = `inputs: ${inputs}`;
    } catch (error) {
      this.tryAnswer.textContent = `could not read ${handle}'s metadata: ${reasonOf(error)}`;
    }
  }

  async tryIt(): Promise<void> {
    const handle = this.handle;
    if (!handle) {
      Notification.warning('Kiln: choose a deployment to try.');
      return;
    }
    try {
      JSON.parse(this.tryBody.value);
    } catch (error) {
      const message = `the request body is not JSON: ${error instanceof Error ? error.message : String(error)}`;
      this.tryAnswer.textContent = message;
      Notification.error(`Kiln: ${message}`, { autoClose: 8000 });
      return;
    }
    const times = Number(this.tryTimes.value);
    if (!Number.isInteger(times) || times < 1 || times > MAX_TRIES) {
      const message = `Times: '${this.tryTimes.value}' is not a whole number from 1 to ${MAX_TRIES}`;
      this.tryAnswer.textContent = message;
      Notification.error(`Kiln: ${message}`, { autoClose: 8000 });
      return;
    }
    this.tryAnswer.textContent = 'sending…';
    const tally = new Map<string, number>();
    let last: serving.InferAnswer | null = null;
    try {
      for (let n = 0; n < times; n++) {
        last = await serving.infer(handle, this.tryBody.value);
        const version = last.model_version ?? '?';
        tally.set(version, (tally.get(version) ?? 0) + 1);
        if (times > 1 && n % 10 === 9) {
          this.tryAnswer.textContent = `${n + 1} of ${times} sent…`;
        }
      }
      this.tryAnswer.dataset.kilnVersion = last?.model_version ?? '';
      const counts = [...tally.entries()].sort().map(([v, c]) => `v${v} ${c}`).join(', ');
      const head = times === 1 ? `answered by v${last?.model_version ?? '?'}` : `${times} answers: ${counts}; the last by v${last?.model_version ?? '?'}`;
      this.tryAnswer.textContent = `${head}\n${JSON.stringify(last?.outputs ?? [], null, 1)}`;
      void this.refresh();
    } catch (error) {
      delete this.tryAnswer.dataset.kilnVersion;
      const why = reasonOf(error);
      const sent = [...tally.values()].reduce((a, b) => a + b, 0);
      this.tryAnswer.textContent = `refused${sent > 0 ? ` after ${sent} answers` : ''}: ${why}`;
      Notification.error(`Kiln: ${handle} refused the request: ${why}`, { autoClose: 8000 });
    }
  }
}

/** Asks before a change, saying what it will do; `true` when confirmed. */
async function confirm(title: string, text: string, label: string): Promise<boolean> {
  const body = element('p', 'kiln-ConfirmText', text);
  const answer = await showDialog({ title, body: new Widget({ node: body }), buttons: [Dialog.cancelButton(), Dialog.warnButton({ label, ariaLabel: label })] });
  return answer.button.accept;
}

export const deploymentsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kiln-jupyterlab:deployments',
  description: 'The Deployments panel and "Push to production".',
  autoStart: true,
  requires: [INotebookTracker, IKilnPipeline],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (app: JupyterFrontEnd, notebooks: INotebookTracker, pipeline: IKilnPipeline, restorer: ILayoutRestorer | null, palette: ICommandPalette | null) => {
    const panel = new DeploymentsPanel(app);
    app.shell.add(panel, 'right', { rank: 720 });
    restorer?.add(panel, 'kiln-deployments');

    const changeOf = (verb: string) => {
      const d = panel.deployment;
      if (!d) {
        Notification.warning(`Kiln: open the Deployments panel and choose a deployment to ${verb}.`);
      }
      return d;
    };
    app.commands.addCommand(OPEN_DEPLOYMENTS, {
      label: 'Open the Deployments Panel',
      caption: 'Deployments, their traffic split over time, promote and roll back',
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(REFRESH_DEPLOYMENTS, { label: 'Refresh the Deployments', execute: () => panel.refresh() });
    app.commands.addCommand(PUSH_TO_PRODUCTION, {
      label: 'Push to production',
      caption: 'Serve a model version of this notebook: blue-green, canary or bandit',
      isVisible: args => typeof args.handle === 'string' || pipeline.isKilnNotebook(notebooks.currentWidget),
      execute: async args => {
        const path = notebooks.currentWidget?.context.path;
        const handle = typeof args.handle === 'string' ? args.handle : path ? defaultHandle(path) : panel.handle ?? '';
        const version = typeof args.version === 'number' ? args.version : null;
        await pushToProduction(app, handle, version);
        app.shell.activateById(panel.id);
        await panel.select(handle);
      }
    });
    /** Confirms a change with what it will do, then sends it and follows it. */
    const confirmAndFollow = async (d: Deployment, title: string, text: string, label: string, send: () => Promise<Deployment>) => {
      if (await confirm(title, text, label)) {
        await follow(app, d.handle, text, send);
        await panel.refresh();
      }
    };
    app.commands.addCommand(PROMOTE_DEPLOYMENT, {
      label: 'Promote the Deployment',
      execute: async () => {
        const d = changeOf('promote');
        if (!d) {
          return;
        }
        const what = describePromote(d, panel.bestArm);
        if (!what.ok) {
          Notification.warning(`Kiln: ${what.text}`);
          return;
        }
        await confirmAndFollow(d, `Promote ${d.handle}?`, what.text, 'Promote', () => serving.promote(d.handle, d.revision));
      }
    });
    app.commands.addCommand(ROLLBACK_DEPLOYMENT, {
      label: 'Roll Back the Deployment',
      execute: async () => {
        const d = changeOf('roll back');
        if (!d) {
          return;
        }
        const what = describeRollback(d);
        if (!what.ok) {
          Notification.warning(`Kiln: ${what.text}`);
          return;
        }
        await confirmAndFollow(d, `Roll back ${d.handle}?`, what.text, 'Roll back', () => serving.rollback(d.handle, d.revision));
      }
    });
    app.commands.addCommand(CHANGE_CANARY_PERCENT, {
      label: "Change the Canary's Percent",
      execute: async args => {
        const d = changeOf('change');
        if (!d || d.candidate === undefined) {
          Notification.warning(`Kiln: ${d ? `${d.handle} has no canary whose percent could change.` : 'no deployment chosen.'}`);
          return;
        }
        const candidate = d.candidate;
        let typed = typeof args.percent === 'string' ? args.percent : null;
        if (typed === null) {
          const input = document.createElement('input');
          // Text: a number input out of range would disable Next without a word.
          input.inputMode = 'numeric';
          input.className = 'jp-mod-styled';
          input.setAttribute('aria-label', 'Percent');
          input.value = String(/^canary:(\d+)$/.exec(d.strategy)?.[1] ?? '10');
          const asked = await showDialog({
            title: `Change ${d.handle}'s canary percent`,
            body: new (class extends Widget implements Dialog.IBodyWidget<string> {
              constructor() {
                super({ node: element('div', 'kiln-PercentForm') });
                const label = element('label', 'kiln-Field');
                label.append(element('span', '', 'Percent'), input);
                this.node.append(label);
              }
              getValue(): string {
                return input.value;
              }
            })(),
            buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Next' })],
            focusNodeSelector: 'input'
          });
          if (!asked.button.accept || asked.value === null) {
            return;
          }
          typed = asked.value;
        }
        const what = describePercent(d, typed);
        if (!what.ok) {
          Notification.error(`Kiln: ${what.text}`, { autoClose: 8000 });
          return;
        }
        const request = { model_version: candidate, strategy: `canary:${Number(typed.trim())}`, expected_revision: d.revision };
        await confirmAndFollow(d, `Change ${d.handle}'s canary?`, what.text, 'Change percent', () => serving.deploy(d.handle, request));
      }
    });
    app.commands.addCommand(TRAIN_VERSION, {
      label: 'Train a New Version',
      caption: "Run the handle's data and train components (kiln run) and register a model version",
      execute: async args => {
        const path = notebooks.currentWidget?.context.path;
        const handle = typeof args.handle === 'string' ? args.handle : path ? defaultHandle(path) : panel.handle ?? '';
        await trainVersion(app, handle);
      }
    });
    app.commands.addCommand(TRY_DEPLOYMENT, { label: 'Send the Try-It Request', execute: () => panel.tryIt() });
    for (const command of [OPEN_DEPLOYMENTS, REFRESH_DEPLOYMENTS, TRAIN_VERSION, PUSH_TO_PRODUCTION, PROMOTE_DEPLOYMENT, ROLLBACK_DEPLOYMENT, CHANGE_CANARY_PERCENT]) {
      palette?.addItem({ command, category: CATEGORY });
    }
    const changed = () => app.commands.notifyCommandChanged(PUSH_TO_PRODUCTION);
    notebooks.currentChanged.connect(changed);
    notebooks.widgetAdded.connect((_, nb) => {
      void nb.revealed.then(changed);
      nb.sessionContext.kernelChanged.connect(changed);
    });
  }
};
