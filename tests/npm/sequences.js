// End-to-end check of sequences on `wasm-invoker standalone` with the official `openwhisk` npm
// client.
//
// Run by tests/standalone_npm.rs against a server it started; reads:
//   OW_APIHOST   http://127.0.0.1:<port>
//   OW_API_KEY   <uuid>:<secret>
//   ECHO_WASM    path of echo.wasm (returns its params)
//   HELLO_WASM   path of hello.wasm ({"greeting": "Hello, <name>!"}, an error when name is not a string)
// Prints one line per step and exits non-zero on the first failure.
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const openwhisk = require('openwhisk')

const ow = openwhisk({ apihost: process.env.OW_APIHOST, api_key: process.env.OW_API_KEY })
const echo = fs.readFileSync(process.env.ECHO_WASM)
const hello = fs.readFileSync(process.env.HELLO_WASM)
const kind = 'wasm:wasip1'

// Polls for an activation record, bounded in tries and time.
async function waitForActivation (activationId) {
  for (let i = 0; i < 100; i++) {
    try {
      return await ow.activations.get({ name: activationId })
    } catch (error) {
      if (error.statusCode !== 404) throw error
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  throw new Error(`activation ${activationId} was not stored within 10 s`)
}

async function expectError (promise, statusCode, message) {
  try {
    await promise
  } catch (error) {
    assert.equal(error.statusCode, statusCode, `status of ${error.message}`)
    if (message) assert.equal(error.error.error, message)
    return error
  }
  assert.fail(`expected HTTP ${statusCode}`)
}

const annotation = (entity, key) => (entity.annotations.find(a => a.key === key) || {}).value

async function main () {
  let step = 0
  const ok = (what) => console.log(`ok ${++step} - ${what}`)

  await ow.actions.create({ name: 'first', action: echo, kind })
  await ow.actions.create({ name: 'greet', action: hello, kind })
  await ow.actions.create({ name: 'last', action: echo, kind })
  ok('create three wasm actions')

  const components = ['/_/first', '/_/greet', '/guest/last']
  const created = await ow.actions.create({ name: 'pipeline', sequence: components })
  assert.equal(created.exec.kind, 'sequence')
  assert.deepEqual(created.exec.components, ['/guest/first', '/guest/greet', '/guest/last'])
  assert.equal(annotation(created, 'exec'), 'sequence')
  ok('create a sequence of them')

  await expectError(ow.actions.create({ name: 'broken', sequence: ['/_/first', '/_/missing'] }), 400,
    'Sequence component does not exist.')
  ok('a missing component is 400')

  const result = await ow.actions.invoke({ name: 'pipeline', blocking: true, result: true, params: { name: 'Ada' } })
  assert.deepEqual(result, { greeting: 'Hello, Ada!' })
  ok('blocking invoke, result only')

  const record = await ow.actions.invoke({ name: 'pipeline', blocking: true, params: { name: 'Grace' } })
  assert.deepEqual(record.response.result, { greeting: 'Hello, Grace!' })
  assert.equal(record.logs.length, 3)
  assert.equal(annotation(record, 'kind'), 'sequence')
  assert.equal(annotation(record, 'topmost'), true)
  assert.equal(annotation(record, 'path'), 'guest/pipeline')
  let total = 0
  for (const id of record.logs) {
    const component = await waitForActivation(id)
    assert.equal(component.cause, record.activationId)
    assert.equal(annotation(component, 'causedBy'), 'sequence')
    total += component.duration
  }
  assert.equal(record.duration, total)
  ok('the sequence record lists its components, which it caused')

  const queued = await ow.actions.invoke({ name: 'pipeline', params: { name: 'Bo' } })
  const stored = await waitForActivation(queued.activationId)
  assert.deepEqual(stored.response.result, { greeting: 'Hello, Bo!' })
  assert.equal(stored.logs.length, 3)
  ok('non-blocking invoke, then read the record')

  const failing = await expectError(
    ow.actions.invoke({ name: 'pipeline', blocking: true, params: { name: 42 } }), 502)
  assert.equal(failing.error.response.status, 'application error')
  assert.deepEqual(failing.error.response.result, { error: 'The parameter "name" must be a string.' })
  assert.equal(failing.error.logs.length, 2)
  ok('a failing middle step stops the sequence: 502 with its error')

  const fetched = await ow.actions.get({ name: 'pipeline' })
  assert.deepEqual(fetched.exec, { kind: 'sequence', components: ['/guest/first', '/guest/greet', '/guest/last'] })
  await ow.actions.delete({ name: 'pipeline' })
  ok('get and delete the sequence')

  console.log(`${step} passed, 0 failed`)
}

main().catch(error => {
  console.error('not ok -', error && error.stack ? error.stack : error)
  if (error && error.error) console.error(JSON.stringify(error.error))
  console.log('0 passed, 1 failed')
  process.exit(1)
})
