/** collectYoungGarbage: a minor GC where Node exposes gc (bin/pyro.js), nothing elsewhere. */
import { afterEach, describe, expect, it } from "vitest"
import { collectYoungGarbage } from "../../src/host/idleGc.js"

const global = globalThis as { gc?: unknown }
const exposed = global.gc

afterEach(() => {
  global.gc = exposed
})

describe("collectYoungGarbage", () => {
  it("asks the exposed gc for a minor collection", () => {
    const calls: Array<unknown> = []
    global.gc = (options: unknown) => calls.push(options)
    collectYoungGarbage()
    expect(calls).toEqual([{ type: "minor" }])
  })

  it("does nothing where gc is not exposed", () => {
    global.gc = undefined
    expect(() => collectYoungGarbage()).not.toThrow()
  })
})
