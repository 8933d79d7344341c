import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'build-check/', 'node_modules/', 'coverage/', '.aiecs/'] },
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
    // The CLI, benchmarks and examples talk to a terminal on purpose.
    files: ['src/cli/**', 'src/bench/**', 'examples/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
);
