/**
 * Injected anomalies. A scenario changes one merchant from a start time to the end of the run:
 * - cancel_surge  multiplies the merchant's cancel rate (default ×6),
 * - volume_drop   keeps that share of its transactions (default 0.3),
 * - full_stop     stops it entirely,
 * - bust_out      stops its sales and turns each of its usual transactions into `param` cancels (default 10) of its
 *                 earlier payments — payments already paid out, so its receivable grows (payouts.ts),
 * - midnight      injects nothing: it documents that the run crosses local midnight (a backfill always does).
 * Written `name:merchant:start[:param]`: merchant is an id or an alias from pickMerchants (normal, hot, big,
 * big2); start is ISO-8601 with a zone (2026-11-21T08:00:00Z, …+09:00), `now`, or relative to now (+5m, -2h, +30s;
 * for a backfill "now" is its --end).
 */
import { UsageError } from '../../lib/args.ts';

export const SCENARIO_NAMES = ['cancel_surge', 'volume_drop', 'full_stop', 'bust_out', 'midnight'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];
export const MERCHANT_ALIASES = ['normal', 'hot', 'big', 'big2'] as const;
export type MerchantAlias = (typeof MERCHANT_ALIASES)[number];

export interface Scenario {
  name: ScenarioName;
  /** 0 for midnight. */
  merchant: number;
  startMs: number;
  /** cancel_surge: rate multiplier; volume_drop/full_stop: share of volume kept; bust_out: cancels per transaction. */
  factor: number;
}

const DEFAULT_FACTOR: Record<ScenarioName, number> = { cancel_surge: 6, volume_drop: 0.3, full_stop: 0, bust_out: 10, midnight: 1 };
export const SCENARIO_FORM = 'name:merchant:start[:param] with name one of cancel_surge, volume_drop, full_stop, bust_out, midnight; merchant an id or normal|hot|big|big2; start ISO-8601 with zone, now, or ±N(s|m|h)';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})/;
const REL = /^(now)|^([+-])(\d+(?:\.\d+)?)(s|m|h)/;

export interface ScenarioContext {
  /** "now" for relative starts (a backfill passes its end). */
  now: number;
  merchants: number;
  resolveAlias: (alias: MerchantAlias) => number;
}

export function parseScenario(text: string, ctx: ScenarioContext): Scenario {
  const bad = (why: string) => new UsageError(`--scenario "${text}": ${why}; expected ${SCENARIO_FORM}`);
  const i = text.indexOf(':');
  const name = (i < 0 ? text : text.slice(0, i)) as ScenarioName;
  if (!SCENARIO_NAMES.includes(name)) throw bad(`unknown scenario "${name}"`);
  if (name === 'midnight') return { name, merchant: 0, startMs: ctx.now, factor: 1 };
  if (i < 0) throw bad('missing merchant and start');
  const rest = text.slice(i + 1);
  const j = rest.indexOf(':');
  if (j < 0) throw bad('missing start');
  const merchantText = rest.slice(0, j);
  let merchant: number;
  if ((MERCHANT_ALIASES as readonly string[]).includes(merchantText)) merchant = ctx.resolveAlias(merchantText as MerchantAlias);
  else if (/^\d+$/.test(merchantText)) merchant = Number(merchantText);
  else throw bad(`merchant "${merchantText}" is neither an id nor one of ${MERCHANT_ALIASES.join(', ')}`);
  if (merchant < 1 || merchant > ctx.merchants) throw bad(`merchant ${merchant} is outside 1..${ctx.merchants}`);

  const timeText = rest.slice(j + 1);
  let startMs: number;
  let tail: string;
  const iso = ISO.exec(timeText);
  const rel = REL.exec(timeText);
  if (iso) {
    startMs = Date.parse(iso[0]);
    if (Number.isNaN(startMs)) throw bad(`start "${iso[0]}" is not a valid time`);
    tail = timeText.slice(iso[0].length);
  } else if (rel) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000 }[rel[4] as 's' | 'm' | 'h'];
    startMs = rel[1] ? ctx.now : ctx.now + (rel[2] === '-' ? -1 : 1) * Number(rel[3]) * unit;
    tail = timeText.slice(rel[0].length);
  } else {
    throw bad(`start "${timeText}" is not ISO-8601 with a zone (Z or ±hh:mm), now, or ±N(s|m|h)`);
  }

  let factor = DEFAULT_FACTOR[name];
  if (tail !== '') {
    if (!tail.startsWith(':') || !/^\d+(\.\d+)?$/.test(tail.slice(1))) throw bad(`"${tail}" after the start is not ":<number>"`);
    if (name === 'full_stop') throw bad('full_stop takes no parameter');
    factor = Number(tail.slice(1));
    if (name === 'cancel_surge' && !(factor >= 1 && factor <= 19)) throw bad('the cancel_surge multiplier must be from 1 to 19');
    if (name === 'volume_drop' && !(factor >= 0 && factor <= 1)) throw bad('the volume_drop share must be from 0 to 1');
    if (name === 'bust_out' && !(Number.isInteger(factor) && factor >= 1 && factor <= 100)) throw bad('the bust_out cancels per transaction must be a whole number from 1 to 100');
  }
  return { name, merchant, startMs, factor };
}

/** The scenarios of a run, indexed by merchant for the per-transaction lookups. */
export class ScenarioSet {
  readonly list: readonly Scenario[];
  readonly #cancel = new Map<number, Scenario[]>();
  readonly #volume = new Map<number, Scenario[]>();
  readonly #bust = new Map<number, Scenario[]>();

  constructor(list: readonly Scenario[]) {
    this.list = list;
    for (const s of list) {
      const map = s.name === 'cancel_surge' ? this.#cancel : s.name === 'bust_out' ? this.#bust : s.name === 'midnight' ? null : this.#volume;
      if (!map) continue;
      const arr = map.get(s.merchant) ?? [];
      arr.push(s);
      map.set(s.merchant, arr);
    }
  }

  /** Multiplier of merchant m's cancel rate at time t. */
  cancelFactor(m: number, t: number): number {
    const arr = this.#cancel.get(m);
    if (!arr) return 1;
    let f = 1;
    for (const s of arr) if (t >= s.startMs) f *= s.factor;
    return f;
  }

  /** Share of merchant m's transactions kept at time t (1 = unchanged, 0 = stopped). */
  volumeFactor(m: number, t: number): number {
    const arr = this.#volume.get(m);
    if (!arr) return 1;
    let f = 1;
    for (const s of arr) if (t >= s.startMs) f *= s.factor;
    return f;
  }

  /** bust_out: how many cancels of earlier payments each of merchant m's transactions at time t becomes (0: none). */
  bustOut(m: number, t: number): number {
    const arr = this.#bust.get(m);
    if (!arr) return 0;
    let k = 0;
    for (const s of arr) if (t >= s.startMs) k = Math.max(k, s.factor);
    return k;
  }

  /** Merchants with a bust_out scenario. */
  get bustOutMerchants(): number[] { return [...this.#bust.keys()]; }

  get empty(): boolean { return this.#cancel.size === 0 && this.#volume.size === 0 && this.#bust.size === 0; }
}
