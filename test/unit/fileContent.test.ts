/** How workspace_file_read returns bytes: UTF-8 text when it is, base64 otherwise, saying which. */
import { describe, expect, it } from "@effect/vitest"
import { textOrBase64 } from "../../src/workspace/ops/files.js"

const bytes = (s: string) => new TextEncoder().encode(s)

describe("file content", () => {
  it("is text when UTF-8, base64 when not", () => {
    expect(textOrBase64(bytes("héllo\n"), false)).toEqual({ content: "héllo\n", encoding: "utf-8" })
    expect(textOrBase64(new Uint8Array([0xff, 0, 1]), false)).toEqual({ content: "/wAB", encoding: "base64" })
  })

  it("drops a character cut in half by the read's limit, but only when the read was cut", () => {
    const cut = bytes("ab€").subarray(0, 4) // € is 3 bytes: 2 of them kept
    expect(textOrBase64(cut, true)).toEqual({ content: "ab", encoding: "utf-8" })
    expect(textOrBase64(cut, false).encoding).toBe("base64")
  })
})
