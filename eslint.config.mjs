// Lint rules that keep the house livable (DESIGN §2): typed promise handling, type-only imports,
// no import cycles, exhaustive switches, workflows that can only reach @temporalio/workflow, the
// layers' import zones, and SQL only in repositories.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

/** A statement in a string or template literal, as the house's SQL check greps for it. */
const SQL = String.raw`/\b(SELECT|INSERT INTO|DELETE FROM)\b|\bUPDATE\s+\w+\s+SET\b/`;
const SQL_MESSAGE = "SQL lives in repositories (lib/store/ or a domain's *repository.ts), not here.";

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
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'separate-type-imports' },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'import-x/no-cycle': ['error', { maxDepth: 10 }],
      'no-console': 'error',
      // Prettier breaks code at 120 columns; this keeps long code and comments from coming back. Strings,
      // template literals, URLs and regular expressions may run longer (breaking them hurts grep more).
      'max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreUrls: true, ignoreRegExpLiterals: true },
      ],
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
              message:
                'workflows/ may import only @temporalio/workflow, sibling workflow files, and types (import type).',
            },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression', message: 'workflows/ may not load modules dynamically.' },
      ],
    },
  },
  {
    // The house's layers (README "Layout"): lib/ is the domain and imports no process, CLI, dev stack,
    // sandbox, activity or workflow code; activities/ import lib/, never the CLI, workers or the dev stack.
    files: ['**/*.ts'],
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          basePath: import.meta.dirname,
          zones: [
            {
              target: './lib',
              from: ['./client', './workers', './sandbox', './dev', './activities', './workflows'],
              message:
                'lib/ is the domain: it may not import client/, workers/, sandbox/, dev/, activities/ or workflows/ (move shared types into lib/).',
            },
            {
              target: './activities',
              from: ['./client', './workers', './sandbox', './dev'],
              message: 'activities/ import lib/, never client/, workers/, sandbox/ or dev/.',
            },
          ],
        },
      ],
    },
  },
  {
    // SQL lives in repositories (lib/store/, a domain's *repository.ts): never in the CLI, activities,
    // process entry points, or the key and revocation domains' logic.
    files: ['client/**/*.ts', 'activities/**/*.ts', 'workers/**/*.ts', 'lib/keys/**/*.ts', 'lib/revocation/**/*.ts'],
    ignores: ['**/*repository.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: `Literal[value=${SQL}]`, message: SQL_MESSAGE },
        { selector: `TemplateElement[value.raw=${SQL}]`, message: SQL_MESSAGE },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'client/demo*.ts', 'sandbox/main.ts', 'dev/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
