/**
 * Closed minutes. Minute M is closed when the event-time watermark reaches M + 1:00 + allowed lateness
 * (docs/contracts.md "Rules"); the evaluator takes them in order, each once.
 */
import { MINUTE } from '../lib/time.ts';

/** The latest closed minute at `watermark` (start, epoch ms). */
export function lastClosedMinute(watermark: number, allowedLatenessMs: number): number {
  return Math.floor((watermark - allowedLatenessMs - MINUTE) / MINUTE) * MINUTE;
}

/**
 * The next minute to evaluate. A fresh start (no progress) begins at the latest closed minute — not days of
 * backfilled history; otherwise the minute after the last evaluated one, skipping ahead when more than
 * `maxCatchUpMinutes` behind (the minute tier expires anyway). Null when nothing is closed yet.
 */
export function nextMinute(progress: number | null, lastClosed: number, maxCatchUpMinutes: number): { minute: number; skipped: number } | null {
  if (progress === null) return { minute: lastClosed, skipped: 0 };
  const next = progress + MINUTE;
  if (next > lastClosed) return null;
  const earliest = lastClosed - (maxCatchUpMinutes - 1) * MINUTE;
  if (next < earliest) return { minute: earliest, skipped: (earliest - next) / MINUTE };
  return { minute: next, skipped: 0 };
}

/** A minute whose end is more than `boundMs` behind the wall clock is history: stored, never sent to Slack. */
export function isReplay(minute: number, now: number, boundMs: number): boolean {
  return now - (minute + MINUTE) > boundMs;
}

/**
 * How long the evaluator waits before reading the watermark again after finding nothing to evaluate: `pollMs`
 * while the next minute's close is further than two polls away in event time, then `fineMs`, so a close is seen
 * within `fineMs` of the watermark reaching it instead of up to `pollMs` later (the watermark follows the wall
 * clock while rows or heartbeats flow). A few dozen extra watermark reads per minute.
 */
export function nextPollMs(watermark: number | null, progress: number | null, allowedLatenessMs: number, pollMs: number, fineMs: number): number {
  if (watermark === null || progress === null) return pollMs;
  const closesAt = progress + 2 * MINUTE + allowedLatenessMs; // minute progress + 1:00 closes here
  return closesAt - watermark > 2 * pollMs ? pollMs : Math.min(fineMs, pollMs);
}
