import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UploadAdmission } from './upload-admission.js';

test('uploads beyond the limit wait in line, in order; a full line is refused; one that leaves loses its place', () => {
  const a = new UploadAdmission(2, 2);
  const admitted: string[] = [];
  assert.equal(a.enter(() => admitted.push('x')), true);
  assert.equal(a.enter(() => admitted.push('y')), true);
  const c = a.enter(() => admitted.push('c'));
  const d = a.enter(() => admitted.push('d'));
  assert.equal(typeof c, 'object');
  assert.equal(a.enter(() => admitted.push('e')), 'full', 'the line holds two');
  assert.equal(a.waiting, 2);
  if (typeof c === 'object') c.leave(); // its agent went away
  a.exit();
  assert.deepEqual(admitted, ['d'], 'the slot went to the next in line');
  assert.equal(a.running, 2);
  a.exit();
  a.exit();
  assert.equal(a.running, 0);
  assert.equal(a.enter(() => undefined), true);
  void d;
});
