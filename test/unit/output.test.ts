import { describe, expect, it } from "@effect/vitest"
import { CappedOutput } from "../../src/vm/output.js"

describe("CappedOutput", () => {
  it("keeps bytes up to the cap, counts the rest and says it truncated", () => {
    const out = new CappedOutput(5)
    out.push(new Uint8Array([1, 2, 3]))
    out.push(new Uint8Array([4, 5, 6, 7]))
    out.push(new Uint8Array([8]))
    expect([...out.bytes()]).toEqual([1, 2, 3, 4, 5])
    expect(out.total).toBe(8)
    expect(out.truncated).toBe(true)
  })

  it("is exact below the cap", () => {
    const out = new CappedOutput(100)
    out.push(new Uint8Array([0xff, 0xfe]))
    expect(out.truncated).toBe(false)
    expect([...out.bytes()]).toEqual([0xff, 0xfe])
  })
})
