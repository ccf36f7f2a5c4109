/**
 * "Train a new version" (`kiln:train-version`): `kiln run HANDLE` through the server
 * extension — data → train from the handle's registered images, with the parameters the
 * user types — its progress lines live in a view of its own, and at the end the model
 * version it registered (or why none was). So a new version is made without a terminal, to
 * push next.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, MainAreaWidget, Notification, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { parseParams } from './deployments';
import { element } from './dom';
import { KilnError, streamKiln } from './request';

export const TRAIN_VERSION = 'kiln:train-version';

interface TrainChoice {
  handle: string;
  params: string;
  runner: string;
}

class TrainForm extends Widget implements Dialog.IBodyWidget<TrainChoice> {
  private readonly handle = document.createElement('input');
  private readonly params = document.createElement('textarea');
  private readonly runner = document.createElement('select');

  constructor(choice: TrainChoice, problem: string | null) {
    super();
    this.addClass('kiln-PushForm');
    this.handle.value = choice.handle;
    this.params.value = choice.params;
    this.params.rows = 3;
    this.params.placeholder = 'epochs=150, lr=0.1 (empty: the notebook\'s values)';
    for (const [value, text] of [
      ['', "the server's choice"],
      ['process', 'process'],
      ['podman', 'podman']
    ]) {
      const o = document.createElement('option');
      o.value = value;
      o.textContent = text;
      this.runner.append(o);
    }
    this.runner.value = choice.runner;
    for (const [label, control, name] of [
      ['Handle', this.handle, 'handle'],
      ['Parameters', this.params, 'params'],
      ['Runner', this.runner, 'runner']
    ] as const) {
      control.setAttribute('aria-label', label);
      control.setAttribute('name', name);
      control.classList.add('jp-mod-styled');
      const row = element('label', 'kiln-Field');
      row.append(element('span', '', label), control);
      this.node.append(row);
    }
    const note = element('p', 'kiln-PushProblem', problem ?? '');
    note.setAttribute('role', 'alert');
    note.hidden = problem === null;
    this.node.append(note);
  }

  getValue(): TrainChoice {
    return { handle: this.handle.value.trim(), params: this.params.value, runner: this.runner.value };
  }
}

/** Asks, trains, follows; resolves to the version registered, or `null`. */
export async function trainVersion(app: JupyterFrontEnd, handle: string): Promise<number | null> {
  let choice: TrainChoice = { handle, params: '', runner: '' };
  let problem: string | null = null;
  let params: Record<string, string> = {};
  for (;;) {
    const answer = await showDialog({
      title: 'Train a new version',
      body: new TrainForm(choice, problem),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Train', ariaLabel: 'Train' })],
      focusNodeSelector: 'textarea'
    });
    if (!answer.button.accept || answer.value === null) {
      return null;
    }
    choice = answer.value;
    const parsed = parseParams(choice.params);
    if ('problem' in parsed) {
      problem = `Parameters: ${parsed.problem}`;
      Notification.error(`Kiln: ${problem}`, { autoClose: 8000 });
      continue;
    }
    params = parsed.params;
    break;
  }
  const view = new Widget();
  view.addClass('kiln-DeployView');
  const state = element('p', 'kiln-DeployState', `training ${choice.handle}…`);
  state.setAttribute('role', 'status');
  const lines = element('ol', 'kiln-DeploySteps');
  lines.setAttribute('aria-label', `Training ${choice.handle}`);
  view.node.append(state, lines);
  const abort = new AbortController();
  const widget = new MainAreaWidget({ content: view });
  widget.id = `kiln-train-${choice.handle}-${Date.now()}`;
  widget.title.label = `Train ${choice.handle}`;
  widget.title.closable = true;
  widget.disposed.connect(() => abort.abort());
  app.shell.add(widget, 'main', { mode: 'split-right' });
  let version: number | null = null;
  let failure: string | null = null;
  try {
    const body: Record<string, unknown> = { handle: choice.handle, params };
    if (choice.runner) {
      body.runner = choice.runner;
    }
    await streamKiln(
      'train',
      body,
      event => {
        if (event.event === 'log') {
          lines.append(element('li', 'kiln-DeployStep', event.line));
        } else if (event.event === 'exit') {
          if (event.code !== 0) {
            failure = event.message || `kiln run exited ${event.code}`;
          } else if (event.summary?.model_version !== undefined) {
            version = event.summary.model_version;
          } else {
            failure = `trained, but no version was registered: ${event.summary?.not_registered ?? 'the run registered none'}`;
          }
        }
      },
      abort.signal
    );
  } catch (error) {
    failure = abort.signal.aborted ? 'cancelled' : error instanceof KilnError ? error.message : String(error);
  }
  if (failure !== null || version === null) {
    state.textContent = `failed: ${failure ?? 'no result'}`;
    state.dataset.kilnOutcome = 'failed';
    Notification.error(`Kiln: training ${choice.handle} failed: ${failure ?? 'no result'}`, { autoClose: false });
    return null;
  }
  state.textContent = `done: ${choice.handle} v${version} registered`;
  state.dataset.kilnOutcome = 'done';
  const registered: number = version;
  Notification.success(`${choice.handle} v${registered} registered.`, {
    autoClose: 8000,
    actions: [{ label: 'Push to production', callback: () => void app.commands.execute('kiln:push-to-production', { handle: choice.handle, version: registered }) }]
  });
  return registered;
}
