import { describe, expect, it } from "@effect/vitest"
import { CappedOutput, evenBudget, shapeCaptured, shapeOutput } from "../../src/vm/output.js"

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

describe("CappedOutput tail", () => {
  const bytes = (from: number, to: number) => Uint8Array.from({ length: to - from }, (_, i) => (from + i) % 256)

  it("keeps the stream's real end past the head, however it was chunked", () => {
    for (const chunk of [1, 3, 7, 64, 1000]) {
      const out = new CappedOutput(10, 16)
      const all = bytes(0, 1000)
      for (let i = 0; i < all.byteLength; i += chunk) out.push(all.subarray(i, i + chunk))
      expect([...out.tail(16)]).toEqual([...all.subarray(1000 - 16)])
      expect([...out.tail(5)]).toEqual([...all.subarray(995)])
      expect([...out.bytes()]).toEqual([...all.subarray(0, 10)])
    }
  })

  it("joins the head's end to the overflow before anything was dropped", () => {
    const out = new CappedOutput(10, 16)
    out.push(bytes(0, 14))
    expect([...out.tail(8)]).toEqual([...bytes(6, 14)])
    expect([...out.tail(100)]).toEqual([...bytes(0, 14)])
  })
})

describe("shapeCaptured", () => {
  const capture = (text: string, cap = 1 << 20) => {
    const out = new CappedOutput(cap)
    out.push(new TextEncoder().encode(text))
    return out
  }

  it("is the whole text when it fits", () => {
    expect(shapeCaptured("stdout", capture("hello\n"), evenBudget(100))).toEqual({ text: "hello\n", truncated: false })
  })

  it("keeps head and tail with a marker that counts what was left out", () => {
    const text = "a".repeat(1000) + "MIDDLE" + "z".repeat(1000)
    const shaped = shapeCaptured("stdout", capture(text, 4096), evenBudget(200), "all of it is in /run/pyro/commands/3/stdout")
    expect(shaped.truncated).toBe(true)
    expect(shaped.text.startsWith("a".repeat(100))).toBe(true)
    expect(shaped.text.endsWith("z".repeat(100))).toBe(true)
    expect(shaped.text).not.toContain("MIDDLE")
    expect(shaped.text).toContain("[pyro: 1806 of 2006 bytes of stdout left out here; all of it is in /run/pyro/commands/3/stdout]")
  })

  it("keeps the real tail even past the in-memory cap", () => {
    const shaped = shapeCaptured("stderr", capture("x".repeat(5000) + "THE END", 64), evenBudget(40))
    expect(shaped.text.endsWith("THE END")).toBe(true)
    expect(shaped.text).toContain("of 5007 bytes of stderr left out here")
  })

  it("never cuts a UTF-8 character in two", () => {
    const shaped = shapeCaptured("stdout", capture("é".repeat(1000)), evenBudget(101))
    expect(shaped.text).not.toContain("\ufffd")
  })
})

describe("shapeOutput edges", () => {
  const bytes = (text: string) => new TextEncoder().encode(text)

  it("never repeats bytes when the held head is shorter than the budget's head", () => {
    // A 1000-byte head held of a 5000-byte stream, its last 400 bytes kept apart.
    const stream = "a".repeat(1000) + "b".repeat(3600) + "c".repeat(400)
    const shaped = shapeOutput({
      name: "stdout",
      head: bytes(stream.slice(0, 1000)),
      tail: bytes(stream.slice(-400)),
      total: 5000,
      budget: { head: 8000, tail: 8000 }
    })
    expect(shaped.text).toBe(`${"a".repeat(1000)}\n[pyro: 3600 of 5000 bytes of stdout left out here]\n${"c".repeat(400)}`)
  })

  it("cuts binary output (no UTF-8 boundaries) where asked, not at its ends", () => {
    const binary = new Uint8Array(100_000).fill(0x80)
    const shaped = shapeOutput({ name: "stdout", head: binary, tail: binary, total: binary.byteLength, budget: evenBudget(1000) })
    expect(shaped.text).toContain("[pyro: 99000 of 100000 bytes of stdout left out here]")
  })
})
