import { describe, expect, it } from "vitest"
import { makeRedactor } from "../../src/workspace/secrets/redact.js"

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8")
const bytes = (s: string) => new Uint8Array(Buffer.from(s, "utf8"))

describe("secret redaction", () => {
  const r = makeRedactor(["hunter22", "hunter2222", "päss-wört"])

  it("replaces every occurrence, the longest value first where two start together", () => {
    expect(r.text("a hunter22 b hunter2222 c päss-wört")).toBe("a [REDACTED] b [REDACTED] c [REDACTED]")
    expect(r.text("hunter22hunter22")).toBe("[REDACTED][REDACTED]")
    expect(r.text("hunter2")).toBe("hunter2")
  })

  it("catches a value split across chunks at every position, and inside a UTF-8 sequence", () => {
    for (const whole of ["xx hunter22 yy", "päss-wört!", "hunter2222"]) {
      const b = bytes(whole)
      for (let cut = 0; cut <= b.length; cut++) {
        const s = r.stream()
        const out = Buffer.concat([s.push(b.subarray(0, cut)), s.push(b.subarray(cut)), s.end()])
        expect(text(out)).toBe(r.text(whole))
      }
    }
  })

  it("holds back only what could start a value, and gives it back at the end", () => {
    const s = r.stream()
    expect(text(s.push(bytes("ok hunt")))).toBe("ok ")
    expect(text(s.push(bytes("ing")))).toBe("hunting")
    expect(text(s.push(bytes("hun")))).toBe("")
    expect(text(s.end())).toBe("hun")
  })

  it("redacts a window from an offset, marking a value that began before it", () => {
    const window = bytes("..hunter22 tail")
    expect(text(r.from(window, 5))).toBe("[REDACTED] tail")
    expect(text(r.from(window, 0))).toBe("..[REDACTED] tail")
    expect(text(r.from(window, 11))).toBe("tail")
    expect(r.pendingTail(bytes("abc hunte"))).toBe(5)
    expect(r.pendingTail(bytes("abc"))).toBe(0)
  })

  it("moves a read's end out of a value: past it when it is all there, before it while it may still come", () => {
    const window = bytes("ab hunter22 cd hun")
    expect(r.safeCut(window, 5, false)).toBe(11) // inside the value: past it
    expect(r.safeCut(window, 12, false)).toBe(12) // outside any value
    expect(r.safeCut(window, 17, false)).toBe(15) // inside what may become one: before it
    expect(r.safeCut(window, 17, true)).toBe(17) // nothing more will come
  })

  it("does nothing without secrets", () => {
    const none = makeRedactor([])
    expect(none.active).toBe(false)
    expect(none.text("anything")).toBe("anything")
  })
})
