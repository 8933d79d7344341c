import { defineConfig } from 'vite';

// The page's sources live here; the gateway serves the build from dist/dashboard at /dashboard/.
const here = decodeURIComponent(new URL('.', import.meta.url).pathname);

export default defineConfig({
  root: here,
  base: '/dashboard/',
  publicDir: false,
  logLevel: 'warn',
  // Vite 8 compiles JSX with oxc: Preact's automatic runtime, no plugin needed.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: `${here}../../dist/dashboard`,
    emptyOutDir: true,
    target: 'es2022',
    // Every browser the page supports has modulepreload; the polyfill would be dead weight.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    sourcemap: false,
  },
});
