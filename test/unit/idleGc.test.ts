/** collectYoungGarbage: a minor GC in the CLI where Node exposes gc, nothing anywhere else. */
import { afterEach, describe, expect, it } from "vitest"
import { allowIdleGc, collectYoungGarbage } from "../../src/host/idleGc.js"

const slot = globalThis as { gc?: unknown }
const exposed = slot.gc

afterEach(() => {
  slot.gc = exposed
})

describe("collectYoungGarbage", () => {
  it("leaves a process alone until the CLI allows it, then asks the exposed gc for a minor collection", () => {
    const calls: Array<unknown> = []
    slot.gc = (options: unknown) => calls.push(options)
    collectYoungGarbage()
    expect(calls).toEqual([])
    allowIdleGc()
    collectYoungGarbage()
    expect(calls).toEqual([{ type: "minor" }])
  })

  it("does nothing where gc is not exposed", () => {
    allowIdleGc()
    slot.gc = undefined
    expect(() => collectYoungGarbage()).not.toThrow()
  })
})
