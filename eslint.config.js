import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build-check/', 'node_modules/', 'coverage/', '.aiecs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
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
