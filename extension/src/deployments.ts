/**
 * What "Push to production" and the Deployments panel compute, apart from the DOM: the
 * store's deployment shapes (`kiln-api`), the strategy's text form, what a change will do in
 * words (before the user confirms it), the checks a push passes before it is sent, the
 * traffic buckets folded into a stacked chart's series and a per-version summary, and an
 * OIP v2 request built from a model's metadata.
 */

export type StrategyKind = 'blue-green' | 'canary' | 'bandit';
export type Policy = 'epsilon-greedy' | 'thompson';

export interface DeploymentEvent {
  at: number;
  action: string;
  detail: string;
  actor?: string;
}

export interface Deployment {
  handle: string;
  /** Text form: `blue-green`, `canary:10`, `bandit:epsilon-greedy:0.1`, `bandit:thompson`. */
  strategy: string;
  stable: number;
  candidate?: number;
  standby?: number;
  arms?: number[];
  runner?: string;
  updated_at: number;
  revision: number;
  history: DeploymentEvent[];
}

export interface InstanceStatus {
  version: number;
  state: 'ready' | 'failing' | 'draining' | string;
  started_at: number;
  in_flight: number;
}

export interface ChangeStep {
  at: number;
  kind: 'starting' | 'ready' | 'failed' | 'saved' | 'switched' | 'draining' | 'done' | string;
  version?: number;
  text: string;
}

export interface ChangeProgress {
  action: string;
  detail: string;
  started_at: number;
  finished_at?: number;
  steps: ChangeStep[];
  error?: string;
}

export interface DeploymentStatus {
  handle: string;
  instances: InstanceStatus[];
  change?: ChangeProgress;
}

export interface TrafficBucket {
  version: number;
  start: number;
  requests: number;
  errors: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  mean_reward?: number;
  rewards: number;
}

export interface Traffic {
  handle: string;
  bucket_ms: number;
  buckets: TrafficBucket[];
}

export interface ModelVersion {
  name: string;
  version: number;
  run_id?: string;
  source: string;
  created_at: number;
  aliases: string[];
}

/** What the user chose in the "Push to production" dialog. */
export interface PushChoice {
  handle: string;
  version: number | null;
  strategy: StrategyKind;
  /** Canary: the candidate's share, as typed. */
  percent: string;
  policy: Policy;
  /** ε-greedy: the exploration rate, as typed. */
  epsilon: string;
  /** `''`: the server's choice. */
  runner: string;
}

/** A bad field of a push, named as the dialog labels it. */
export interface Problem {
  field: 'Handle' | 'Model version' | 'Strategy' | 'Percent' | 'Policy' | 'Epsilon' | 'Runner';
  message: string;
}

const HANDLE = /^[a-z0-9][a-z0-9._-]*$/;

/** The first problem of a push, before anything is sent; `null`: it may go. */
export function checkPush(choice: PushChoice, versions: ModelVersion[], hasInferImage: boolean): Problem | null {
  if (!HANDLE.test(choice.handle)) {
    return { field: 'Handle', message: `'${choice.handle}' is not a handle (lower-case letters, digits, '.', '_' and '-')` };
  }
  if (versions.length === 0) {
    return { field: 'Model version', message: `${choice.handle} has no model versions yet: train one first ("Train a version" in the Deployments panel)` };
  }
  if (choice.version === null || !versions.some(v => v.version === choice.version)) {
    return { field: 'Model version', message: `choose one of ${choice.handle}'s versions` };
  }
  if (!hasInferImage) {
    return {
      field: 'Model version',
      message: `${choice.handle} has no infer image to serve version ${choice.version} with: tag a cell "infer" and componentize the notebook`
    };
  }
  if (!['blue-green', 'canary', 'bandit'].includes(choice.strategy)) {
    return { field: 'Strategy', message: `'${choice.strategy}' is not a strategy (blue-green, canary, bandit)` };
  }
  if (choice.strategy === 'canary') {
    const percent = Number(choice.percent.trim());
    if (choice.percent.trim() === '' || !Number.isInteger(percent) || percent < 1 || percent > 99) {
      return { field: 'Percent', message: `'${choice.percent}' is not a whole number from 1 to 99` };
    }
  }
  if (choice.strategy === 'bandit') {
    if (choice.policy !== 'epsilon-greedy' && choice.policy !== 'thompson') {
      return { field: 'Policy', message: `'${String(choice.policy)}' is not a policy (ε-greedy or Thompson)` };
    }
    if (choice.policy === 'epsilon-greedy') {
      const epsilon = Number(choice.epsilon.trim());
      if (choice.epsilon.trim() === '' || !Number.isFinite(epsilon) || epsilon < 0 || epsilon > 1) {
        return { field: 'Epsilon', message: `'${choice.epsilon}' is not a number from 0 to 1` };
      }
    }
  }
  if (!['', 'process', 'podman'].includes(choice.runner)) {
    return { field: 'Runner', message: `'${choice.runner}' is not a runner (podman or process)` };
  }
  return null;
}

/** The strategy's text form, as the store takes it (after `checkPush`). */
export function strategyText(choice: PushChoice): string {
  switch (choice.strategy) {
    case 'canary':
      return `canary:${Number(choice.percent.trim())}`;
    case 'bandit':
      return choice.policy === 'thompson' ? 'bandit:thompson' : `bandit:epsilon-greedy:${Number(choice.epsilon.trim())}`;
    default:
      return 'blue-green';
  }
}

/** The canary percent of a deployment's strategy, if it is a canary. */
export function canaryPercent(strategy: string): number | null {
  const match = /^canary:(\d+)$/.exec(strategy);
  return match ? Number(match[1]) : null;
}

export function isBandit(strategy: string): boolean {
  return strategy.startsWith('bandit:');
}

/** A strategy for people: `canary 10 %`, `bandit (ε-greedy, ε = 0.1)`. */
export function strategyLabel(strategy: string): string {
  const percent = canaryPercent(strategy);
  if (percent !== null) {
    return `canary ${percent} %`;
  }
  if (strategy === 'bandit:thompson') {
    return 'bandit (Thompson)';
  }
  const epsilon = /^bandit:epsilon-greedy:(.+)$/.exec(strategy);
  if (epsilon) {
    return `bandit (ε-greedy, ε = ${epsilon[1]})`;
  }
  return strategy;
}

/** The versions a deployment serves now, each with its share of traffic in words. */
export function servedVersions(d: Deployment): number[] {
  const versions = new Set<number>([d.stable]);
  if (d.candidate !== undefined) {
    versions.add(d.candidate);
  }
  if (d.standby !== undefined) {
    versions.add(d.standby);
  }
  (d.arms ?? []).forEach(v => versions.add(v));
  return [...versions].sort((a, b) => a - b);
}

/** Where traffic goes under `d`, in words. */
export function describeSplit(d: Deployment): string {
  const percent = canaryPercent(d.strategy);
  if (percent !== null && d.candidate !== undefined) {
    return `v${d.candidate} takes ${percent} % of ${d.handle}; v${d.stable} keeps ${100 - percent} %`;
  }
  if (isBandit(d.strategy) && (d.arms ?? []).length > 1) {
    return `${strategyLabel(d.strategy)} shares ${d.handle} between ${(d.arms ?? []).map(v => `v${v}`).join(', ')}`;
  }
  return `v${d.stable} takes all of ${d.handle}${d.standby !== undefined ? `; v${d.standby} stays on standby` : ''}`;
}

/**
 * How a change that did not succeed ended, for the follow view and the notification (the
 * outcome first: a toast shows only the start of a long message).
 *
 * `status` is the HTTP status of the change's answer: 504 means the store took it and went
 * away before answering, and 0 that the Jupyter server itself stopped answering; the change
 * may then have been saved (whole: the store saves before it switches), so the words do not
 * claim that nothing changed. `kept` is what the store serves now, if it answers.
 */
export function describeFailure(handle: string, status: number, why: string, kept: Deployment | null): string {
  const serves = kept ? ` ${describeSplit(kept)}${status === 504 || status === 0 ? ' now' : ', as before'}.` : '';
  if (status === 504 || status === 0) {
    return `the change to ${handle} may or may not have been made: ${why}.${serves}`;
  }
  return `nothing was switched on ${handle}: ${why}.${serves}`;
}

/** What a push will change, in words, before the user confirms it (the store's own rules:
 * `transitions.rs`). */
export function describePush(current: Deployment | null, choice: PushChoice): string {
  const v = choice.version;
  const handle = choice.handle;
  if (v === null) {
    return 'Choose a model version.';
  }
  if (current === null) {
    const label = choice.strategy === 'bandit' ? `, as the bandit's first arm` : '';
    return `v${v} starts serving ${handle}: it takes all of its traffic${label}. Nothing serves ${handle} yet.`;
  }
  switch (choice.strategy) {
    case 'canary': {
      const percent = Number(choice.percent.trim());
      const shown = Number.isInteger(percent) && percent >= 1 && percent <= 99 ? percent : '?';
      const rest = typeof shown === 'number' ? 100 - shown : '?';
      if (v === current.stable) {
        return `v${v} is already the stable version of ${handle}: a canary needs another version.`;
      }
      const replaced = current.candidate !== undefined && current.candidate !== v ? ` v${current.candidate}, the canary now, stops.` : '';
      return `v${v} takes ${shown} % of ${handle}; v${current.stable} keeps ${rest} %.${replaced}`;
    }
    case 'bandit': {
      const arms = new Set<number>(isBandit(current.strategy) && (current.arms ?? []).length > 0 ? current.arms : [current.stable]);
      arms.add(v);
      const policy = choice.policy === 'thompson' ? 'Thompson sampling' : `ε-greedy (ε = ${choice.epsilon.trim() || '?'})`;
      return `${[...arms].map(a => `v${a}`).join(', ')} compete for ${handle} by ${policy}; traffic follows their rewards.`;
    }
    default: {
      if (v === current.stable) {
        return `v${v} keeps all of ${handle}${current.candidate !== undefined ? `; the canary v${current.candidate} stops` : ''}.`;
      }
      return `v${v} takes all of ${handle} at once; v${current.stable} stays on standby for an instant roll back.`;
    }
  }
}

/** What "Promote" will do, or why it cannot. */
export function describePromote(d: Deployment, bestArm: number | null): { ok: boolean; text: string } {
  if (d.candidate !== undefined) {
    return { ok: true, text: `v${d.candidate} takes all of ${d.handle}; v${d.stable} stops.` };
  }
  if (d.strategy === 'blue-green' && d.standby !== undefined) {
    return { ok: true, text: `v${d.stable} stays; the standby v${d.standby} stops (no instant roll back after this).` };
  }
  if (isBandit(d.strategy) && (d.arms ?? []).length > 1) {
    if (bestArm === null) {
      return { ok: false, text: `no arm of ${d.handle} has a reward yet: send feedback first.` };
    }
    return { ok: true, text: `v${bestArm}, the arm with the best mean reward, takes all of ${d.handle}; the other arms stop.` };
  }
  return { ok: false, text: `${d.handle} has nothing to promote (no canary, standby or competing arms).` };
}

/** What "Roll back" will do, or why it cannot. */
export function describeRollback(d: Deployment): { ok: boolean; text: string } {
  if (d.candidate !== undefined) {
    return { ok: true, text: `the canary v${d.candidate} stops; v${d.stable} takes all of ${d.handle} again.` };
  }
  if (d.standby !== undefined) {
    return { ok: true, text: `v${d.standby} takes all of ${d.handle} again at once; v${d.stable} goes on standby.` };
  }
  const arms = d.arms ?? [];
  if (arms.length > 1) {
    const newest = Math.max(...arms.filter(v => v !== d.stable));
    return { ok: true, text: `the newest arm v${newest} stops; ${arms.filter(v => v !== newest).map(v => `v${v}`).join(', ')} go on.` };
  }
  return { ok: false, text: `${d.handle} has nothing to roll back to.` };
}

/** A canary's new percent: a problem, or what it will do. */
export function describePercent(d: Deployment, typed: string): { ok: boolean; text: string } {
  const percent = Number(typed.trim());
  if (d.candidate === undefined || canaryPercent(d.strategy) === null) {
    return { ok: false, text: `${d.handle} has no canary whose percent could change.` };
  }
  if (typed.trim() === '' || !Number.isInteger(percent) || percent < 1 || percent > 99) {
    return { ok: false, text: `Percent: '${typed}' is not a whole number from 1 to 99.` };
  }
  return { ok: true, text: `v${d.candidate} takes ${percent} % of ${d.handle} (now ${canaryPercent(d.strategy)} %); v${d.stable} keeps ${100 - percent} %.` };
}

/** The mean reward of the arm with the best one (what a bandit's promote keeps). */
export function bestArm(summary: VersionSummary[]): number | null {
  const rewarded = summary.filter(s => s.rewards > 0 && s.meanReward !== null);
  if (rewarded.length === 0) {
    return null;
  }
  return rewarded.reduce((best, s) => ((s.meanReward ?? 0) > (best.meanReward ?? 0) ? s : best)).version;
}

/** One version's traffic over the window. */
export interface VersionSummary {
  version: number;
  requests: number;
  /** Of all requests in the window, in percent. */
  share: number;
  errors: number;
  /** The highest p95 of its buckets (a bound: buckets' histograms are not kept together). */
  p95: number;
  meanReward: number | null;
  rewards: number;
}

export function summarize(buckets: TrafficBucket[]): VersionSummary[] {
  const total = buckets.reduce((sum, b) => sum + b.requests, 0);
  const byVersion = new Map<number, VersionSummary & { rewardSum: number }>();
  for (const b of buckets) {
    const s = byVersion.get(b.version) ?? { version: b.version, requests: 0, share: 0, errors: 0, p95: 0, meanReward: null, rewards: 0, rewardSum: 0 };
    s.requests += b.requests;
    s.errors += b.errors;
    s.p95 = Math.max(s.p95, b.requests > 0 ? b.p95_ms : 0);
    if (b.rewards > 0 && b.mean_reward !== undefined) {
      s.rewardSum += b.mean_reward * b.rewards;
      s.rewards += b.rewards;
    }
    byVersion.set(b.version, s);
  }
  return [...byVersion.values()]
    .sort((a, b) => a.version - b.version)
    .map(({ rewardSum, ...s }) => ({ ...s, share: total > 0 ? (100 * s.requests) / total : 0, meanReward: s.rewards > 0 ? rewardSum / s.rewards : null }));
}

/** The chart's data: one slot per bucket from `since` to `now` (empty ones at zero, so the
 * stack reads as time passing), and per version its requests, errors and p95 per slot. */
export interface StackedSeries {
  times: number[];
  versions: number[];
  requests: Map<number, number[]>;
  errors: Map<number, number[]>;
  p95: Map<number, (number | null)[]>;
}

export function stackedSeries(traffic: Traffic, since: number, now: number): StackedSeries {
  const width = traffic.bucket_ms;
  const first = Math.floor(since / width) * width;
  const times: number[] = [];
  for (let t = first; t <= now; t += width) {
    times.push(t);
  }
  const versions = [...new Set(traffic.buckets.map(b => b.version))].sort((a, b) => a - b);
  const requests = new Map<number, number[]>();
  const errors = new Map<number, number[]>();
  const p95 = new Map<number, (number | null)[]>();
  for (const v of versions) {
    requests.set(v, times.map(() => 0));
    errors.set(v, times.map(() => 0));
    p95.set(v, times.map(() => null));
  }
  for (const b of traffic.buckets) {
    const slot = Math.round((b.start - first) / width);
    if (slot < 0 || slot >= times.length) {
      continue;
    }
    requests.get(b.version)![slot] += b.requests;
    errors.get(b.version)![slot] += b.errors;
    if (b.requests > 0) {
      p95.get(b.version)![slot] = b.p95_ms;
    }
  }
  return { times, versions, requests, errors, p95 };
}

/** The windows the chart offers, and the bucket width each reads (the store keeps 10 s for
 * the last hour, minutes for all time). */
export const WINDOWS: { label: string; ms: number }[] = [
  { label: 'last 5 minutes', ms: 5 * 60_000 },
  { label: 'last 15 minutes', ms: 15 * 60_000 },
  { label: 'last hour', ms: 60 * 60_000 },
  { label: 'last 6 hours', ms: 6 * 60 * 60_000 },
  { label: 'last 24 hours', ms: 24 * 60 * 60_000 }
];

export function bucketFor(windowMs: number): number {
  return windowMs <= 60 * 60_000 ? 10_000 : 60_000;
}

/** An OIP v2 model's metadata, as `GET /v2/models/{handle}` answers it. */
export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform?: string;
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs?: { name: string; datatype: string; shape: number[] }[];
}

/** A request the model takes, from its metadata: each input with its name, datatype and
 * shape (a variable dimension, -1, as 1), filled with zeros (`false`, `""`). */
export function exampleRequest(metadata: ModelMetadata): { inputs: { name: string; shape: number[]; datatype: string; data: unknown[] }[] } {
  return {
    inputs: metadata.inputs.map(input => {
      const shape = input.shape.map(d => (d < 0 ? 1 : d));
      const count = shape.reduce((n, d) => n * d, 1);
      const zero = input.datatype === 'BOOL' ? false : input.datatype === 'BYTES' ? '' : 0;
      return { name: input.name, shape, datatype: input.datatype, data: new Array(count).fill(zero) };
    })
  };
}

/** The time of an event or step, for people: `14:03:07`. */
export function clock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map(n => String(n).padStart(2, '0')).join(':');
}

/** Training parameters as typed (`epochs=150, lr=0.1`, or one a line) → `{epochs: "150"}`;
 * a problem names the entry. */
export function parseParams(text: string): { params: Record<string, string> } | { problem: string } {
  const params: Record<string, string> = {};
  for (const entry of text.split(/[\n,]/).map(e => e.trim()).filter(e => e !== '')) {
    const at = entry.indexOf('=');
    if (at <= 0) {
      return { problem: `'${entry}' is not NAME=VALUE` };
    }
    const name = entry.slice(0, at).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      return { problem: `'${name}' is not a parameter name` };
    }
    params[name] = entry.slice(at + 1).trim();
  }
  return { params };
}

/** Since when the deployment has been the bandit it is now (the oldest of its latest run of
 * bandit changes), so an arm's pulls count only the requests the bandit routed; `null` when
 * it is not a bandit. */
export function banditSince(d: Deployment): number | null {
  if (!isBandit(d.strategy)) {
    return null;
  }
  let since: number | null = null;
  for (const event of d.history.slice().reverse()) {
    if (event.action !== 'deploy' || !event.detail.startsWith('bandit:')) {
      break;
    }
    since = event.at;
  }
  return since ?? d.updated_at;
}

/** The buckets that end after `since` (a bucket the change fell in is kept whole). */
export function bucketsSince(traffic: Traffic, since: number): TrafficBucket[] {
  return traffic.buckets.filter(b => b.start + traffic.bucket_ms > since);
}
