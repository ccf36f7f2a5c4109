import { describe as suite, expect, it } from 'vitest';

import { Status, describe } from './status';

const up: Status = {
  store: { ok: true, url: 'http://127.0.0.1:7878' },
  registry: { ok: true, host: '127.0.0.1:5000' },
  cli: { ok: true }
};

suite('describe', () => {
  it.each([
    ['everything answers', up, true, 'Kiln: store ✓ registry ✓ kernel ✓', 'store (http://127.0.0.1:7878): answers', true],
    [
      'a store that does not answer is named, with the reason',
      { ...up, store: { ok: false, url: 'http://127.0.0.1:1', reason: 'does not answer: [Errno 111] Connection refused' } },
      true,
      'Kiln: store ✗ registry ✓ kernel ✓',
      'store (http://127.0.0.1:1): does not answer: [Errno 111] Connection refused',
      false
    ],
    ['no registry set', { ...up, registry: { ok: false, host: null, reason: 'no registry is set: KILN_REGISTRY' } }, null, 'Kiln: store ✓ registry ✗', 'registry: no registry is set: KILN_REGISTRY', false],
    ['another kernel', up, false, 'Kiln: store ✓ registry ✓ kernel ✗', 'kernel: not Kiln\'s: choose "Rust (Kiln)" to record cells and types', false]
  ] as [string, Status, boolean | null, string, string, boolean][])('%s', (_, status, kernel, text, line, ok) => {
    const said = describe(status, kernel);
    expect(said.text).toBe(text);
    expect(said.title.split('\n')).toContain(line);
    expect(said.ok).toBe(ok);
  });

  it('says when the server extension itself does not answer', () => {
    expect(describe('HTTP 404', true)).toMatchObject({ text: 'Kiln: unreachable', ok: false });
  });
});
