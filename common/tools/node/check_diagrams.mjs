// check_diagrams.mjs - book.diagrams: every ```mermaid block in the given
// pages parses with mermaid itself, the same parser that draws it in the HTML
// book (and close to the one GitHub uses).
//
//   node check_diagrams.mjs --modules BUILD/book-tools/node_modules PAGE.md...
//
// Prints "page:line: ..." for every diagram that does not parse (the line of
// the page where mermaid stopped) and exits 1; prints a summary and exits 0
// when all parse. When mermaid is not installed in --modules it prints a line
// starting with "SKIPPED:" (ctest's SKIP_REGULAR_EXPRESSION) and exits 0: the
// packages come from `cmake --build <dir> --target book-tools`, which runs
// `npm ci` once; this script never touches the network.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

function usage(message) {
  console.error(`check_diagrams: ${message}\n` +
                'Usage: node check_diagrams.mjs --modules DIR PAGE.md...');
  process.exit(2);
}

let modules = null;
const pages = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--modules' && i + 1 < args.length) modules = args[++i];
  else if (args[i].startsWith('--')) usage(`unknown option ${args[i]}`);
  else pages.push(args[i]);
}
if (!modules) usage('--modules is required');

if (!fs.existsSync(path.join(modules, 'mermaid', 'package.json')) ||
    !fs.existsSync(path.join(modules, 'jsdom', 'package.json'))) {
  console.log(`SKIPPED: mermaid and jsdom are not installed in ${modules}: ` +
              'run `cmake --build <build dir> --target book-tools` (npm ci) once');
  process.exit(0);
}

// The fenced blocks of a page, CommonMark-style: a fence of three or more
// backticks or tildes opens a block that only a fence of the same character,
// at least as long, closes. A ```mermaid block inside a longer fence is text.
function mermaidBlocks(file) {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  const blocks = [];
  let open = null;
  lines.forEach((line, index) => {
    if (open) {
      const close = line.match(/^ {0,3}(`{3,}|~{3,})\s*$/);
      if (close && close[1][0] === open.ch && close[1].length >= open.len) {
        if (open.mermaid) blocks.push({ line: open.first, text: open.text.join('\n') });
        open = null;
      } else if (open.mermaid) {
        open.text.push(line);
      }
      return;
    }
    const fence = line.match(/^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/);
    if (fence)
      open = { ch: fence[1][0], len: fence[1].length, mermaid: fence[2] === 'mermaid',
               first: index + 2, text: [] };
  });
  if (open && open.mermaid)
    blocks.push({ line: open.first, text: open.text.join('\n'), unclosed: true });
  return blocks;
}

// mermaid needs a DOM (DOMPurify, measuring text): jsdom provides one.
const require = createRequire(path.join(path.resolve(modules), 'package.json'));
const { JSDOM } = require('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import(pathToFileURL(require.resolve('mermaid')).href);
mermaid.initialize({ startOnLoad: false, logLevel: 'fatal' });
const version = JSON.parse(fs.readFileSync(path.join(modules, 'mermaid', 'package.json'))).version;

let total = 0;
let failed = 0;
for (const page of pages) {
  let blocks;
  try {
    blocks = mermaidBlocks(page);
  } catch (error) {
    console.error(`${page}: cannot read the page (${error.message})`);
    failed++;
    continue;
  }
  for (const block of blocks) {
    total++;
    let problem = null;
    if (block.unclosed) problem = { line: 0, text: 'the ```mermaid block is never closed' };
    else if (block.text.trim() === '') problem = { line: 0, text: 'the ```mermaid block is empty' };
    else {
      try {
        await mermaid.parse(block.text);
      } catch (error) {
        const message = String(error && error.message ? error.message : error);
        // jison parsers say "Parse error on line N"; langium ones "line N".
        const at = message.match(/line (\d+)/);
        problem = { line: at ? Number(at[1]) - 1 : 0, text: message };
      }
    }
    if (!problem) {
      // A ';' ends a statement even where the diagram still parses: in a
      // state diagram's transition label the rest of the line becomes new
      // states, drawn as boxes of loose words. Refuse it there too.
      const semicolons = block.text.split('\n')
        .map((text, index) => (/;/.test(text.replace(/#\w+;/g, '')) ? index : -1))
        .filter((index) => index >= 0);
      if (semicolons.length === 0) continue;
      failed++;
      for (const index of semicolons)
        console.error(`${page}:${block.line + index}: ';' ends a mermaid statement, even inside ` +
                      `a label where the diagram still parses (the rest of the line is drawn ` +
                      `as new states): write #59; or rephrase`);
      continue;
    }
    failed++;
    const where = block.line + problem.line;
    const [first, ...rest] = problem.text.split('\n');
    console.error(`${page}:${where}: mermaid cannot parse this diagram (it starts at line ` +
                  `${block.line}): ${first}`);
    for (const line of rest.slice(0, 3)) console.error(`    ${line}`);
    // The trap that bites most: ';' ends a statement, even inside a message
    // or a label ("A->>B: x; y" is two statements). Name the lines that have one.
    block.text.split('\n').forEach((text, index) => {
      if (/;/.test(text.replace(/#\w+;/g, '')))
        console.error(`${page}:${block.line + index}: note: ';' ends a mermaid statement, ` +
                      `even inside a message or label: write #59; or rephrase`);
    });
  }
}

const pageCount = `${pages.length} page${pages.length === 1 ? '' : 's'}`;
if (failed > 0) {
  console.log(`diagrams: ${failed} of ${total} diagrams in ${pageCount} do not parse ` +
              `(mermaid ${version})`);
  process.exit(1);
}
console.log(`diagrams: ${total} diagram${total === 1 ? '' : 's'} in ${pageCount} parse ` +
            `(mermaid ${version})`);
