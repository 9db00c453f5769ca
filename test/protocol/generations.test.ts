/**
 * The wire changes only by a new generation. Each generation's message table
 * is committed as gen-N.json beside this file; the current constants must be
 * exactly the current generation's snapshot, and every earlier snapshot must
 * still hold (a later generation adds messages and fields, never renumbers
 * or removes one), so an agent booted by an older pyro keeps working.
 *
 * After a deliberate change: bump PROTOCOL_GENERATION (constants.ts and
 * guest/agent/protocol.h), then write the new snapshot with
 * `PYRO_WRITE_PROTOCOL_SNAPSHOT=1 npx vitest run test/protocol/generations.test.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as C from "../../src/vm/protocol/constants.js"

interface Snapshot {
  readonly generation: number
  readonly frame: Readonly<Record<string, number>>
  readonly messages: Readonly<Record<string, number>>
  readonly fields: Readonly<Record<string, number>>
  readonly fds: Readonly<Record<string, number>>
}

const current: Snapshot = {
  generation: C.PROTOCOL_GENERATION,
  frame: {
    magic: C.FRAME_MAGIC,
    header_bytes: C.FRAME_HEADER_BYTES,
    max_payload_bytes: C.MAX_FRAME_PAYLOAD_BYTES,
    max_nonce_bytes: C.MAX_NONCE_BYTES,
    field_header_bytes: C.FIELD_HEADER_BYTES
  },
  messages: C.MessageType,
  fields: C.FieldKey,
  fds: C.Fd
}

const dir = import.meta.dirname
const snapshotPath = (generation: number) => Path.join(dir, `gen-${generation}.json`)

if (process.env["PYRO_WRITE_PROTOCOL_SNAPSHOT"] === "1" && !Fs.existsSync(snapshotPath(C.PROTOCOL_GENERATION))) {
  Fs.writeFileSync(snapshotPath(C.PROTOCOL_GENERATION), `${JSON.stringify(current, null, 2)}\n`)
}

const snapshots = Fs.readdirSync(dir)
  .filter((n) => /^gen-\d+\.json$/.test(n))
  .map((n) => JSON.parse(Fs.readFileSync(Path.join(dir, n), "utf8")) as Snapshot)
  .sort((a, b) => a.generation - b.generation)

describe("protocol generations", () => {
  it("the constants are exactly the current generation's committed table", () => {
    expect(Fs.existsSync(snapshotPath(C.PROTOCOL_GENERATION)), `commit test/protocol/gen-${C.PROTOCOL_GENERATION}.json`).toBe(true)
    expect(JSON.parse(JSON.stringify(current))).toEqual(snapshots.at(-1))
  })

  it("every generation keeps what the ones before it had", () => {
    for (let i = 1; i < snapshots.length; i++) {
      const [older, newer] = [snapshots[i - 1]!, snapshots[i]!]
      for (const table of ["frame", "messages", "fields", "fds"] as const) {
        for (const [name, value] of Object.entries(older[table])) {
          expect([newer.generation, table, name, newer[table][name]]).toEqual([newer.generation, table, name, value])
        }
      }
    }
  })

  it("the host accepts every committed generation down to its minimum", () => {
    expect(C.MIN_PROTOCOL_GENERATION).toBeGreaterThanOrEqual(1)
    expect(C.MIN_PROTOCOL_GENERATION).toBeLessThanOrEqual(C.PROTOCOL_GENERATION)
    expect(snapshots.map((s) => s.generation)).toEqual(
      Array.from({ length: C.PROTOCOL_GENERATION }, (_, i) => i + 1)
    )
  })
})
