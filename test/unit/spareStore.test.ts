/**
 * The spares' store without VMs (src/vm/spares/store.ts): which shapes can have
 * spares, a claim taking a spare once, and reaps that leave ready spares alone
 * but take idle ones and ones whose filler died.
 */
import { afterAll, describe, expect, it } from "vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { BootSpec } from "../../src/services/Vmm.js"
import { selfIdentity } from "../../src/vm/procfs.js"
import {
  claimSpare,
  countSpares,
  MAX_SPARES_TOTAL,
  reapSpares,
  roomForSpare,
  type SpareRecord,
  spareKey,
  sparePaths,
  sparesReport,
  writeSpareRecord
} from "../../src/vm/spares/store.js"
import { vmPaths } from "../../src/vm/vmDir.js"
import { claimPending, pendingMarker } from "../../src/vm/spares/spawnFiller.js"

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-spares-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const spec: BootSpec = {
  id: "x",
  kernel: "/k",
  initrd: "/i",
  rootImage: "/r",
  vcpus: 1,
  memMib: 256,
  network: false,
  template: { environment: "tiny", rootDigest: "a", bootDigest: "b" }
}
const shape = { environment: "tiny", vcpu_count: 1, mem_mib: 256 }
const host = (scratchMib: number) => ({ scratchMib, qemu: "/usr/bin/qemu-system-x86_64", accel: "auto", templates: true })
const gone = { pid: 2 ** 22 + 1, startTime: 1 }

const addSpare = (stateDir: string, key: string, id: string, record: Partial<SpareRecord>) => {
  const paths = sparePaths(stateDir, key, id)
  Fs.mkdirSync(paths.dir, { recursive: true })
  Effect.runSync(writeSpareRecord(paths, {
    id,
    shape,
    state: "ready",
    filler: gone,
    // This test process stands in for a live QEMU; with no QEMU binary named, nothing is ever killed.
    vmm: selfIdentity(),
    created_at: new Date().toISOString(),
    ...record
  }))
  return paths
}

describe("spare store", () => {
  it("keys a shape by what its guest is made of and its sizing; no spares with a network or more channels", () => {
    const key = spareKey(spec, host(8192))!
    expect(key).toMatch(/^[0-9a-f]{16}$/)
    expect(spareKey({ ...spec, id: "other" }, host(8192))).toBe(key)
    expect(spareKey({ ...spec, memMib: 512 }, host(8192))).not.toBe(key)
    expect(spareKey({ ...spec, template: { ...spec.template!, rootDigest: "c" } }, host(8192))).not.toBe(key)
    expect(spareKey(spec, host(4096))).not.toBe(key)
    // Another QEMU, accelerator or template setting: spares of one never serve the other.
    expect(spareKey(spec, { ...host(8192), qemu: "/opt/qemu/bin/qemu-system-x86_64" })).not.toBe(key)
    expect(spareKey(spec, { ...host(8192), accel: "tcg" })).not.toBe(key)
    expect(spareKey(spec, { ...host(8192), templates: false })).not.toBe(key)
    expect(spareKey({ ...spec, network: true }, host(8192))).toBeUndefined()
    expect(spareKey({ ...spec, channels: 2 }, host(8192))).toBeUndefined()
  })

  it("gives a spare to one claim only, oldest first, and moves it to vms/<id>", () => {
    const stateDir = Fs.mkdtempSync(Path.join(root, "claim-"))
    const key = spareKey(spec, host(8192))!
    addSpare(stateDir, key, "00000000000b", { created_at: "2026-01-02T00:00:00.000Z" })
    addSpare(stateDir, key, "00000000000a", { created_at: "2026-01-01T00:00:00.000Z" })
    addSpare(stateDir, key, "00000000000c", { state: "booting", filler: selfIdentity(), vmm: null })
    expect(countSpares(stateDir, key)).toBe(3)
    expect(Option.map(claimSpare(stateDir, key), (c) => c.id)).toEqual(Option.some("00000000000a"))
    expect(Fs.existsSync(Path.join(vmPaths(stateDir, "00000000000a").dir, "spare.json"))).toBe(true)
    expect(Option.map(claimSpare(stateDir, key), (c) => c.id)).toEqual(Option.some("00000000000b"))
    // One being made is never claimed.
    expect(claimSpare(stateDir, key)).toEqual(Option.none())
    expect(sparesReport(stateDir)).toEqual([{ key, ...shape, ready: 0, booting: 1, target: 0 }])
  })

  it("bounds all spares together, in number and in guest memory, whatever shapes were asked for", () => {
    const stateDir = Fs.mkdtempSync(Path.join(root, "room-"))
    const key = spareKey(spec, host(8192))!
    expect(roomForSpare(stateDir, shape)).toBe(true)
    addSpare(stateDir, key, "0000000000b1", { shape: { ...shape, mem_mib: 4096 } })
    addSpare(stateDir, key, "0000000000b2", { shape: { ...shape, mem_mib: 3840 } })
    expect(roomForSpare(stateDir, shape)).toBe(true)
    expect(roomForSpare(stateDir, { ...shape, mem_mib: 512 })).toBe(false)
    Effect.runSync(reapSpares(stateDir, { idleMs: 0, qemu: undefined, all: true }))
    for (let i = 0; i < MAX_SPARES_TOTAL; i++) addSpare(stateDir, key, `0000000000${(0xc0 + i).toString(16)}`, { shape: { ...shape, mem_mib: 128 } })
    expect(roomForSpare(stateDir, { ...shape, mem_mib: 128 })).toBe(false)
  })

  it("reaps idle spares, dead ones and ones whose filler died, and leaves the rest", () => {
    const stateDir = Fs.mkdtempSync(Path.join(root, "reap-"))
    const key = spareKey(spec, host(8192))!
    const old = new Date(Date.now() - 3_600_000).toISOString()
    addSpare(stateDir, key, "0000000000a1", {})
    addSpare(stateDir, key, "0000000000a2", { created_at: old })
    addSpare(stateDir, key, "0000000000a3", { vmm: gone })
    addSpare(stateDir, key, "0000000000a4", { state: "booting", vmm: null })
    addSpare(stateDir, key, "0000000000a5", { state: "booting", filler: selfIdentity(), vmm: null })
    const reaped = Effect.runSync(reapSpares(stateDir, { idleMs: 600_000, qemu: undefined }))
    expect(reaped.sort()).toEqual(["0000000000a2", "0000000000a3", "0000000000a4"])
    expect(countSpares(stateDir, key)).toBe(2)
    expect(Fs.readdirSync(Path.join(stateDir, "spares", key)).sort()).toEqual(["0000000000a1", "0000000000a5"])
    expect(Effect.runSync(reapSpares(stateDir, { idleMs: 600_000, qemu: undefined, all: true })).sort()).toEqual([
      "0000000000a1",
      "0000000000a5"
    ])
  })
})

describe("filler start-up", () => {
  it("lets one process start a shape's filler until that filler takes up the work, or 60 s pass", () => {
    const stateDir = Fs.mkdtempSync(Path.join(root, "pending-"))
    const key = "0123456789abcdef"
    expect(claimPending(stateDir, key)).toBe(true)
    expect(claimPending(stateDir, key)).toBe(false)
    // The filler removes the marker once it holds the shape's lock (or found it held).
    Fs.rmSync(pendingMarker(stateDir, key))
    expect(claimPending(stateDir, key)).toBe(true)
    // A filler that died before that: its marker stops nobody after 60 s.
    const old = new Date(Date.now() - 61_000)
    Fs.utimesSync(pendingMarker(stateDir, key), old, old)
    expect(claimPending(stateDir, key)).toBe(true)
    expect(claimPending(stateDir, key)).toBe(false)
  })
})
