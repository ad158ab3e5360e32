import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

// No React plugin: esbuild compiles TSX with the automatic runtime, which is all a production build
// needs (fast refresh is a dev-server feature and the console has no second server to run).
export default defineConfig({
  root: here('.'),
  base: '/console/',
  publicDir: false,
  logLevel: 'warn',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: here('../dist/console'),
    emptyOutDir: true,
    // The CSP allows no inline script: every chunk and the module-preload helper are files.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      input: { console: here('index.html'), wallet: here('wallet.html') },
    },
  },
});
