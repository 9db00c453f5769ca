/** guest/agent/protocol.h is the wire's reference; the host's constants must equal it. */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as C from "../../src/vm/protocol/constants.js"

const header = Fs.readFileSync(Path.resolve(import.meta.dirname, "../../guest/agent/protocol.h"), "utf8")
const defines = new Map<string, string>()
for (const match of header.matchAll(/^#define\s+(PYRO_\w+)\s+(.+?)\s*(?:\/\*.*)?$/gm)) defines.set(match[1]!, match[2]!)

const numeric = (name: string) => {
  const text = defines.get(name)
  if (text === undefined) throw new Error(`${name} missing from protocol.h`)
  // Only simple forms appear: 0x1234u, 12u, (1024u * 1024u).
  return Function(`return ${text.replace(/(\d)u\b/g, "$1")}`)() as number
}

describe("protocol.h and constants.ts", () => {
  it("agree on the frame layout and limits", () => {
    expect(numeric("PYRO_PROTOCOL_GENERATION")).toBe(C.PROTOCOL_GENERATION)
    expect(numeric("PYRO_FRAME_MAGIC")).toBe(C.FRAME_MAGIC)
    expect(numeric("PYRO_FRAME_HEADER_BYTES")).toBe(C.FRAME_HEADER_BYTES)
    expect(numeric("PYRO_MAX_FRAME_PAYLOAD_BYTES")).toBe(C.MAX_FRAME_PAYLOAD_BYTES)
    expect(numeric("PYRO_MAX_NONCE_BYTES")).toBe(C.MAX_NONCE_BYTES)
    expect(numeric("PYRO_MAX_SHELLS")).toBe(C.MAX_SHELLS)
    expect(numeric("PYRO_MAX_FREEZE_MS")).toBe(C.MAX_FREEZE_MS)
    expect(numeric("PYRO_SHELL_RING_BYTES")).toBe(C.SHELL_RING_BYTES)
    expect(numeric("PYRO_SHELL_READ_MAX_BYTES")).toBe(C.SHELL_READ_MAX_BYTES)
    expect(numeric("PYRO_SHELL_MAX_SIZE")).toBe(C.SHELL_MAX_SIZE)
    expect(numeric("PYRO_SHELL_WAIT_CAP_MS")).toBe(C.SHELL_WAIT_CAP_MS)
  })

  it("agree on every message type and field key", () => {
    for (const [name, value] of Object.entries(C.MessageType)) expect([name, numeric(`PYRO_MSG_${name}`)]).toEqual([name, value])
    for (const [name, value] of Object.entries(C.FieldKey)) expect([name, numeric(`PYRO_F_${name}`)]).toEqual([name, value])
    const hMessages = [...defines.keys()].filter((k) => k.startsWith("PYRO_MSG_")).length
    const hFields = [...defines.keys()].filter((k) => k.startsWith("PYRO_F_")).length
    expect(hMessages).toBe(Object.keys(C.MessageType).length)
    expect(hFields).toBe(Object.keys(C.FieldKey).length)
  })

  it("agree on names the host puts on the QEMU command line", () => {
    expect(defines.get("PYRO_PORT_NAME")).toBe(`"${C.PORT_NAME}"`)
    expect(defines.get("PYRO_PORT_PREFIX")).toBe(`"${C.PORT_PREFIX}"`)
    expect(defines.get("PYRO_ROOT_SERIAL")).toBe(`"${C.ROOT_SERIAL}"`)
  })
})
