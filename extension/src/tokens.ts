/**
 * What Kiln's plugins share, as tokens: the pipeline of the notebook in front of the user,
 * which the badges, the Pipeline panel, the componentize command and the status item read.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

import type { Analysis } from './analysis';
import type { Status } from './status';

/** The current notebook's analysis, as `kiln show` last gave it. */
export interface IPipelineState {
  notebook: NotebookPanel;
  /** `null` until a first answer came (a failure may come first). */
  analysis: Analysis | null;
  /** Whether the compiler's types are in (else only the syntactic analysis is). */
  typed: boolean;
  /** `performance.now()` of the edit the analysis answers, and when it arrived. */
  editedAt: number;
  answeredAt: number;
  /** Why the last request failed, when it did (the analysis is then the one before). */
  error: string | null;
}

export interface IKilnPipeline {
  /** The latest state for the current notebook, if it has one yet. */
  readonly current: IPipelineState | null;
  /** Emitted whenever `current` changes (a new answer, another notebook). */
  readonly changed: ISignal<IKilnPipeline, IPipelineState | null>;
  /** Asks again now (after a role change, say) instead of waiting for the next edit. */
  refresh(): void;
  /** Whether the notebook runs on Kiln's kernel. */
  isKilnNotebook(panel: NotebookPanel | null): boolean;
  /** The kernel's records of the cells it ran (the `kiln` comm's `cells` answer), if the
   * notebook's kernel is Kiln's and answers. */
  kernelCells(panel: NotebookPanel): Promise<unknown | null>;
}

export const IKilnPipeline = new Token<IKilnPipeline>('kiln-jupyterlab:IKilnPipeline', 'The Kiln pipeline of the current notebook.');

/** What the status item last heard from the server extension's `status` route (a reason
 * when it did not answer), so other plugins need not ask again. */
export interface IKilnStatus {
  readonly current: Status | string;
}

export const IKilnStatus = new Token<IKilnStatus>('kiln-jupyterlab:IKilnStatus', "The Kiln store's, registry's and CLI's last known status.");
