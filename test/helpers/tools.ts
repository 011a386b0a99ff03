import type { Test } from 'tap';

/**
 * A subtest that needs a program (openssl, mosquitto, …): `missing` is false when
 * it is here, or the reason it is not (naming the program and its package). Then
 * the subtest is skipped with that reason locally, and fails with it under CI
 * (process.env.CI): there a missing tool is a broken image, not a pass.
 */
export function testNeeding(t: Test, name: string, missing: string | false, fn: (t: Test) => Promise<void>): void {
  if (!missing) void t.test(name, fn);
  else if (process.env.CI) void t.test(name, async (t) => { t.fail(missing); });
  else void t.test(name, { skip: missing }, fn);
}
