// End-to-end check of the standalone server's catalog, `/whisk.system/utils`, with the official
// `openwhisk` npm client: the public package and its actions seen and invoked from the guest's
// namespace, directly and through a binding, with the results of OpenWhisk's Node.js originals.
//
// Run by tests/standalone_npm.rs against a server it started (from an empty data
// directory); reads:
//   OW_APIHOST   http://127.0.0.1:<port>
//   OW_API_KEY   <uuid>:<secret> (the guest's)
// Prints one line per step and exits non-zero on the first failure.
'use strict'

const assert = require('node:assert/strict')
const openwhisk = require('openwhisk')

const ow = openwhisk({ apihost: process.env.OW_APIHOST, api_key: process.env.OW_API_KEY })
const utilities = ['cat', 'date', 'echo', 'head', 'namespace', 'sort', 'split']

async function main () {
  let step = 0
  const ok = (what) => console.log(`ok ${++step} - ${what}`)
  const run = (name, params) =>
    ow.actions.invoke({ name: `/whisk.system/utils/${name}`, blocking: true, result: true, params })

  const pkg = await ow.packages.get({ name: '/whisk.system/utils' })
  assert.equal(pkg.namespace, 'whisk.system')
  assert.equal(pkg.publish, true)
  assert.deepEqual(pkg.actions.map(a => a.name).sort(), utilities)
  ok('get the public package /whisk.system/utils with its actions')

  const listed = await ow.packages.list({ namespace: 'whisk.system' })
  assert.deepEqual(listed.map(p => p.name), ['utils'])
  ok('list the public packages of whisk.system')

  const echo = await ow.actions.get({ name: '/whisk.system/utils/echo' })
  assert.equal(echo.exec.kind, 'wasm:wasip1')
  assert.equal(echo.annotations.find(a => a.key === 'description').value, 'Returns the input')
  ok('get an action of the package')

  assert.deepEqual(await run('echo', { payload: 'Five fuzzy felines' }), { payload: 'Five fuzzy felines' })
  const lines = ['seven', 'eight', 'nine']
  assert.deepEqual(await run('cat', { lines }), { lines, payload: 'seven\neight\nnine' })
  assert.deepEqual(await run('sort', { lines }), { lines: ['eight', 'nine', 'seven'], length: 3 })
  assert.deepEqual(await run('head', { lines, num: 2 }), { lines: ['seven', 'eight'], num: 2 })
  assert.deepEqual(await run('split', { payload: 'seven,eight,nine', separator: ',' }),
    { lines, payload: 'seven,eight,nine' })
  assert.deepEqual(await run('namespace', {}), { namespace: 'guest' })
  const { date } = await run('date', {})
  assert.equal(new Date(date).toISOString(), date)
  ok('invoke each utility as the guest')

  await ow.packages.create({ name: 'myutils', package: { binding: { namespace: 'whisk.system', name: 'utils' } } })
  const bound = await ow.actions.invoke({ name: 'myutils/sort', blocking: true, result: true, params: { lines: [4, 2, 3] } })
  assert.deepEqual(bound, { lines: [2, 3, 4], length: 3 })
  ok('bind the package and invoke through the binding')

  // The OpenWhisk docs' example: a sequence of catalog actions, then a rule firing one.
  await ow.actions.create({
    name: 'sortedLines',
    action: { exec: { kind: 'sequence', components: ['/whisk.system/utils/split', '/whisk.system/utils/sort'] } }
  })
  const sorted = await ow.actions.invoke({
    name: 'sortedLines', blocking: true, result: true, params: { payload: 'c\nb\na' }
  })
  assert.deepEqual(sorted, { lines: ['a', 'b', 'c'], length: 3 })
  ok('a sequence of catalog actions')

  await ow.triggers.create({ name: 'catalogTick' })
  await ow.rules.create({ name: 'catalogRule', trigger: 'catalogTick', action: '/whisk.system/utils/echo' })
  const fired = await ow.triggers.invoke({ name: 'catalogTick', params: { payload: 'hi' } })
  let echoed
  for (let i = 0; i < 100 && !echoed; i++) {
    const list = await ow.activations.list({ name: 'echo', docs: true, limit: 5 })
    echoed = list.find(a => a.response && a.response.result && a.response.result.payload === 'hi')
    if (!echoed) await new Promise(resolve => setTimeout(resolve, 100))
  }
  assert.ok(fired.activationId, JSON.stringify(fired))
  assert.ok(echoed, 'the rule ran /whisk.system/utils/echo')
  ok('a rule firing a catalog action')

  console.log(`${step} passed, 0 failed`)
}

main().catch(error => {
  console.error('not ok -', error && error.stack ? error.stack : error)
  if (error && error.error) console.error(JSON.stringify(error.error))
  console.log('0 passed, 1 failed')
  process.exit(1)
})
