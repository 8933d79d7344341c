import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    // Only the project's own sources: what a user keeps in the project root (a services module,
    // a scratch script) is theirs, and `npm test` must not fail on it.
    ignores: [
      '*',
      '!src/',
      '!test/',
      '!examples/',
      '!bench/',
      '!scripts/',
      '!eslint.config.js',
      '!vitest.config.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The dashboard runs in the browser (built by Vite, checked by src/dashboard/tsconfig.json).
    files: ['src/dashboard/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // The CLI, benchmarks and examples talk to a terminal on purpose.
    files: ['src/cli/**', 'bench/**', 'examples/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
);
