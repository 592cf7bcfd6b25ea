/**
 * The read budget: takers get their bytes in arrival order, a file larger than the whole budget
 * waits until it is alone (it is not shut out), and a release given twice frees once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadBudget } from './read-budget.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('takers start in order while their bytes fit, a large one is not overtaken', async () => {
  const b = new ReadBudget(100);
  const started: string[] = [];
  const take = (name: string, bytes: number): Promise<() => void> =>
    b.take(bytes).then((release) => {
      started.push(name);
      return release;
    });
  const a = take('a', 60);
  const big = take('big', 500); // capped at 100: waits for the whole budget
  const c = take('c', 10); // fits now, but waits behind big
  await tick();
  assert.deepEqual(started, ['a']);
  const releaseA = await a;
  releaseA();
  releaseA(); // a second release frees nothing more
  await tick();
  assert.deepEqual(started, ['a', 'big']);
  (await big)();
  await tick();
  assert.deepEqual(started, ['a', 'big', 'c']);
  const releaseC = await c;
  // 90 left: a 90-byte taker starts at once, a 1-byte one then waits
  const d = take('d', 90);
  const e = take('e', 1);
  await tick();
  assert.deepEqual(started, ['a', 'big', 'c', 'd']);
  releaseC();
  await tick();
  assert.deepEqual(started, ['a', 'big', 'c', 'd', 'e']);
  (await d)();
  (await e)();
});
