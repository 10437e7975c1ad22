/**
 * The alert lifecycle as a pure step function over one closed minute. (rule, merchant) identifies an alert; at most
 * one is firing at a time. A firing alert resolves after `resolveAfterMinutes` consecutive closed minutes with the
 * condition false, and is re-notified every `renotifyMinutes` (event time) while firing. After it resolves, a new
 * breach opens a new alert. A null condition (the data cannot tell) changes nothing but the re-notification clock.
 */
import type { AlertTransition } from '../lib/alert-message.ts';

export type TransitionKind = AlertTransition;

export interface AlertLife {
  /** Minute (epoch ms) that fired the alert. */
  firedAt: number;
  /** Minute of the latest fired/renotified transition. */
  lastNotifiedAt: number;
  /** Consecutive closed minutes with the condition false. */
  clearMinutes: number;
}

export interface LifecycleConfig { resolveAfterMinutes: number; renotifyMinutes: number }

export interface StepResult {
  /** The alert after this minute; null when none is firing (never was, or resolved now). */
  next: AlertLife | null;
  transition: TransitionKind | null;
  /** Whether the stored alert row must change (a transition, or clearMinutes moved). */
  changed: boolean;
}

export function stepAlert(current: AlertLife | null, condition: boolean | null, minute: number, cfg: LifecycleConfig): StepResult {
  if (!current) {
    if (condition === true) return { next: { firedAt: minute, lastNotifiedAt: minute, clearMinutes: 0 }, transition: 'fired', changed: true };
    return { next: null, transition: null, changed: false };
  }
  let clearMinutes = current.clearMinutes;
  if (condition === true) clearMinutes = 0;
  else if (condition === false) clearMinutes += 1;
  if (clearMinutes >= cfg.resolveAfterMinutes) return { next: null, transition: 'resolved', changed: true };
  if (minute - current.lastNotifiedAt >= cfg.renotifyMinutes * 60_000) {
    return { next: { ...current, clearMinutes, lastNotifiedAt: minute }, transition: 'renotified', changed: true };
  }
  return { next: { ...current, clearMinutes }, transition: null, changed: clearMinutes !== current.clearMinutes };
}
