/**
 * The one way the browser reaches Kiln: the server extension's routes under the Jupyter
 * server's base URL (so a JupyterHub prefix works), with Jupyter's authentication and XSRF
 * handling from `ServerConnection`. Every failure becomes a `KilnError` carrying the
 * server's own message, for a notification that says why.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { KilnEvent, LineReader } from './events';

export class KilnError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'KilnError';
  }
}

function url(settings: ServerConnection.ISettings, path: string): string {
  return URLExt.join(settings.baseUrl, 'kiln', path);
}

async function fetchKiln(path: string, init: RequestInit, settings: ServerConnection.ISettings): Promise<Response> {
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url(settings, path), init, settings);
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') {
      throw error;
    }
    throw new KilnError(`the Jupyter server does not answer: ${String(error)}`, 0);
  }
  if (!response.ok) {
    throw new KilnError(await messageOf(response), response.status);
  }
  return response;
}

async function messageOf(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { message?: unknown; error?: unknown };
    const message = body.message ?? body.error;
    if (typeof message === 'string' && message !== '') {
      return message;
    }
  } catch {
    // not JSON: the text itself
  }
  return text.trim() || `HTTP ${response.status} ${response.statusText}`;
}

/** A JSON request to a Kiln route (`show`, `status`, `api/v1/…`). */
export async function requestKiln<T>(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const response = await fetchKiln(path, init, settings);
  const text = await response.text();
  if (text === '') {
    return undefined as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new KilnError(`kiln/${path} answered something that is not JSON: ${text.slice(0, 200)}`, response.status);
  }
}

/** The raw bytes a Kiln route answers (an artifact's download). */
export async function downloadKiln(path: string, settings: ServerConnection.ISettings = ServerConnection.makeSettings()): Promise<Blob> {
  const response = await fetchKiln(path, {}, settings);
  return response.blob();
}

/** A POST whose answer is a stream of events, one JSON object a line, each handed to
 * `onEvent` as it arrives. Aborting `signal` closes the request, which stops the work. */
export async function streamKiln(
  path: string,
  body: unknown,
  onEvent: (event: KilnEvent) => void,
  signal: AbortSignal,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  const response = await fetchKiln(path, { method: 'POST', body: JSON.stringify(body), signal }, settings);
  if (!response.body) {
    throw new KilnError(`kiln/${path} answered without a body`, response.status);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const lines = new LineReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      break;
    }
    lines.push(value).forEach(onEvent);
  }
  lines.end().forEach(onEvent);
}
