import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restoredName } from './portal-routes.js';

test('a restored version is named after the original and the time of its recovery point', () => {
  const at = new Date(2026, 10, 25, 8, 0);
  assert.equal(restoredName('report.docx', at), 'report (restored 2026-11-25 08.00).docx');
  assert.equal(restoredName('Makefile', at), 'Makefile (restored 2026-11-25 08.00)');
  assert.equal(restoredName('.bashrc', at), '.bashrc (restored 2026-11-25 08.00)', 'a dotfile has no extension');
  assert.equal(restoredName('archive.tar.gz', new Date(2026, 0, 5, 17, 9)), 'archive.tar (restored 2026-01-05 17.09).gz');
});
