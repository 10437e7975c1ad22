/**
 * Opt-in profiles of the cdc process, started with the services and written when the pipeline stops — for finding
 * the per-change cost on a real backlog (bench/cdc.ts); `node --cpu-prof` is not enough because the profile is only
 * written at a clean process exit:
 * - RISKMON_CDC_CPU_PROFILE=<file.cpuprofile>: V8's CPU profile;
 * - RISKMON_CDC_HEAP_PROFILE=<file.heapprofile>: V8's sampling heap profile of everything allocated, including what
 *   the young and old generation collectors freed (where the garbage per change comes from).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

export function startCpuProfile(file: string | undefined): () => void {
  if (!file) return () => {};
  const session = new Session();
  session.connect();
  session.post('Profiler.enable', () => session.post('Profiler.start'));
  return () => session.post('Profiler.stop', (err, res) => {
    if (!err) writeFileSync(file, JSON.stringify(res.profile));
    session.disconnect();
  });
}

export function startHeapProfile(file: string | undefined): () => void {
  if (!file) return () => {};
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable', () => session.post('HeapProfiler.startSampling', {
    samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true,
  } as never));
  return () => session.post('HeapProfiler.stopSampling', (err, res) => {
    if (!err) writeFileSync(file, JSON.stringify(res.profile));
    session.disconnect();
  });
}
