// scripts/tap-failures.sh: what scripts/test.sh prints first when a step fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function failuresIn(tap) {
  const log = path.join(mkdtempSync(path.join(tmpdir(), 'tap-')), 'step.log');
  writeFileSync(log, tap);
  return execFileSync('scripts/tap-failures.sh', [log], { cwd: root, encoding: 'utf8' });
}

const TAP = [
  '# Subtest: passes',
  'ok 1 - passes',
  '  ---',
  '  duration_ms: 1.2',
  '  ...',
  '# Subtest: outer',
  '    # Subtest: inner',
  '    not ok 1 - inner',
  '      ---',
  "      error: 'key 4.988 s after the first request'",
  '      ...',
  '    1..1',
  'not ok 2 - outer',
  '  ---',
  "  error: '1 subtest failed'",
  '  ...',
  'ok 3 - after',
  '  ---',
  '  duration_ms: 3',
  '  ...',
  '# fail 1',
].join('\n');

test('each failed subtest with its diagnostics, nested ones too, and nothing that passed', () => {
  assert.equal(failuresIn(TAP), [
    '--     not ok 1 - inner',
    '      ---',
    "      error: 'key 4.988 s after the first request'",
    '      ...',
    '-- not ok 2 - outer',
    '  ---',
    "  error: '1 subtest failed'",
    '  ...',
    '',
  ].join('\n'));
});

test('nothing for a log where everything passed', () => {
  assert.equal(failuresIn('ok 1 - a\n  ---\n  ...\n# fail 0\n'), '');
});
