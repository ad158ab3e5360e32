import { describe, expect, it } from 'vitest';
import { retryOnConflict } from '../../src/store/retry.js';

const pgError = (code: string) => Object.assign(new Error(code), { code });

describe('retryOnConflict', () => {
  it('runs the statement again after a deadlock or a serialization failure', async () => {
    const failures = [pgError('40P01'), pgError('40001')];
    let calls = 0;
    const result = await retryOnConflict(async () => {
      calls += 1;
      const next = failures.shift();
      if (next) throw next;
      return 'done';
    });
    expect(result).toBe('done');
    expect(calls).toBe(3);
  });

  it('passes any other error straight through, without retrying', async () => {
    let calls = 0;
    await expect(
      retryOnConflict(async () => {
        calls += 1;
        throw pgError('23505');
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(calls).toBe(1);
  });

  it('gives up after the given number of attempts and surfaces the conflict', async () => {
    let calls = 0;
    await expect(
      retryOnConflict(async () => {
        calls += 1;
        throw pgError('40P01');
      }, 3),
    ).rejects.toMatchObject({ code: '40P01' });
    expect(calls).toBe(3);
  });
});
