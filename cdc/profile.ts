/**
 * Opt-in CPU profile of the cdc process (RISKMON_CDC_CPU_PROFILE=<file.cpuprofile>): started with the services,
 * written when the pipeline stops. For finding the per-change cost on a real backlog (bench/cdc.ts); `node
 * --cpu-prof` is not enough because the profile is only written at a clean process exit.
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
