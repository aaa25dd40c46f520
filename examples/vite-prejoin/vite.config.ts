import { defineConfig } from 'vite';

export default defineConfig({
  optimizeDeps: {
    // signal-guest-sdk fetches its .wasm next to its own JS (new URL(..., import.meta.url)).
    // Pre-bundled into Vite's deps cache, that URL points into the cache, where the dev
    // server has no .wasm and answers with index.html instead.
    exclude: ['signal-guest-sdk'],
  },
  resolve: {
    // Only for this example's "file:" dependency, which npm installs as a symlink out of the
    // project: keep its node_modules path so the dev server serves it like an installed package
    // (otherwise its .wasm is outside server.fs.allow). Not needed for a registry install.
    preserveSymlinks: true,
  },
});
