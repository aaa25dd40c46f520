// The set-up installs the wasm-bindgen CLI at the version the build links. These tests hold
// scripts/locked-version.sh to cargo's own resolution, so a change of Cargo.lock's layout
// (or of the dependency line in Cargo.toml) cannot make set-up ask for a version like ''.
// It also installs WebKit's driver and Xvfb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, encoding: 'utf8' }).trim();

function resolvedByCargo(name) {
  const meta = JSON.parse(run('cargo', ['metadata', '--format-version', '1', '--locked',
    '--filter-platform', 'wasm32-unknown-unknown']));
  const versions = meta.packages.filter((p) => p.name === name).map((p) => p.version);
  assert.equal(versions.length, 1, `exactly one ${name} in the wasm build`);
  return versions[0];
}

test('locked-version.sh reads the wasm-bindgen version the wasm build links', () => {
  const locked = run('scripts/locked-version.sh', ['wasm-bindgen']);
  assert.match(locked, /^\d+\.\d+\.\d+$/);
  assert.equal(locked, resolvedByCargo('wasm-bindgen'));
});

test('locked-version.sh prints nothing for a crate that is not locked', () => {
  assert.equal(run('scripts/locked-version.sh', ['no-such-crate-here']), '');
});

test('the installed wasm-bindgen CLI matches the linked crate', () => {
  const cli = run('wasm-bindgen', ['--version']);
  assert.equal(cli.split(' ')[1], resolvedByCargo('wasm-bindgen'));
});

test('WebKit\'s driver and Xvfb are installed (the WebKit suites start both themselves)', () => {
  for (const tool of ['WebKitWebDriver', 'Xvfb']) {
    assert.match(run('sh', ['-c', `command -v ${tool}`]), new RegExp(`/${tool}$`), `${tool} on PATH`);
  }
});
