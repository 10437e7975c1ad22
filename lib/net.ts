import net from 'node:net';

/**
 * A TCP port free on 127.0.0.1 right now: `preferred` when it is free, else one the kernel picks (bind to port 0).
 * Another process may take it before the caller binds; fine for tests, benchmarks and the demo.
 */
export async function freePort(preferred = 0): Promise<number> {
  const tryPort = (p: number) => new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(p, '127.0.0.1', () => { const port = (s.address() as net.AddressInfo).port; s.close(() => resolve(port)); });
  });
  if (preferred) { try { return await tryPort(preferred); } catch { /* taken: any free one */ } }
  return tryPort(0);
}
