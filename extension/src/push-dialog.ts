/**
 * "Push to production" (`kiln:push-to-production`): a dialog that picks a handle's model
 * version and a strategy and says what will change before the user confirms; then a view
 * that follows the change live — instances starting, health checks passing, the switch —
 * from the store's `/status` while the request is in flight, with the reason when an
 * instance does not become ready (nothing is switched then). A refused push keeps what was
 * typed and opens the dialog again with the problem named.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, MainAreaWidget, Notification, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  ChangeProgress,
  Deployment,
  ModelVersion,
  Policy,
  Problem,
  PushChoice,
  StrategyKind,
  checkPush,
  clock,
  describeFailure,
  describePush,
  describeSplit,
  strategyText
} from './deployments';
import { element } from './dom';
import { formatNumber } from './experiments';
import { KilnError } from './request';
import * as serving from './serving';

export const PUSH_TO_PRODUCTION = 'kiln:push-to-production';

/** What the dialog knows about a handle: its versions (with the run that made each and its
 * metrics), what is deployed, and whether an infer image exists. */
interface HandleFacts {
  handle: string;
  versions: ModelVersion[];
  metrics: Map<number, string>;
  current: Deployment | null;
  inferImage: boolean;
}

async function factsOf(handle: string): Promise<HandleFacts> {
  const [versions, current, inferImage] = await Promise.all([serving.modelVersions(handle), serving.deployment(handle), serving.hasInferImage(handle)]);
  const metrics = new Map<number, string>();
  // The key metrics of the newest versions' runs (a run the store lost says nothing).
  await Promise.all(
    versions.slice(0, 20).map(async v => {
      if (!v.run_id) {
        return;
      }
      try {
        const run = await serving.run(v.run_id);
        const shown = run.metrics.slice(0, 3).map(m => `${m.key} ${formatNumber(m.value)}`);
        metrics.set(v.version, [run.name, ...shown].join(' · '));
      } catch {
        metrics.set(v.version, `run ${v.run_id.slice(0, 8)}`);
      }
    })
  );
  return { handle, versions, metrics, current, inferImage };
}

function labelled(text: string, control: HTMLElement, name: string): HTMLLabelElement {
  control.setAttribute('aria-label', text);
  control.setAttribute('name', name);
  control.classList.add('jp-mod-styled');
  const wrapper = element('label', 'kiln-Field');
  wrapper.append(element('span', '', text), control);
  return wrapper;
}

function option(value: string, text: string): HTMLOptionElement {
  const node = document.createElement('option');
  node.value = value;
  node.textContent = text;
  return node;
}

/** The dialog's form. The summary under it says what the push will do, as it is edited. */
export class PushForm extends Widget implements Dialog.IBodyWidget<PushChoice> {
  private readonly handle = document.createElement('input');
  private readonly version = document.createElement('select');
  private readonly strategy = document.createElement('select');
  private readonly percent = document.createElement('input');
  private readonly policy = document.createElement('select');
  private readonly epsilon = document.createElement('input');
  private readonly runner = document.createElement('select');
  private readonly percentRow: HTMLElement;
  private readonly policyRow: HTMLElement;
  private readonly epsilonRow: HTMLElement;
  private readonly summary = element('p', 'kiln-PushSummary');
  private readonly problem = element('p', 'kiln-PushProblem');
  private facts: HandleFacts;
  private asked = 0;

  constructor(facts: HandleFacts, choice: PushChoice, problem: Problem | null) {
    super();
    this.addClass('kiln-PushForm');
    this.facts = facts;
    this.handle.value = choice.handle;
    this.handle.placeholder = 'iris';
    this.strategy.append(option('blue-green', 'blue-green (all at once, old version on standby)'), option('canary', 'canary (a share of traffic)'), option('bandit', 'bandit (traffic follows rewards)'));
    this.strategy.value = choice.strategy;
    // Text, not `number`: an out-of-range number input would make the dialog disable Deploy
    // without a word; the summary line says what is wrong instead.
    this.percent.inputMode = 'numeric';
    this.percent.value = choice.percent;
    this.policy.append(option('epsilon-greedy', 'ε-greedy'), option('thompson', 'Thompson sampling'));
    this.policy.value = choice.policy;
    this.epsilon.inputMode = 'decimal';
    this.epsilon.value = choice.epsilon;
    this.runner.append(option('', "the server's choice"), option('process', 'process'), option('podman', 'podman'));
    this.runner.value = choice.runner;
    this.percentRow = labelled('Percent', this.percent, 'percent');
    this.policyRow = labelled('Policy', this.policy, 'policy');
    this.epsilonRow = labelled('Epsilon', this.epsilon, 'epsilon');
    this.summary.setAttribute('role', 'status');
    this.summary.setAttribute('aria-live', 'polite');
    this.problem.setAttribute('role', 'alert');
    this.node.append(
      labelled('Handle', this.handle, 'handle'),
      labelled('Model version', this.version, 'version'),
      labelled('Strategy', this.strategy, 'strategy'),
      this.percentRow,
      this.policyRow,
      this.epsilonRow,
      labelled('Runner', this.runner, 'runner'),
      this.summary,
      this.problem
    );
    this.fillVersions(choice.version);
    this.showProblem(problem);
    for (const control of [this.version, this.strategy, this.percent, this.policy, this.epsilon, this.runner]) {
      const edited = () => {
        this.touched = true;
        this.refreshSummary();
      };
      control.addEventListener('input', edited);
      control.addEventListener('change', edited);
    }
    this.handle.addEventListener('change', () => void this.reloadHandle());
    this.refreshSummary();
  }

  private fillVersions(chosen: number | null): void {
    const { versions, metrics, current } = this.facts;
    this.version.replaceChildren(
      ...versions.map(v => {
        const serving = current ? describeServing(current, v.version) : '';
        const aliases = v.aliases.length > 0 ? ` [${v.aliases.join(', ')}]` : '';
        const made = metrics.get(v.version);
        return option(String(v.version), `v${v.version}${aliases}${made ? ` — ${made}` : ''}${serving}`);
      })
    );
    if (versions.length === 0) {
      this.version.append(option('', 'no versions: train it first'));
    }
    const keep = chosen !== null && versions.some(v => v.version === chosen) ? chosen : versions[0]?.version;
    this.version.value = keep === undefined ? '' : String(keep);
  }

  private async reloadHandle(): Promise<void> {
    const handle = this.handle.value.trim();
    const asked = ++this.asked;
    this.summary.textContent = `reading ${handle}…`;
    try {
      const facts = await factsOf(handle);
      if (asked !== this.asked) {
        return;
      }
      this.facts = facts;
      this.fillVersions(null);
      this.showProblem(null);
    } catch (error) {
      if (asked === this.asked) {
        this.showProblem({ field: 'Handle', message: `could not read ${handle}: ${reasonOf(error)}` });
      }
    }
    this.refreshSummary();
  }

  private refreshSummary(): void {
    const kind = this.strategy.value;
    this.percentRow.hidden = kind !== 'canary';
    this.policyRow.hidden = kind !== 'bandit';
    this.epsilonRow.hidden = kind !== 'bandit' || this.policy.value !== 'epsilon-greedy';
    const choice = this.getValue();
    this.summary.textContent = describePush(this.facts.current, choice);
    // A problem shows as it is typed; Deploy with one opens the dialog again.
    if (this.touched) {
      this.showProblem(checkPush(choice, this.facts.versions, this.facts.inferImage));
    }
  }

  /** Whether the user changed a field (a problem given at construction stays until then). */
  private touched = false;

  private showProblem(problem: Problem | null): void {
    this.problem.textContent = problem ? `${problem.field}: ${problem.message}` : '';
    this.problem.hidden = problem === null;
  }

  get currentFacts(): HandleFacts {
    return this.facts;
  }

  getValue(): PushChoice {
    const version = this.version.value === '' ? null : Number(this.version.value);
    return {
      handle: this.handle.value.trim(),
      version,
      strategy: this.strategy.value as StrategyKind,
      percent: this.percent.value,
      policy: this.policy.value as Policy,
      epsilon: this.epsilon.value,
      runner: this.runner.value
    };
  }
}

/** `, serving 90 %` and the like, after a version in the list. */
function describeServing(d: Deployment, version: number): string {
  if (d.candidate === version) {
    return ' (the canary now)';
  }
  if (d.stable === version) {
    return ' (serving now)';
  }
  if (d.standby === version) {
    return ' (on standby)';
  }
  if ((d.arms ?? []).includes(version)) {
    return ' (a bandit arm now)';
  }
  return '';
}

export function reasonOf(error: unknown): string {
  if (error instanceof KilnError && error.status === 409) {
    return `someone changed it first — ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** The live view of one change: its steps as the store reports them, then how it ended. */
export class DeployView extends Widget {
  private readonly steps = element('ol', 'kiln-DeploySteps');
  readonly state = element('p', 'kiln-DeployState', 'sending…');

  constructor(
    readonly handle: string,
    intent: string
  ) {
    super();
    this.addClass('kiln-DeployView');
    this.id = `kiln-deploy-${handle}-${Date.now()}`;
    this.state.setAttribute('role', 'status');
    this.steps.setAttribute('aria-label', `Steps of the change to ${handle}`);
    this.node.append(element('p', 'kiln-DeployIntent', intent), this.state, this.steps);
  }

  showChange(change: ChangeProgress): void {
    this.steps.replaceChildren(
      ...change.steps.map(step => {
        const li = element('li', 'kiln-DeployStep', `${clock(step.at)}  ${step.text}`);
        li.dataset.kilnStep = step.kind;
        if (step.version !== undefined) {
          li.dataset.kilnVersion = String(step.version);
        }
        return li;
      })
    );
  }

  finish(text: string, ok: boolean): void {
    this.state.textContent = text;
    this.state.dataset.kilnOutcome = ok ? 'done' : 'failed';
  }
}

/** Sends a change and follows it: polls the status until the request answers. */
export async function follow(app: JupyterFrontEnd, handle: string, intent: string, send: () => Promise<Deployment>): Promise<Deployment | null> {
  const view = new DeployView(handle, intent);
  const widget = new MainAreaWidget({ content: view });
  widget.id = view.id;
  widget.title.label = `Deploy ${handle}`;
  widget.title.closable = true;
  app.shell.add(widget, 'main', { mode: 'split-right' });
  let before: number | null = null;
  try {
    before = (await serving.status(handle)).change?.started_at ?? null;
  } catch {
    // the send below says what is wrong
  }
  let done = false;
  const poll = async () => {
    while (!done) {
      try {
        const change = (await serving.status(handle)).change;
        if (change && change.started_at !== before && !done) {
          view.showChange(change);
          view.state.textContent = change.finished_at ? view.state.textContent : `in progress: ${change.detail}`;
        }
      } catch {
        // the request's own answer reports a store that went away
      }
      await new Promise(resolve => setTimeout(resolve, 300));
    }
  };
  const polling = poll();
  try {
    const saved = await send();
    done = true;
    await polling;
    const last = (await serving.status(handle).catch(() => null))?.change;
    if (last && last.started_at !== before) {
      view.showChange(last);
    }
    view.finish(`done: ${describeSplit(saved)} (revision ${saved.revision})`, true);
    Notification.success(`${handle}: ${describeSplit(saved)}.`, { autoClose: 6000 });
    return saved;
  } catch (error) {
    done = true;
    await polling;
    const last = (await serving.status(handle).catch(() => null))?.change;
    if (last && last.started_at !== before) {
      view.showChange(last);
    }
    const kept = await serving.deployment(handle).catch(() => null);
    const said = describeFailure(handle, error instanceof KilnError ? error.status : -1, reasonOf(error), kept);
    view.finish(`failed: ${said}`, false);
    Notification.error(`Kiln: ${said}`, { autoClose: false });
    return null;
  }
}

/** The whole action: the dialog (again, with what was typed, while a field is wrong), then
 * the change, followed. */
export async function pushToProduction(app: JupyterFrontEnd, handle: string, version: number | null): Promise<void> {
  let facts: HandleFacts;
  try {
    facts = await factsOf(handle);
  } catch (error) {
    Notification.error(`Kiln: could not read ${handle} from the store: ${reasonOf(error)}`, { autoClose: false });
    return;
  }
  let choice: PushChoice = {
    handle,
    version: version ?? facts.versions[0]?.version ?? null,
    strategy: facts.current ? 'canary' : 'blue-green',
    percent: '10',
    policy: 'epsilon-greedy',
    epsilon: '0.1',
    runner: ''
  };
  let problem: Problem | null = null;
  for (;;) {
    const form = new PushForm(facts, choice, problem);
    const answer = await showDialog({
      title: 'Push to production',
      body: form,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Deploy', ariaLabel: 'Deploy' })],
      focusNodeSelector: 'select[name="version"]'
    });
    if (!answer.button.accept || answer.value === null) {
      return;
    }
    choice = answer.value;
    facts = form.currentFacts;
    if (facts.handle !== choice.handle) {
      try {
        facts = await factsOf(choice.handle);
      } catch (error) {
        problem = { field: 'Handle', message: `could not read ${choice.handle}: ${reasonOf(error)}` };
        continue;
      }
    }
    problem = checkPush(choice, facts.versions, facts.inferImage);
    if (problem === null) {
      break;
    }
    Notification.error(`Push to production: ${problem.field}: ${problem.message}`, { autoClose: 8000 });
  }
  const request: serving.DeployRequest = {
    model_version: choice.version as number,
    strategy: strategyText(choice),
    expected_revision: facts.current?.revision ?? 0
  };
  if (choice.runner) {
    request.runner = choice.runner;
  }
  await follow(app, choice.handle, describePush(facts.current, choice), () => serving.deploy(choice.handle, request));
}
