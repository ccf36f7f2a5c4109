/**
 * `kiln componentize --progress json` as the server extension streams it: one JSON event a
 * line. A `LineReader` turns the chunks a response body arrives in into whole events; `Rows`
 * folds them into one progress row per phase and component, the view the dialog draws.
 */

export type PhaseState = 'started' | 'running' | 'done' | 'failed';

export interface PhaseEvent {
  event: 'phase';
  phase: string;
  component?: string;
  state: PhaseState;
  progress?: number;
  message?: string;
  seconds: number;
}

export interface ImageSummary {
  role: string;
  name: string;
  reference: string;
  digest: string;
  size: number;
  unpacked_size: number;
  code_package?: string;
}

export interface ResultEvent {
  event: 'result';
  handle: string;
  layout: string;
  images: ImageSummary[];
}

export interface ProblemsEvent {
  event: 'problems';
  diagnostics: import('./analysis').Diagnostic[];
}

/** The server extension's own events around the CLI's. */
export interface StartedEvent {
  event: 'started';
  pid: number;
}

export interface ExitEvent {
  event: 'exit';
  code: number;
  message?: string;
  /** `kiln run`'s summary, when it finished (the server extension's `train` route). */
  summary?: { run_id?: string; model_version?: number; not_registered?: string; dataset_version?: string };
}

/** A line of progress a CLI wrote (the `train` route's `kiln run`). */
export interface LogEvent {
  event: 'log';
  line: string;
}

export interface ErrorEvent {
  event: 'error';
  message: string;
}

export type KilnEvent = PhaseEvent | ResultEvent | ProblemsEvent | StartedEvent | ExitEvent | ErrorEvent | LogEvent;

/** Splits a stream of text chunks into lines and parses each as an event. */
export class LineReader {
  private pending = '';

  /** The complete events in `chunk` (a line cut by the chunk's end waits for the next). */
  push(chunk: string): KilnEvent[] {
    this.pending += chunk;
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    return lines.filter(line => line.trim() !== '').map(parseEvent);
  }

  /** What is left when the stream ends: a last line without a newline. */
  end(): KilnEvent[] {
    const rest = this.pending;
    this.pending = '';
    return rest.trim() === '' ? [] : [parseEvent(rest)];
  }
}

export function parseEvent(line: string): KilnEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new Error(`kiln componentize printed a line that is not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null || typeof (value as { event?: unknown }).event !== 'string') {
    throw new Error(`kiln componentize printed an event without "event": ${line.slice(0, 200)}`);
  }
  return value as KilnEvent;
}

export interface Row {
  phase: string;
  component: string | null;
  state: PhaseState;
  progress: number | null;
  message: string;
  seconds: number;
}

/** One row per (phase, component), in the order each first appeared. */
export function foldRows(rows: readonly Row[], event: KilnEvent): Row[] {
  if (event.event !== 'phase') {
    return [...rows];
  }
  const component = event.component ?? null;
  const at = rows.findIndex(r => r.phase === event.phase && r.component === component);
  const before = at >= 0 ? rows[at] : undefined;
  const row: Row = {
    phase: event.phase,
    component,
    state: event.state,
    // Only a phase still under way may show an indeterminate bar: a failed one stops where it was.
    progress: event.state === 'done' ? 1 : (event.progress ?? before?.progress ?? (event.state === 'failed' ? 0 : null)),
    message: event.message ?? before?.message ?? '',
    seconds: event.seconds
  };
  if (at < 0) {
    return [...rows, row];
  }
  const next = [...rows];
  next[at] = row;
  return next;
}
