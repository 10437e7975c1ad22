/** `p`, or a rejection with `error()` once `ms` pass first (the timer is cleared either way; `p` is not cancelled). */
export function withTimeout<T>(p: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(error()), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
