import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';

import { commandLine, dagArgs, notebookArgs, notebookCandidates, quoteArg, resolveExecutable, runPipelineArgs, shellKind } from '../src/commands';

test('wand run arguments, with and without a block', () => {
    assert.deepEqual(runPipelineArgs('/p', 'etl'), ['run', '/p', 'etl']);
    assert.deepEqual(runPipelineArgs('/p', 'etl', 'clean'), ['run', '/p', 'etl', '--block', 'clean']);
    assert.deepEqual(notebookArgs('/p', 'etl'), ['notebook', 'etl', '--project', '/p']);
    assert.deepEqual(dagArgs('/p', 'etl', 'mermaid'), ['dag', 'etl', '--project', '/p', '--format', 'mermaid']);
});

test('command lines are quoted for the terminal shell', () => {
    assert.equal(commandLine('wand', runPipelineArgs('/work/my project', 'etl', 'nested/clean'), 'posix'), `wand run '/work/my project' etl --block nested/clean`);
    assert.equal(quoteArg(`it's`, 'posix'), `'it'\\''s'`);
    assert.equal(commandLine('C:\\Program Files\\wand.exe', ['run', 'C:\\p', 'etl'], 'powershell'), `& 'C:\\Program Files\\wand.exe' run C:\\p etl`);
    assert.equal(commandLine('wand', ['run', 'C:\\my p', 'etl'], 'cmd'), `wand run "C:\\my p" etl`);
});

test('shell kinds', () => {
    assert.equal(shellKind('/bin/bash', 'linux'), 'posix');
    assert.equal(shellKind('C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', 'win32'), 'powershell');
    assert.equal(shellKind('C:\\Windows\\System32\\cmd.exe', 'win32'), 'cmd');
    assert.equal(shellKind(undefined, 'win32'), 'powershell');
    assert.equal(shellKind('', 'darwin'), 'posix');
});

test('notebook location: printed path first, then the usual places', () => {
    const found = notebookCandidates('/p', 'etl', 'wrote notebooks/etl.ipynb\n', '/p');
    assert.deepEqual(found, ['/p/notebooks/etl.ipynb', '/p/pipelines/etl/etl.ipynb', '/p/etl.ipynb']);
    assert.deepEqual(notebookCandidates('/p', 'etl', '', '/elsewhere'), ['/p/pipelines/etl/etl.ipynb', '/p/etl.ipynb', '/elsewhere/etl.ipynb']);
});

test('wand-lsp: setting wins, else PATH, else undefined', () => {
    const files = new Set(['/usr/local/bin/wand-lsp', '/opt/wand/wand-lsp', '/ws/target/debug/wand-lsp', '/home/me/.cargo/bin/wand-lsp']);
    const exists = (it: string) => files.has(it);
    const env = { PATH: '/usr/bin:/usr/local/bin', HOME: '/home/me' };
    assert.equal(resolveExecutable('', 'wand-lsp', env, 'linux', exists), '/usr/local/bin/wand-lsp');
    assert.equal(resolveExecutable('/opt/wand/wand-lsp', 'wand-lsp', env, 'linux', exists), '/opt/wand/wand-lsp');
    assert.equal(resolveExecutable('~/.cargo/bin/wand-lsp', 'wand-lsp', env, 'linux', exists), '/home/me/.cargo/bin/wand-lsp');
    assert.equal(resolveExecutable('target/debug/wand-lsp', 'wand-lsp', env, 'linux', exists, '/ws'), '/ws/target/debug/wand-lsp');
    assert.equal(resolveExecutable('/missing/wand-lsp', 'wand-lsp', env, 'linux', exists), undefined);
    assert.equal(resolveExecutable('', 'wand-lsp', { PATH: '/usr/bin' }, 'linux', exists), undefined);
});

test('wand-lsp on Windows uses PATHEXT', () => {
    const exists = (it: string) => it === path.win32.join('C:\\tools', 'wand-lsp.exe');
    assert.equal(resolveExecutable('', 'wand-lsp', { PATH: 'C:\\bin;C:\\tools', PATHEXT: '.COM;.EXE' }, 'win32', exists), 'C:\\tools\\wand-lsp.exe');
});
