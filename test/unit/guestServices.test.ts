/** The host's parser of the guest's service records (src/workspace/guestServices.ts): what a hostile guest might print is refused. */
import { describe, expect, it } from "@effect/vitest"
import { parseServiceRecords } from "../../src/workspace/guestServices.js"

const record = (over: Partial<Record<string, string>> = {}) => {
  const f = {
    name: "web", state: "running", command: "python3 -m http.server", cwd: "/workspace", readyType: "tcp",
    readyTarget: "127.0.0.1:8000", pid: "42", pgid: "42", started: "1700000000000", ready: "1700000000500",
    ended: "", exit: "", signal: "", reason: "",
    ...over
  }
  return ["service", f.name, f.state, f.command, f.cwd, f.readyType, f.readyTarget, f.pid, f.pgid, f.started, f.ready,
    f.ended, f.exit, f.signal, f.reason]
}
const bytes = (...fields: Array<string>) => new TextEncoder().encode(fields.map((f) => `${f}\0`).join(""))

describe("parseServiceRecords", () => {
  it("reads records and their end", () => {
    const stopped = record({ name: "b", state: "stopped", ended: "1700000001000", exit: "143", signal: "15", reason: "sigterm" })
    const parsed = parseServiceRecords(bytes(...record(), ...stopped, "end", "2"))
    expect(parsed).toMatchObject([
      { name: "web", state: "running", pid: 42, readyType: "tcp", readyAt: 1700000000500, endedAt: null, exitCode: null },
      { name: "b", state: "stopped", exitCode: 143, signal: 15, stopReason: "sigterm" }
    ])
    expect(parseServiceRecords(bytes("end", "0"))).toEqual([])
  })

  it("refuses what a well-behaved tool never prints", () => {
    const cases: Array<Array<string>> = [
      [...record({ name: "../etc" }), "end", "1"],
      [...record({ state: "zombie" }), "end", "1"],
      [...record({ readyType: "ftp" }), "end", "1"],
      [...record({ reason: "whatever" }), "end", "1"],
      [...record({ pid: "-1" }), "end", "1"],
      [...record({ pid: "99999999999" }), "end", "1"],
      [...record({ exit: "256", ended: "1", state: "failed", reason: "exited" }), "end", "1"],
      [...record({ signal: "65", ended: "1", state: "failed", reason: "exited" }), "end", "1"],
      [...record({ started: "" }), "end", "1"],
      [...record({ started: "99999999999999999" }), "end", "1"],
      [...record({ ended: "1700000001000" }), "end", "1"], // running, yet ended
      [...record({ state: "stopped" }), "end", "1"], // stopped, never ended
      [...record(), "end", "2"], // a count that is not the records'
      [...record(), ...record(), "end", "2"], // a name twice
      [...record()], // no end
      [...record(), "end", "1", "extra"],
      record().slice(0, 10)
    ]
    for (const fields of cases) expect(typeof parseServiceRecords(bytes(...fields))).toBe("string")
    // An unended last field.
    const unended = bytes(...record(), "end", "1")
    expect(typeof parseServiceRecords(unended.subarray(0, unended.byteLength - 1))).toBe("string")
  })
})
