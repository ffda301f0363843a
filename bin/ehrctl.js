#!/usr/bin/env node
// Runs the TypeScript CLI through tsx so a fresh clone needs no build step.
'use strict';
const path = require('node:path');
require('tsx/cjs');
void require(path.join(__dirname, '..', 'client', 'ehrctl.ts')).main(process.argv);
