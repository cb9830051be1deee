// End-to-end check of packages on `wasm-invoker standalone` with the official `openwhisk` npm
// client: the guest's own package with parameters and an action in it, a binding that overrides
// a parameter, the list and get shapes, a refused delete, and another namespace's package read,
// bound and invoked once it is published (403 while it is private).
//
// Run by tests/standalone_npm.rs against a server it started with two keys; reads:
//   OW_APIHOST       http://127.0.0.1:<port>
//   OW_API_KEY       the guest's <uuid>:<secret>
//   OW_OTHER_KEY     the key of namespace `other`
//   HELLO_WASM       path of hello.wasm ({"greeting": "Hello, <name>!"})
// Prints one line per step and exits non-zero on the first failure.
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const openwhisk = require('openwhisk')

const apihost = process.env.OW_APIHOST
const ow = openwhisk({ apihost, api_key: process.env.OW_API_KEY })
const other = openwhisk({ apihost, api_key: process.env.OW_OTHER_KEY })
const hello = fs.readFileSync(process.env.HELLO_WASM)
const kind = 'wasm:wasip1'
const param = (key, value) => ({ key, value })

async function expectError (promise, statusCode) {
  try {
    await promise
  } catch (error) {
    assert.equal(error.statusCode, statusCode, `status of ${error.message}`)
    return error
  }
  assert.fail(`expected HTTP ${statusCode}`)
}

async function main () {
  let step = 0
  const ok = (what) => console.log(`ok ${++step} - ${what}`)
  const greet = (name, params) =>
    ow.actions.invoke({ name, blocking: true, result: true, params: params || {} })

  await ow.packages.create({ name: 'lib', package: { parameters: [param('name', 'Package')] } })
  await ow.actions.create({ name: 'lib/hello', action: hello, kind })
  assert.deepEqual(await greet('lib/hello'), { greeting: 'Hello, Package!' })
  assert.deepEqual(await greet('lib/hello', { name: 'Ada' }), { greeting: 'Hello, Ada!' })
  ok('a package with a parameter and an action in it')

  await ow.packages.create({
    name: 'mylib',
    package: { binding: { namespace: '_', name: 'lib' }, parameters: [param('name', 'Binding')] }
  })
  assert.deepEqual(await greet('mylib/hello'), { greeting: 'Hello, Binding!' })
  const binding = await ow.packages.get({ name: 'mylib' })
  assert.deepEqual(binding.binding, { namespace: 'guest', name: 'lib' })
  assert.deepEqual(binding.actions.map(a => a.name), ['hello'])
  ok('a binding overrides the package parameter')

  const listed = await ow.packages.list()
  assert.deepEqual(listed.map(p => p.name).sort(), ['lib', 'mylib'])
  const lib = await ow.packages.get({ name: 'lib' })
  assert.deepEqual(lib.actions.map(a => a.name), ['hello'])
  assert.deepEqual(lib.parameters, [param('name', 'Package')])
  ok('list and get')

  await expectError(ow.packages.delete({ name: 'lib' }), 409)
  ok('a package holding actions is not deleted')

  await other.packages.create({ name: 'shared', package: { parameters: [param('name', 'Other')] } })
  await other.actions.create({ name: 'shared/hello', action: hello, kind })
  await expectError(ow.packages.get({ name: '/other/shared' }), 403)
  await expectError(greet('/other/shared/hello'), 403)
  ok('another namespace\'s private package is forbidden')

  await other.packages.update({ name: 'shared', package: { publish: true } })
  const shared = await ow.packages.get({ name: '/other/shared' })
  assert.equal(shared.publish, true)
  assert.deepEqual(await greet('/other/shared/hello'), { greeting: 'Hello, Other!' })
  await ow.packages.create({ name: 'theirs', package: { binding: { namespace: 'other', name: 'shared' } } })
  assert.deepEqual(await greet('theirs/hello', { name: 'Grace' }), { greeting: 'Hello, Grace!' })
  ok('a published package of another namespace is read, invoked and bound')

  console.log(`${step} passed, 0 failed`)
}

main().catch(error => {
  console.error('not ok -', error && error.stack ? error.stack : error)
  if (error && error.error) console.error(JSON.stringify(error.error))
  console.log('0 passed, 1 failed')
  process.exit(1)
})
