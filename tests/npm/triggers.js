// End-to-end check of triggers and rules on `wasm-invoker standalone` with the official `openwhisk`
// npm client: a trigger with two rules, one disabled, is fired; the active rule's action runs with
// the trigger's parameters under the payload and its activation is found by listing; the disabled
// one's does not run.
//
// Run by tests/standalone_npm.rs against a server it started; reads:
//   OW_APIHOST   http://127.0.0.1:<port>
//   OW_API_KEY   <uuid>:<secret>
//   ECHO_WASM    path of the echo example's wasm module
// Prints one line per step and exits non-zero on the first failure.
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const openwhisk = require('openwhisk')

const ow = openwhisk({ apihost: process.env.OW_APIHOST, api_key: process.env.OW_API_KEY })
const wasm = fs.readFileSync(process.env.ECHO_WASM)
const kind = 'wasm:wasip1'

const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

// Polls for an activation record, bounded in tries and time.
async function waitForActivation (activationId) {
  for (let i = 0; i < 100; i++) {
    try {
      return await ow.activations.get({ name: activationId })
    } catch (error) {
      if (error.statusCode !== 404) throw error
      await sleep(100)
    }
  }
  throw new Error(`activation ${activationId} was not stored within 10 s`)
}

// Polls the activation list of an action until it holds `count` entries, bounded.
async function waitForListed (name, count) {
  for (let i = 0; i < 100; i++) {
    const listed = await ow.activations.list({ name })
    if (listed.length >= count) return listed
    await sleep(100)
  }
  throw new Error(`${name} did not get ${count} activations within 10 s`)
}

async function main () {
  let step = 0
  const ok = (what) => console.log(`ok ${++step} - ${what}`)

  await ow.actions.create({ name: 'echo-on', action: wasm, kind, params: { p: 'action' } })
  await ow.actions.create({ name: 'echo-off', action: wasm, kind })
  const trigger = await ow.triggers.create({
    name: 'fired',
    trigger: { parameters: [{ key: 'x', value: 'trigger' }, { key: 'y', value: 'trigger' }] }
  })
  assert.equal(trigger.name, 'fired')
  assert.deepEqual(trigger.limits, {})
  ok('create two echo actions and a trigger')

  const on = await ow.rules.create({ name: 'rule-on', trigger: 'fired', action: 'echo-on' })
  assert.equal(on.status, 'active')
  assert.deepEqual(on.trigger, { path: 'guest', name: 'fired' })
  await ow.rules.create({ name: 'rule-off', trigger: 'fired', action: 'echo-off' })
  await ow.rules.disable({ name: 'rule-off' })
  assert.equal((await ow.rules.get({ name: 'rule-off' })).status, 'inactive')
  assert.equal((await ow.rules.get({ name: 'rule-on' })).status, 'active')
  const rules = await ow.rules.list()
  assert.deepEqual(rules.map(r => r.name).sort(), ['rule-off', 'rule-on'])
  ok('two rules, one disabled')

  const fired = await ow.triggers.invoke({ name: 'fired', params: { y: 'payload' } })
  assert.match(fired.activationId, /^[0-9a-f]{32}$/)
  const record = await waitForActivation(fired.activationId)
  assert.equal(record.name, 'fired')
  assert.deepEqual(record.response.result, { y: 'payload' })
  const logs = record.logs.map(line => JSON.parse(line))
  const byRule = Object.fromEntries(logs.map(entry => [entry.rule, entry]))
  assert.equal(logs.length, 2)
  assert.equal(byRule['guest/rule-on'].success, true)
  assert.equal(byRule['guest/rule-off'].success, false)
  assert.equal(byRule['guest/rule-off'].error,
    "Rule 'guest/rule-off' is inactive, action 'guest/echo-off' was not activated.")
  ok('fire the trigger: its record says what became of each rule')

  const listed = await waitForListed('echo-on', 1)
  assert.equal(listed.length, 1)
  assert.equal(listed[0].activationId, byRule['guest/rule-on'].activationId)
  const run = await waitForActivation(listed[0].activationId)
  assert.equal(run.response.result.p, 'action')
  assert.equal(run.response.result.x, 'trigger')
  assert.equal(run.response.result.y, 'payload')
  assert.deepEqual(await ow.activations.list({ name: 'echo-off' }), [])
  ok("the active rule's activation is listed, with the merged parameters; the disabled one's never ran")

  await ow.rules.delete({ name: 'rule-on' })
  await ow.rules.delete({ name: 'rule-off' })
  const bare = await ow.triggers.get({ name: 'fired' })
  assert.deepEqual(bare.rules, {})
  await ow.triggers.delete({ name: 'fired' })
  assert.deepEqual(await ow.triggers.list(), [])
  ok('delete the rules and the trigger')

  console.log(`${step} passed, 0 failed`)
}

main().catch(error => {
  console.error('not ok -', error && error.stack ? error.stack : error)
  if (error && error.error) console.error(JSON.stringify(error.error))
  console.log('0 passed, 1 failed')
  process.exit(1)
})
