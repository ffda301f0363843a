// Lint rules that keep the house livable (DESIGN §2): typed promise handling, type-only imports,
// no import cycles, exhaustive switches, and workflows that can only reach @temporalio/workflow.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'coverage/**', 'bin/**', 'eslint.config.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      globals: globals.node,
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'separate-type-imports' }],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'import-x/no-cycle': ['error', { maxDepth: 10 }],
      'no-console': 'error',
    },
  },
  {
    // Workflow code must be deterministic: nothing but @temporalio/workflow, sibling workflow files,
    // and type-only imports of activities and shared types.
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // Allowed: @temporalio/workflow and `./sibling` paths that never climb out with `..`.
              regex: '^(?!@temporalio/workflow$|\\./(?!.*\\.\\.)).*',
              allowTypeImports: true,
              message: 'workflows/ may import only @temporalio/workflow, sibling workflow files, and types (import type).',
            },
          ],
        },
      ],
      'no-restricted-syntax': ['error', { selector: 'ImportExpression', message: 'workflows/ may not load modules dynamically.' }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'client/demo.ts', 'sandbox/main.ts', 'dev/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
