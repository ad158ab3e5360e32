import { describe, expect, it } from 'vitest';
import { DependencyHealth } from '../../src/metrics/dependency-health.js';
import { TestClock } from '../support/app.js';

function tracker(repeatMs = 30_000) {
  const clock = new TestClock(new Date('2026-06-01T12:00:00Z'));
  const lines: string[] = [];
  const health = new DependencyHealth({
    clock,
    repeatMs,
    logger: {
      error: (fields, msg) => lines.push(`error ${msg} ${JSON.stringify(fields)}`),
      info: (fields, msg) => lines.push(`info ${msg} ${JSON.stringify(fields)}`),
    },
  });
  return { clock, lines, health };
}

describe('dependency health', () => {
  it('logs an outage when it begins, every repeat interval while it lasts, and when it ends — not per failure', () => {
    const { clock, lines, health } = tracker(30_000);
    health.register('redis');
    for (let i = 0; i < 1_000; i++) {
      health.down('redis', new Error('connect ECONNREFUSED 127.0.0.1:6379'));
      clock.advance(25);
    }
    // 25 s of failures: one line.
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error redis is down .*ECONNREFUSED/);
    clock.advance(5_000);
    health.down('redis', new Error('connect ECONNREFUSED 127.0.0.1:6379'));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^error redis is still down .*"downForMs":30000,"failures":1001/);
    for (let i = 0; i < 100; i++) health.up('redis');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(/^info redis is back up .*"downForMs":30000/);
  });

  it('reports each dependency up or down with the time it changed, for the gauge', () => {
    const { clock, health } = tracker();
    health.register('database');
    health.register('redis', false);
    clock.advance(1_000);
    health.down('database', new Error('Connection terminated unexpectedly'));
    expect(health.state()).toEqual([
      { dependency: 'database', up: false, since: new Date('2026-06-01T12:00:01Z'), failures: 1 },
      { dependency: 'redis', up: false, since: new Date('2026-06-01T12:00:00Z'), failures: 0 },
    ]);
    health.up('redis');
    expect(health.isUp('redis')).toBe(true);
    expect(health.isUp('database')).toBe(false);
  });
});
