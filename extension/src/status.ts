/**
 * What the status-bar item says: for the store, the registry and the CLI (as the server
 * extension's `status` route reports them) and the notebook's kernel, whether each answers,
 * where it is, and the reason when it does not.
 */

export interface Part {
  ok: boolean;
  reason?: string;
  url?: string | null;
  host?: string | null;
}

export interface Status {
  cli: Part;
  store: Part;
  registry: Part;
  /** The Jupyter server's root directory (as given and resolved): where notebooks live. */
  root?: string[];
}

/** One line for each part: what it is and whether it answers, the reason when not. */
export function describe(status: Status | string, kernel: boolean | null): { text: string; title: string; ok: boolean } {
  if (typeof status === 'string') {
    return { text: 'Kiln: unreachable', title: `The Jupyter server's Kiln extension does not answer: ${status}`, ok: false };
  }
  const mark = (ok: boolean) => (ok ? '✓' : '✗');
  const parts: [string, Part][] = [
    ['store', status.store],
    ['registry', status.registry],
    ['kiln CLI', status.cli]
  ];
  // Where each part is, whether it answers or not: "store (http://…): does not answer: …".
  const lines = parts.map(([name, p]) => {
    const where = p.url ?? p.host;
    return `${name}${where ? ` (${where})` : ''}: ${p.ok ? 'answers' : (p.reason ?? 'does not answer')}`;
  });
  if (kernel !== null) {
    lines.push(`kernel: ${kernel ? "Kiln's" : 'not Kiln\'s: choose "Rust (Kiln)" to record cells and types'}`);
  }
  const ok = parts.every(([, p]) => p.ok) && kernel !== false;
  const text = `Kiln: store ${mark(status.store.ok)} registry ${mark(status.registry.ok)}${kernel === null ? '' : ` kernel ${mark(kernel)}`}`;
  return { text, title: lines.join('\n'), ok };
}

