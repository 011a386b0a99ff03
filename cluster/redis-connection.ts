import type { Redis } from 'ioredis';

/** QUIT when Redis answers (within a second), else drop the connection: never waits for a Redis that is away. */
export async function endConnection(c: Redis): Promise<void> {
  if (c.status === 'end') return;
  if (c.status === 'ready') {
    const quit = c.quit().then(() => true, () => false);
    const late = new Promise<boolean>((r) => setTimeout(() => r(false), 1000).unref());
    if (await Promise.race([quit, late])) return;
  }
  c.disconnect();
}
