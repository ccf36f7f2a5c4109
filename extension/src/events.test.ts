import { describe, expect, it } from 'vitest';

import { KilnEvent, LineReader, Row, foldRows, parseEvent } from './events';

describe('LineReader', () => {
  it('gives whole events whatever the chunks are cut at', () => {
    const text = '{"event":"started","pid":7}\n{"event":"phase","phase":"analyse","state":"started","seconds":0}\n\n{"event":"exit","code":0}';
    for (let cut = 1; cut < text.length; cut++) {
      const reader = new LineReader();
      const events = [...reader.push(text.slice(0, cut)), ...reader.push(text.slice(cut)), ...reader.end()];
      expect(events.map(e => e.event)).toEqual(['started', 'phase', 'exit']);
    }
  });

  it('names a line that is not an event', () => {
    expect(() => parseEvent('warning: something')).toThrow(/not JSON: warning: something/);
    expect(() => parseEvent('{"phase":"x"}')).toThrow(/without "event"/);
  });
});

describe('foldRows', () => {
  const phase = (phase: string, state: string, extra: object = {}): KilnEvent => ({ event: 'phase', phase, state, seconds: 1, ...extra }) as KilnEvent;

  it('keeps one row per phase and component, in order of first appearance', () => {
    const events: KilnEvent[] = [
      phase('compile', 'started'),
      phase('compile', 'running', { progress: 0.25, message: '10/~40 crates · serde' }),
      phase('compile', 'running', { message: 'linking' }),
      phase('package', 'started', { component: 'data' }),
      phase('package', 'done', { component: 'data', message: 'sha256:abc' }),
      phase('package', 'started', { component: 'train' }),
      phase('compile', 'done', { message: '3 binaries' }),
      { event: 'result', handle: 'h', layout: '/l', images: [] }
    ];
    const rows = events.reduce<Row[]>(foldRows, []);
    expect(rows.map(r => [r.phase, r.component, r.state, r.progress, r.message])).toEqual([
      ['compile', null, 'done', 1, '3 binaries'],
      ['package', 'data', 'done', 1, 'sha256:abc'],
      ['package', 'train', 'started', null, '']
    ]);
  });

  it('keeps the last progress and message while a phase says nothing new', () => {
    const rows = [phase('compile', 'running', { progress: 0.5, message: 'half' }), phase('compile', 'running')].reduce<Row[]>(foldRows, []);
    expect(rows[0]).toMatchObject({ progress: 0.5, message: 'half' });
  });

  it.each([
    ['a failed phase that never moved', [phase('connect', 'started'), phase('connect', 'failed')], 0],
    ['a failed phase that had moved', [phase('compile', 'running', { progress: 0.4 }), phase('compile', 'failed')], 0.4],
    ['a phase under way that has not moved', [phase('compile', 'started')], null]
  ])('%s shows its bar as it stopped', (_, events, progress) => {
    expect(events.reduce<Row[]>(foldRows, [])[0].progress).toBe(progress);
  });
});
