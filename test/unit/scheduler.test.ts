import { describe, expect, it } from 'vitest';
import { increment } from '../../dev/simulation/counter';
import { Prng } from '../../dev/simulation/prng';
import { type Faults, type Outcome, Scheduler } from '../../dev/simulation/scheduler';
import { SimTableService } from '../../dev/simulation/simTable';
import { ANY_ETAG, StorageError, type TablePort } from '../../shared/storage/tablePort';

interface Run {
  trace: readonly string[];
  outcomes: Outcome[];
  state: unknown;
}

async function simulate(seed: number, faults: Faults = {}, tasks = 4): Promise<Run> {
  const service = new SimTableService();
  const scheduler = new Scheduler({ seed, faults });
  const table = scheduler.tables(service)('counters');
  const outcomes = await scheduler.run(Array.from({ length: tasks }, () => () => increment(table)));
  return { trace: scheduler.trace, outcomes, state: service.dump('counters') };
}

/** One task's lone call under a fault that always strikes. */
async function underFault(
  faults: Faults,
  call: (table: TablePort) => Promise<unknown>,
  setUp?: (service: SimTableService) => void,
) {
  const service = new SimTableService();
  setUp?.(service);
  const scheduler = new Scheduler({ seed: 1, faults });
  const table = scheduler.tables(service)('t');
  let after = false;
  const [outcome] = await scheduler.run([
    async () => {
      const value = await call(table);
      after = true;
      return value;
    },
  ]);
  return { outcome, after, state: service.dump('t'), trace: scheduler.trace };
}

describe('the PRNG', () => {
  it('gives the same numbers for the same seed, other numbers for another', () => {
    const draw = (seed: number) => {
      const prng = new Prng(seed);
      return Array.from({ length: 8 }, () => prng.uint32());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    expect(draw(1)).not.toEqual(draw(2 ** 32 + 1));
  });

  it('draws in range, and roughly evenly', () => {
    const prng = new Prng(3);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) {
      const x = prng.random();
      expect(x >= 0 && x < 1).toBe(true);
      counts[prng.int(4)]! += 1;
    }
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
    expect(['a', 'b', 'c']).toContain(prng.pick(['a', 'b', 'c']));
  });
});

describe('the scheduler', () => {
  it('replays a seed exactly: same trace, same outcomes, same state', async () => {
    const faults = { fail: 0.05, lost: 0.05, duplicate: 0.05, crashBefore: 0.02, crashAfter: 0.02 };
    for (const seed of [1, 2, 3, 99, 123_456]) {
      const first = await simulate(seed, faults);
      const second = await simulate(seed, faults);
      expect(second.trace).toEqual(first.trace);
      expect(second.outcomes).toEqual(first.outcomes);
      expect(second.state).toEqual(first.state);
      expect(first.trace.length).toBeGreaterThan(0);
    }
  });

  it('interleaves differently for different seeds', async () => {
    const traces = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) traces.add((await simulate(seed)).trace.join('\n'));
    expect(traces.size).toBeGreaterThan(15);
  });

  it('writes lines that say which task did what, to which keys, and what it heard', async () => {
    const { trace } = await simulate(5, {}, 2);
    expect(trace[0]).toMatch(/^1 t[01] counters\.get c\/counter -> none$/);
    expect(trace.some((line) => /^\d+ t[01] counters\.insert c\/counter -> ok$/.test(line))).toBe(true);
  });

  it('keeps an invariant in every schedule without faults: n increments, n on the counter', async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const { outcomes, state } = await simulate(seed);
      expect(outcomes.map((outcome) => (outcome.kind === 'ok' ? outcome.value : outcome.kind)).sort()).toEqual([
        1, 2, 3, 4,
      ]);
      expect(state).toMatchObject([{ entity: { n: 4 } }]);
    }
  });

  it('applies a call only when its step is picked, not when it is made', async () => {
    const service = new SimTableService();
    const scheduler = new Scheduler({ seed: 1 });
    const table = scheduler.tables(service)('t');
    const seen: number[] = [];
    await scheduler.run([
      async () => {
        const write = table.write({ op: 'insert', entity: { partitionKey: 'p', rowKey: 'r' } });
        seen.push(service.dump('t').length);
        await write;
        seen.push(service.dump('t').length);
      },
    ]);
    expect(seen).toEqual([0, 1]);
  });

  it('explores races: two check-then-insert tasks sometimes both find nothing, and one gets 409', async () => {
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 30; seed++) {
      const service = new SimTableService();
      const scheduler = new Scheduler({ seed });
      const table = scheduler.tables(service)('t');
      const claim = async () => {
        if (await table.get('p', 'lock')) return 'taken';
        await table.write({ op: 'insert', entity: { partitionKey: 'p', rowKey: 'lock' } });
        return 'mine';
      };
      const outcomes = await scheduler.run([claim, claim]);
      kinds.add(
        outcomes
          .map((outcome) =>
            outcome.kind === 'ok'
              ? outcome.value
              : (outcome.kind === 'error' && (outcome.error as StorageError).status) || outcome.kind,
          )
          .sort()
          .join(','),
      );
    }
    expect(kinds).toEqual(new Set(['mine,taken', '409,mine']));
  });

  it('waits for the deepest await chain before picking: a call made 300 awaits deep competes from the first step', async () => {
    const deep = async (n: number): Promise<number> => (n === 0 ? 0 : 1 + (await deep(n - 1)));
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const scheduler = new Scheduler({ seed });
      const table = scheduler.tables(new SimTableService())('t');
      await scheduler.run<unknown>([
        async () => {
          await deep(300);
          await table.get('deep', 'r');
        },
        () => table.get('shallow', 'r'),
      ]);
      firsts.add(scheduler.trace[0]?.split(' ')[3] ?? '');
    }
    expect(firsts).toEqual(new Set(['deep/r', 'shallow/r']));
  });

  it('still applies a call nobody awaits before the run ends', async () => {
    const service = new SimTableService();
    const scheduler = new Scheduler({ seed: 2 });
    const table = scheduler.tables(service)('t');
    const [outcome] = await scheduler.run([
      async () => {
        void table.write({ op: 'upsert', entity: { partitionKey: 'p', rowKey: 'r' } });
        return 'returned';
      },
    ]);
    expect(outcome).toEqual({ kind: 'ok', value: 'returned' });
    expect(service.dump('t')).toHaveLength(1);
  });

  it('reports each outcome: a value, an error, or a crash', async () => {
    const scheduler = new Scheduler({ seed: 1 });
    const table = scheduler.tables(new SimTableService())('t');
    const outcomes = await scheduler.run<unknown>([
      async () => 'value',
      () => table.write({ op: 'delete', partitionKey: 'p', rowKey: 'missing', etag: ANY_ETAG }),
    ]);
    expect(outcomes[0]).toEqual({ kind: 'ok', value: 'value' });
    expect(outcomes[1]).toMatchObject({ kind: 'error', error: { status: 404 } });
    const crashing = new Scheduler({ seed: 1, faults: { crashBefore: 1 } });
    const crashTable = crashing.tables(new SimTableService())('t');
    expect(await crashing.run([() => crashTable.get('p', 'r')])).toEqual([{ kind: 'crashed' }]);
  });

  describe('faults', () => {
    const insert = (table: TablePort) =>
      table.write({ op: 'insert', entity: { partitionKey: 'p', rowKey: 'r', v: 1 } });

    it('fail: not applied, the caller gets 503', async () => {
      const { outcome, state, trace } = await underFault({ fail: 1 }, insert);
      expect(outcome).toMatchObject({ kind: 'error', error: { status: 503 } });
      expect(state).toEqual([]);
      expect(trace).toEqual(['1 t0 t.insert p/r fail -> 503']);
    });

    it('lost: applied, the caller gets a StorageError with no status, as on a timeout', async () => {
      const { outcome, state } = await underFault({ lost: 1 }, insert);
      expect(outcome?.kind).toBe('error');
      const error = outcome?.kind === 'error' ? outcome.error : undefined;
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).status).toBeUndefined();
      expect(state).toMatchObject([{ entity: { partitionKey: 'p', rowKey: 'r', v: 1 } }]);
    });

    it('duplicate: an insert is applied, applied again, and the caller hears the second answer, 409', async () => {
      const { outcome, state, trace } = await underFault({ duplicate: 1 }, insert);
      expect(outcome).toMatchObject({ kind: 'error', error: { status: 409 } });
      expect(state).toHaveLength(1);
      expect(trace).toEqual(['1 t0 t.insert p/r duplicate -> ok', '2 t0 t.insert p/r retry -> 409']);
    });

    it('duplicate: a conditional replace succeeds, then its retry fails with 412; a delete hears 404', async () => {
      let etag = '';
      const replaced = await underFault(
        { duplicate: 1 },
        (table) => table.write({ op: 'replace', entity: { partitionKey: 'p', rowKey: 'r', v: 2 }, etag }),
        (service) => {
          etag = service.put('t', { partitionKey: 'p', rowKey: 'r', v: 1 });
        },
      );
      expect(replaced.outcome).toMatchObject({ kind: 'error', error: { status: 412 } });
      expect(replaced.state).toMatchObject([{ entity: { v: 2 } }]);
      const deleted = await underFault(
        { duplicate: 1 },
        (table) => table.write({ op: 'delete', partitionKey: 'p', rowKey: 'r', etag: ANY_ETAG }),
        (service) => service.put('t', { partitionKey: 'p', rowKey: 'r' }),
      );
      expect(deleted.outcome).toMatchObject({ kind: 'error', error: { status: 404 } });
      expect(deleted.state).toEqual([]);
    });

    it('duplicate: an upsert succeeds twice, and the caller gets the second ETag', async () => {
      const { outcome, state } = await underFault({ duplicate: 1 }, (table) =>
        table.write({ op: 'upsert', entity: { partitionKey: 'p', rowKey: 'r' } }),
      );
      expect(outcome).toEqual({ kind: 'ok', value: 'W/"2"' });
      expect(state).toMatchObject([{ etag: 'W/"2"' }]);
    });

    it('crash-before: not applied, the task never resumes', async () => {
      const { outcome, after, state, trace } = await underFault({ crashBefore: 1 }, insert);
      expect(outcome).toEqual({ kind: 'crashed' });
      expect(after).toBe(false);
      expect(state).toEqual([]);
      expect(trace).toEqual(['1 t0 t.insert p/r crash-before -> not applied']);
    });

    it('crash-after: applied, the task never resumes', async () => {
      const { outcome, after, state } = await underFault({ crashAfter: 1 }, insert);
      expect(outcome).toEqual({ kind: 'crashed' });
      expect(after).toBe(false);
      expect(state).toHaveLength(1);
    });

    it('a crash stops the whole task: a call its other branches make afterwards never runs; calls in flight may land', async () => {
      const fates = new Set<string>();
      let calledAfterCrash = 0;
      for (let seed = 1; seed <= 30; seed++) {
        const service = new SimTableService();
        const scheduler = new Scheduler({ seed, faults: { crashBefore: 1 } });
        const table = scheduler.tables(service)('t');
        let signal = (): void => {};
        const signalled = new Promise<void>((resolve) => {
          signal = resolve;
        });
        let afterCrash = false;
        const [outcome, other] = await scheduler.run<unknown>([
          () =>
            Promise.all([
              table.write({ op: 'insert', entity: { partitionKey: 'p', rowKey: 'a' } }),
              table.write({ op: 'insert', entity: { partitionKey: 'p', rowKey: 'b' } }),
              (async () => {
                // Woken by the other task, which goes on after this one has crashed (in most seeds).
                await signalled;
                afterCrash = scheduler.trace.some((line) => line.includes('crash-before'));
                await table.write({ op: 'insert', entity: { partitionKey: 'p', rowKey: 'later' } });
              })(),
            ]),
          async () => {
            await scheduler.sleep(1000);
            signal();
            return 'bystander';
          },
        ]);
        expect(outcome).toEqual({ kind: 'crashed' });
        expect(other).toEqual({ kind: 'ok', value: 'bystander' });
        const keys = service.dump('t').map((item) => item.entity.rowKey);
        if (afterCrash) {
          calledAfterCrash++;
          expect(keys).not.toContain('later');
          expect(scheduler.trace.join('\n')).not.toContain('later');
        }
        // Whatever was in flight when the first picked call crashed the task lands or not, in the trace as in the state.
        const orphans = scheduler.trace.filter((line) => / orphan (landed|lost) /.test(line));
        expect(orphans.length).toBeGreaterThanOrEqual(1);
        expect(keys.length).toBe(orphans.filter((line) => line.includes('landed')).length);
        for (const line of orphans) fates.add(line.includes('landed') ? 'landed' : 'lost');
      }
      expect(calledAfterCrash).toBeGreaterThan(0);
      expect(fates).toEqual(new Set(['landed', 'lost']));
    });

    it('strike reads too: a failed or lost read is an error, a crashing read stops the task', async () => {
      expect((await underFault({ fail: 1 }, (table) => table.get('p', 'r'))).outcome).toMatchObject({
        kind: 'error',
        error: { status: 503 },
      });
      expect(
        (await underFault({ lost: 1 }, (table) => table.query({ partitionKey: 'p' }, { limit: 5 }))).outcome,
      ).toMatchObject({
        kind: 'error',
        error: { status: undefined },
      });
      expect((await underFault({ crashAfter: 1 }, (table) => table.get('p', 'r'))).outcome).toEqual({
        kind: 'crashed',
      });
    });

    it('never strike when their probabilities are zero', async () => {
      for (let seed = 1; seed <= 10; seed++) {
        const { trace } = await simulate(seed, { fail: 0, lost: 0, duplicate: 0, crashBefore: 0, crashAfter: 0 });
        expect(
          trace.every(
            (line) => / -> /.test(line) && !/ (fail|lost|duplicate|retry|crash-before|crash-after) ->/.test(line),
          ),
        ).toBe(true);
      }
    });

    it('strike in proportion to their probabilities', async () => {
      const counts: Record<string, number> = {};
      let steps = 0;
      for (let seed = 1; seed <= 200; seed++) {
        const { trace } = await simulate(seed, { fail: 0.1, lost: 0.1 }, 2);
        for (const line of trace) {
          if (/ retry -> /.test(line)) continue;
          steps++;
          const fault = / (fail|lost) -> /.exec(line)?.[1] ?? 'none';
          counts[fault] = (counts[fault] ?? 0) + 1;
        }
      }
      expect((counts.fail ?? 0) / steps).toBeCloseTo(0.1, 1);
      expect((counts.lost ?? 0) / steps).toBeCloseTo(0.1, 1);
    });

    it('refuse probabilities out of range or adding up to more than 1', () => {
      expect(() => new Scheduler({ seed: 1, faults: { fail: 1.5 } })).toThrow(/between 0 and 1/);
      expect(() => new Scheduler({ seed: 1, faults: { fail: -0.1 } })).toThrow(/between 0 and 1/);
      expect(() => new Scheduler({ seed: 1, faults: { fail: 0.6, lost: 0.6 } })).toThrow(/more than 1/);
    });
  });

  describe('time', () => {
    it('starts at a fixed instant and moves 1 ms per storage step', async () => {
      const scheduler = new Scheduler({ seed: 1 });
      const table = scheduler.tables(new SimTableService())('t');
      expect(scheduler.now().toISOString()).toBe('2030-01-01T00:00:00.000Z');
      const stamps: number[] = [];
      await scheduler.run([
        async () => {
          for (let i = 0; i < 3; i++) {
            await table.get('p', 'r');
            stamps.push(scheduler.now().getTime());
          }
        },
      ]);
      expect(stamps.map((stamp) => stamp - Date.UTC(2030, 0, 1))).toEqual([1, 2, 3]);
    });

    it('wakes sleepers in the order of their wake-up times, moving the clock to each', async () => {
      for (let seed = 1; seed <= 10; seed++) {
        const scheduler = new Scheduler({ seed, start: new Date(0) });
        const woke: Array<[string, number]> = [];
        const sleeper = (name: string, ms: number) => async () => {
          await scheduler.sleep(ms);
          woke.push([name, scheduler.now().getTime()]);
        };
        await scheduler.run([sleeper('slow', 300), sleeper('fast', 100), sleeper('middle', 200)]);
        expect(woke).toEqual([
          ['fast', 100],
          ['middle', 200],
          ['slow', 300],
        ]);
      }
    });

    it('interleaves sleepers with storage steps, and never lets the clock go back', async () => {
      const scheduler = new Scheduler({ seed: 4 });
      const table = scheduler.tables(new SimTableService())('t');
      const stamps: number[] = [];
      const worker = async () => {
        for (let i = 0; i < 5; i++) {
          await table.get('p', 'r');
          stamps.push(scheduler.now().getTime());
          await scheduler.sleep(10);
          stamps.push(scheduler.now().getTime());
        }
      };
      await scheduler.run([worker, worker]);
      expect(stamps).toHaveLength(20);
      for (let i = 1; i < stamps.length; i++) expect(stamps[i]).toBeGreaterThanOrEqual(stamps[i - 1] as number);
    });
  });

  describe('nondeterminism and misuse', () => {
    it('fails the run when a task awaits a real timer', async () => {
      const scheduler = new Scheduler({ seed: 1 });
      const table = scheduler.tables(new SimTableService())('t');
      await expect(
        scheduler.run([
          async () => {
            await table.get('p', 'r');
            await new Promise((resolve) => setTimeout(resolve, 1));
            await table.get('p', 'r');
          },
          async () => {
            await table.get('p', 'other');
          },
        ]),
      ).rejects.toThrow(/Nondeterminism: no step is pending, yet task\(s\) t0 have not settled/);
    });

    it('fails the run when tasks wait on a promise nothing settles', async () => {
      const scheduler = new Scheduler({ seed: 1 });
      await expect(scheduler.run([() => new Promise<void>(() => {})])).rejects.toThrow(/Nondeterminism/);
    });

    it('fails a run that goes on past its step budget', async () => {
      const scheduler = new Scheduler({ seed: 1, maxSteps: 50 });
      const table = scheduler.tables(new SimTableService())('t');
      await expect(
        scheduler.run([
          async () => {
            for (;;) await table.get('p', 'r');
          },
        ]),
      ).rejects.toThrow(/more than 50 steps/);
    });

    it('refuses calls made outside a run', async () => {
      const scheduler = new Scheduler({ seed: 1 });
      const table = scheduler.tables(new SimTableService())('t');
      await expect(table.get('p', 'r')).rejects.toThrow(/outside a running task/);
      await expect(scheduler.sleep(1)).rejects.toThrow(/outside a running task/);
    });

    it('gives tasks their own seeded randomness', () => {
      const draws = (seed: number) => {
        const scheduler = new Scheduler({ seed });
        return [scheduler.random(), scheduler.int(1000), scheduler.pick(['a', 'b', 'c', 'd'])];
      };
      expect(draws(7)).toEqual(draws(7));
      expect(draws(7)).not.toEqual(draws(8));
    });
  });
});
