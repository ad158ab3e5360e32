/**
 * Refused attempts are not events: with NATS every node publishes its own on a core subject and the
 * detection node hears them all. Two apps on one NATS (each with a database of its own, which the
 * refusal path does not need): the one that serves the guesses runs no detector, the other raises the
 * wave.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';
import { deleteStream, testNatsUrl, uniqueStream } from '../support/nats.js';

const backend = backends.find((b) => b.name === 'postgres') ?? backends[0];

describe.runIf(testNatsUrl && backend)('refused attempts across nodes over NATS', () => {
  const url = testNatsUrl as string;
  const names = uniqueStream('refusals');
  let serving: TestApp;
  let detecting: TestApp;

  beforeAll(async () => {
    const env = { NATS_URL: url, ...names };
    serving = await startTestApp(backend as NonNullable<typeof backend>, {
      env: { ...env, DETECTION: 'off' },
    });
    detecting = await startTestApp(backend as NonNullable<typeof backend>, { env });
  });
  afterAll(async () => {
    await serving?.close();
    await detecting?.close();
    await deleteStream(url, names.NATS_STREAM);
  });

  it('a wave served by a node without detection is raised by the detection node', async () => {
    expect(serving.app.detection).toBeNull();
    for (let i = 0; i < 20; i++) {
      const res = await serving.call('POST', '/v1/validations', {
        key: serving.keys.checkout,
        body: checkoutBody(unique('GUESS'), {
          customer: { id: unique('cus_') },
          context: { ip: `2001:db8:99:${(i + 1).toString(16)}::7` },
        }),
      });
      expect(res.json().valid).toBe(false);
    }
    let found: { scope: { type: string; id: string } }[] = [];
    for (let i = 0; i < 100 && found.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      await detecting.app.detection?.settled();
      const res = await detecting.call('GET', '/v1/alerts?kind=refusal_wave');
      found = (res.json().data as typeof found).filter((a) => a.scope.id === '2001:db8:99::/48');
    }
    expect(found).toHaveLength(1);
    expect(found[0]?.scope.type).toBe('address_block');
  });
});
