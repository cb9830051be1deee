// End-to-end check of `wasm-invoker standalone` with the official `openwhisk` npm client.
//
// Run by tests/standalone_npm.rs against a server it started; reads:
//   OW_APIHOST   http://127.0.0.1:<port>
//   OW_API_KEY   <uuid>:<secret>
//   HELLO_ZIP    path of a zip holding hello.wasm
// Prints one line per step and exits non-zero on the first failure.
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const openwhisk = require('openwhisk')

const apihost = process.env.OW_APIHOST
const apiKey = process.env.OW_API_KEY
const zip = fs.readFileSync(process.env.HELLO_ZIP)
const ow = openwhisk({ apihost, api_key: apiKey })
const name = 'hello'
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
    if (message) {
      assert.equal(error.error.error, message)
      assert.ok(error.error.code, 'error bodies carry the transaction id as "code"')
    }
    return error
  }
  assert.fail(`expected HTTP ${statusCode}`)
}

async function main () {
  let step = 0
  const ok = (what) => console.log(`ok ${++step} - ${what}`)

  const created = await ow.actions.create({ name, action: zip, kind, annotations: { 'web-export': true } })
  assert.equal(created.name, name)
  assert.equal(created.namespace, 'guest')
  assert.equal(created.exec.kind, kind)
  assert.equal(created.exec.binary, true)
  assert.equal(created.version, '0.0.1')
  ok('create a wasm action from a zip')

  await expectError(ow.actions.create({ name, action: zip, kind }), 409, 'resource already exists')
  ok('create again without overwrite is 409')

  const result = await ow.actions.invoke({ name, blocking: true, result: true, params: { name: 'Ada' } })
  assert.deepEqual(result, { greeting: 'Hello, Ada!' })
  ok('blocking invoke, result only')

  const activation = await ow.actions.invoke({ name, blocking: true, params: { name: 'Grace' } })
  assert.equal(activation.name, name)
  assert.equal(activation.namespace, 'guest')
  assert.equal(activation.response.success, true)
  assert.equal(activation.response.status, 'success')
  assert.deepEqual(activation.response.result, { greeting: 'Hello, Grace!' })
  assert.match(activation.activationId, /^[0-9a-f]{32}$/)
  ok('blocking invoke, whole activation')

  const queued = await ow.actions.invoke({ name, params: { name: 'Ada' } })
  assert.match(queued.activationId, /^[0-9a-f]{32}$/)
  assert.equal(Object.keys(queued).length, 1)
  ok('non-blocking invoke answers the activation id')

  const stored = await waitForActivation(queued.activationId)
  assert.equal(stored.activationId, queued.activationId)
  assert.deepEqual(stored.response.result, { greeting: 'Hello, Ada!' })
  const kindAnnotation = stored.annotations.find(a => a.key === 'kind')
  assert.equal(kindAnnotation.value, kind)
  ok('read the activation')

  const logs = await ow.activations.logs({ name: queued.activationId })
  assert.ok(Array.isArray(logs.logs))
  assert.ok(logs.logs.some(line => line.includes('stdout: greeting Ada')), JSON.stringify(logs))
  ok('read its logs')

  const response = await ow.activations.result({ name: queued.activationId })
  assert.equal(response.success, true)
  assert.deepEqual(response.result, { greeting: 'Hello, Ada!' })
  ok('read its result')

  const list = await ow.activations.list({ name, limit: 10 })
  assert.ok(list.some(a => a.activationId === queued.activationId))
  ok('list activations by name')

  const updated = await ow.actions.update({ name, action: zip, kind, params: { name: 'Bob' } })
  assert.equal(updated.version, '0.0.2')
  assert.deepEqual(updated.parameters, [{ key: 'name', value: 'Bob' }])
  const greeting = await ow.actions.invoke({ name, blocking: true, result: true })
  assert.deepEqual(greeting, { greeting: 'Hello, Bob!' })
  ok('update the action (parameters) and invoke it')

  const fetched = await ow.actions.get({ name })
  assert.equal(fetched.exec.code, zip.toString('base64'))
  const actions = await ow.actions.list()
  assert.ok(actions.some(a => a.name === name))
  ok('get (with code) and list actions')

  const failing = await expectError(
    ow.actions.invoke({ name, blocking: true, params: { name: 42 } }), 502)
  assert.equal(failing.error.response.status, 'application error')
  assert.deepEqual(failing.error.response.result, { error: 'The parameter "name" must be a string.' })
  ok('an application error is 502 with the activation')

  await expectError(ow.actions.update({ name, action: zip, kind, limits: { memory: 1024 } }), 400,
    'memory 1024 MB exceeds allowed threshold of 512 MB')
  ok('limits out of range are 400')

  const stranger = openwhisk({ apihost, api_key: '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:wrong' })
  await expectError(stranger.actions.list(), 401, 'The supplied authentication is invalid')
  ok('a wrong key is 401')

  const deleted = await ow.actions.delete({ name })
  assert.equal(deleted.name, name)
  await expectError(ow.actions.get({ name }), 404, 'The requested resource does not exist.')
  ok('delete the action')

  console.log(`${step} passed, 0 failed`)
}

main().catch(error => {
  console.error('not ok -', error && error.stack ? error.stack : error)
  if (error && error.error) console.error(JSON.stringify(error.error))
  console.log('0 passed, 1 failed')
  process.exit(1)
})
