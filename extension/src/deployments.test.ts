import { describe, expect, it } from 'vitest';

import {
  Deployment,
  ModelVersion,
  PushChoice,
  TrafficBucket,
  banditSince,
  bestArm,
  bucketsSince,
  bucketFor,
  checkPush,
  describeFailure,
  describePercent,
  describePromote,
  describePush,
  describeRollback,
  describeSplit,
  exampleRequest,
  parseParams,
  stackedSeries,
  strategyLabel,
  strategyText,
  summarize
} from './deployments';

const versions: ModelVersion[] = [1, 2, 3].map(version => ({ name: 'iris', version, source: 'artifact:x', created_at: version, aliases: [] }));

function choice(extra: Partial<PushChoice>): PushChoice {
  return { handle: 'iris', version: 3, strategy: 'canary', percent: '10', policy: 'epsilon-greedy', epsilon: '0.1', runner: '', ...extra };
}

function deployment(extra: Partial<Deployment>): Deployment {
  return { handle: 'iris', strategy: 'blue-green', stable: 2, updated_at: 0, revision: 1, history: [], ...extra };
}

function bucket(version: number, start: number, requests: number, extra: Partial<TrafficBucket> = {}): TrafficBucket {
  return { version, start, requests, errors: 0, p50_ms: 1, p95_ms: 2, p99_ms: 3, rewards: 0, ...extra };
}

describe('checkPush', () => {
  const cases: [string, Partial<PushChoice>, boolean, string | null][] = [
    ['a canary of 10 %', {}, true, null],
    ['percent 0', { percent: '0' }, true, "Percent: '0' is not a whole number from 1 to 99"],
    ['percent 100', { percent: '100' }, true, "Percent: '100' is not a whole number from 1 to 99"],
    ['percent 12.5', { percent: '12.5' }, true, "Percent: '12.5' is not a whole number from 1 to 99"],
    ['percent empty', { percent: ' ' }, true, "Percent: ' ' is not a whole number from 1 to 99"],
    ['percent ignored for blue-green', { strategy: 'blue-green', percent: '0' }, true, null],
    ['no infer image', {}, false, 'Model version: iris has no infer image to serve version 3 with: tag a cell "infer" and componentize the notebook'],
    ['an unknown version', { version: 9 }, true, "Model version: choose one of iris's versions"],
    ['an unknown policy', { strategy: 'bandit', policy: 'softmax' as PushChoice['policy'] }, true, "Policy: 'softmax' is not a policy (ε-greedy or Thompson)"],
    ['epsilon over 1', { strategy: 'bandit', epsilon: '1.5' }, true, "Epsilon: '1.5' is not a number from 0 to 1"],
    ['thompson needs no epsilon', { strategy: 'bandit', policy: 'thompson', epsilon: '' }, true, null],
    ['a handle with a space', { handle: 'Iris UI' }, true, "Handle: 'Iris UI' is not a handle (lower-case letters, digits, '.', '_' and '-')"],
    ['an unknown runner', { runner: 'docker' }, true, "Runner: 'docker' is not a runner (podman or process)"]
  ];
  for (const [name, extra, image, expected] of cases) {
    it(name, () => {
      const problem = checkPush(choice(extra), versions, image);
      expect(problem ? `${problem.field}: ${problem.message}` : null).toBe(expected);
    });
  }

  it('a handle without versions says to train it', () => {
    expect(checkPush(choice({}), [], true)?.message).toBe('iris has no model versions yet: train one first ("Train a version" in the Deployments panel)');
  });
});

describe('strategies', () => {
  it('write the text form the store takes, and read back for people', () => {
    const texts = [choice({}), choice({ strategy: 'blue-green' }), choice({ strategy: 'bandit' }), choice({ strategy: 'bandit', policy: 'thompson' }), choice({ percent: ' 30 ' })].map(strategyText);
    expect(texts).toEqual(['canary:10', 'blue-green', 'bandit:epsilon-greedy:0.1', 'bandit:thompson', 'canary:30']);
    expect(texts.map(strategyLabel)).toEqual(['canary 10 %', 'blue-green', 'bandit (ε-greedy, ε = 0.1)', 'bandit (Thompson)', 'canary 30 %']);
  });
});

describe('what a change will do', () => {
  it('push', () => {
    const lines = [
      describePush(null, choice({ version: 1, strategy: 'blue-green' })),
      describePush(deployment({}), choice({})),
      describePush(deployment({ strategy: 'canary:10', candidate: 3 }), choice({ version: 1, percent: '30' })),
      describePush(deployment({}), choice({ version: 2 })),
      describePush(deployment({}), choice({ strategy: 'blue-green' })),
      describePush(deployment({}), choice({ strategy: 'bandit', policy: 'thompson' })),
      describePush(deployment({}), choice({ percent: '150' }))
    ];
    expect(lines).toEqual([
      'v1 starts serving iris: it takes all of its traffic. Nothing serves iris yet.',
      'v3 takes 10 % of iris; v2 keeps 90 %.',
      'v1 takes 30 % of iris; v2 keeps 70 %. v3, the canary now, stops.',
      'v2 is already the stable version of iris: a canary needs another version.',
      'v3 takes all of iris at once; v2 stays on standby for an instant roll back.',
      'v2, v3 compete for iris by Thompson sampling; traffic follows their rewards.',
      'v3 takes ? % of iris; v2 keeps ? %.'
    ]);
  });

  it('promote, roll back and change percent', () => {
    const canary = deployment({ strategy: 'canary:30', candidate: 3 });
    const green = deployment({ stable: 3, standby: 2 });
    const bandit = deployment({ strategy: 'bandit:thompson', arms: [2, 3] });
    expect([describePromote(canary, null), describePromote(green, null), describePromote(bandit, null), describePromote(bandit, 3), describePromote(deployment({}), null)]).toEqual([
      { ok: true, text: 'v3 takes all of iris; v2 stops.' },
      { ok: true, text: 'v3 stays; the standby v2 stops (no instant roll back after this).' },
      { ok: false, text: 'no arm of iris has a reward yet: send feedback first.' },
      { ok: true, text: 'v3, the arm with the best mean reward, takes all of iris; the other arms stop.' },
      { ok: false, text: 'iris has nothing to promote (no canary, standby or competing arms).' }
    ]);
    expect([describeRollback(canary), describeRollback(green), describeRollback(bandit), describeRollback(deployment({}))].map(r => r.text)).toEqual([
      'the canary v3 stops; v2 takes all of iris again.',
      'v2 takes all of iris again at once; v3 goes on standby.',
      'the newest arm v3 stops; v2 go on.',
      'iris has nothing to roll back to.'
    ]);
    expect([describePercent(canary, '50'), describePercent(canary, '0'), describePercent(green, '50')]).toEqual([
      { ok: true, text: 'v3 takes 50 % of iris (now 30 %); v2 keeps 50 %.' },
      { ok: false, text: "Percent: '0' is not a whole number from 1 to 99." },
      { ok: false, text: 'iris has no canary whose percent could change.' }
    ]);
    expect([describeSplit(canary), describeSplit(green), describeSplit(bandit)]).toEqual([
      'v3 takes 30 % of iris; v2 keeps 70 %',
      'v3 takes all of iris; v2 stays on standby',
      'bandit (Thompson) shares iris between v2, v3'
    ]);
  });
});

describe('a change that did not succeed', () => {
  const kept = deployment({});
  it.each([
    ['refused by the store', 400, kept, 'nothing was switched on iris: bad field. v2 takes all of iris, as before.'],
    ['an instance that did not start', 422, kept, 'nothing was switched on iris: bad field. v2 takes all of iris, as before.'],
    ['a store that never answered', 502, null, 'nothing was switched on iris: bad field.'],
    ['a store that went away mid-change', 504, null, 'the change to iris may or may not have been made: bad field.'],
    ['a store that went away and came back', 504, kept, 'the change to iris may or may not have been made: bad field. v2 takes all of iris now.'],
    ['a Jupyter server that went away', 0, null, 'the change to iris may or may not have been made: bad field.']
  ])('%s', (_, status, current, expected) => {
    expect(describeFailure('iris', status, 'bad field', current)).toBe(expected);
  });
});

describe('traffic', () => {
  const buckets = [
    bucket(1, 10_000, 6, { errors: 1, p95_ms: 4 }),
    bucket(2, 10_000, 3, { mean_reward: 1, rewards: 2 }),
    bucket(1, 30_000, 7, { p95_ms: 9, mean_reward: 0.5, rewards: 4 }),
    bucket(2, 30_000, 4, { mean_reward: 0.25, rewards: 2 })
  ];

  it('summarizes shares, errors, p95 and weighted mean rewards per version', () => {
    const summary = summarize(buckets);
    expect(summary.map(s => [s.version, s.requests, Math.round(s.share * 10) / 10, s.errors, s.p95, s.meanReward, s.rewards])).toEqual([
      [1, 13, 65, 1, 9, 0.5, 4],
      [2, 7, 35, 0, 2, 0.625, 4]
    ]);
    expect(bestArm(summary)).toBe(2);
    expect(bestArm(summarize([bucket(1, 0, 5)]))).toBeNull();
  });

  it('stacks every bucket of the window, the empty ones at zero', () => {
    const series = stackedSeries({ handle: 'iris', bucket_ms: 10_000, buckets: [...buckets, bucket(1, -50_000, 99)] }, 5_000, 42_000);
    expect(series.times).toEqual([0, 10_000, 20_000, 30_000, 40_000]);
    expect(series.versions).toEqual([1, 2]);
    expect(series.requests.get(1)).toEqual([0, 6, 0, 7, 0]);
    expect(series.requests.get(2)).toEqual([0, 3, 0, 4, 0]);
    expect(series.errors.get(1)).toEqual([0, 1, 0, 0, 0]);
    expect(series.p95.get(1)).toEqual([null, 4, null, 9, null]);
  });

  it('reads 10-second buckets for an hour or less, minutes beyond', () => {
    expect([5, 60, 61, 360].map(minutes => bucketFor(minutes * 60_000))).toEqual([10_000, 10_000, 60_000, 60_000]);
  });
});

describe('exampleRequest', () => {
  it('fills each input by its name, datatype and shape', () => {
    const request = exampleRequest({
      name: 'iris',
      inputs: [
        { name: 'features', datatype: 'FP32', shape: [-1, 4] },
        { name: 'mask', datatype: 'BOOL', shape: [2] },
        { name: 'label', datatype: 'BYTES', shape: [1] }
      ]
    });
    expect(request).toEqual({
      inputs: [
        { name: 'features', shape: [1, 4], datatype: 'FP32', data: [0, 0, 0, 0] },
        { name: 'mask', shape: [2], datatype: 'BOOL', data: [false, false] },
        { name: 'label', shape: [1], datatype: 'BYTES', data: [''] }
      ]
    });
  });
});

describe('parseParams', () => {
  it('reads NAME=VALUE by commas or lines and names a bad entry', () => {
    expect(parseParams('epochs=150, lr = 0.1\nsamples_per_class=20')).toEqual({ params: { epochs: '150', lr: '0.1', samples_per_class: '20' } });
    expect(parseParams('  ')).toEqual({ params: {} });
    expect(parseParams('epochs=1, lr')).toEqual({ problem: "'lr' is not NAME=VALUE" });
    expect(parseParams('my-lr=1')).toEqual({ problem: "'my-lr' is not a parameter name" });
  });
});

describe('banditSince', () => {
  it("is the oldest of the latest run of bandit changes, and arms' pulls count from there", () => {
    const event = (at: number, action: string, detail: string) => ({ at, action, detail });
    const history = [
      event(1, 'deploy', 'blue-green: version 1 serves all traffic'),
      event(2, 'deploy', 'canary: 30% to version 2, the rest to 1'),
      event(3, 'deploy', 'bandit:thompson: arms [1, 2]'),
      event(4, 'deploy', 'bandit:epsilon-greedy:0.1: arms [1, 2, 3]')
    ];
    const bandit = deployment({ strategy: 'bandit:epsilon-greedy:0.1', arms: [1, 2, 3], updated_at: 4, history });
    expect(banditSince(bandit)).toBe(3);
    expect(banditSince(deployment({ history }))).toBeNull();
    const traffic = { handle: 'iris', bucket_ms: 10, buckets: [bucket(1, 0, 5), bucket(1, 10, 6), bucket(2, 20, 7)] };
    expect(bucketsSince(traffic, 12).map(b => b.requests)).toEqual([6, 7]);
  });
});
