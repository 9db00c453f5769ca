/**
 * The active-VM count: a stopped VM counts only while a live process holds a
 * boot claim on it; a claim left by a dead process holds nothing. An ephemeral
 * VM counts only by its run's claim, so warm-pool and template VMs never do.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { machineKinds } from "../../src/layers/machineKinds.js"
import { removeBootClaim, writeBootClaim } from "../../src/machine/claims.js"
import { countActiveVms as countIn } from "../../src/machine/limit.js"
import { selfIdentity } from "../../src/vm/procfs.js"
import { type PersistentRecord, writeRecord } from "../../src/vm/record.js"
import { vmPaths, writeEphemeralRecord } from "../../src/vm/vmDir.js"
import { workspacePaths } from "../../src/workspace/paths.js"
import { scopedTempDir } from "../support/tempDir.js"

const stoppedVm = (id: string): PersistentRecord => ({
  id,
  kind: "persistent",
  environment: "tiny",
  state: "stopped",
  vcpu_count: 1,
  mem_mib: 256,
  network: false,
  allow_host_compat: false,
  execution_mode: "guest_virtio_serial",
  ttl_seconds: 600,
  created_at: new Date().toISOString(),
  expires_at: new Date(Date.now() + 600_000).toISOString(),
  started_at: null,
  boot_ms: null,
  vmm: null,
  owner: selfIdentity(),
  scratch_formatted: true
})

const countActiveVms = (stateDir: string) => countIn(stateDir, machineKinds)

describe("countActiveVms", () => {
  it.scoped("counts a stopped VM only while a live process holds its boot claim", () =>
    Effect.gen(function*() {
      const stateDir = yield* scopedTempDir("pyro-active-")
      const dir = vmPaths(stateDir, "a1").dir
      Fs.mkdirSync(dir, { recursive: true })
      yield* writeRecord(stateDir, stoppedVm("a1"))
      expect(countActiveVms(stateDir)).toBe(0)
      yield* writeBootClaim(dir)
      expect(countActiveVms(stateDir)).toBe(1)
      yield* removeBootClaim(dir)
      expect(countActiveVms(stateDir)).toBe(0)
      // A claim whose process is gone (a pid that cannot be running with this start time).
      Fs.writeFileSync(Path.join(dir, "boot-claim.json"), JSON.stringify({ pid: process.pid, startTime: 1 }))
      expect(countActiveVms(stateDir)).toBe(0)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("counts an ephemeral VM only while its run holds a claim", () =>
    Effect.gen(function*() {
      const stateDir = yield* scopedTempDir("pyro-active-")
      const paths = vmPaths(stateDir, "e1")
      Fs.mkdirSync(paths.dir, { recursive: true })
      // What a warm-pool or template VM leaves: a record naming a live owner, and no claim.
      yield* writeEphemeralRecord(paths, undefined)
      expect(countActiveVms(stateDir)).toBe(0)
      yield* writeBootClaim(paths.dir)
      expect(countActiveVms(stateDir)).toBe(1)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("counts a workspace by its record's vmm alone: a live QEMU or a boot claim, whatever else the record holds", () =>
    Effect.gen(function*() {
      const stateDir = yield* scopedTempDir("pyro-active-")
      const paths = workspacePaths(stateDir, "w1")
      Fs.mkdirSync(paths.dir, { recursive: true })
      const write = (record: unknown) => Fs.writeFileSync(paths.record, typeof record === "string" ? record : JSON.stringify(record))
      // This process stands in for the workspace's QEMU: its pid and start time are alive.
      write({ id: "w1", vmm: selfIdentity(), anything: "else" })
      expect(countActiveVms(stateDir)).toBe(1)
      write({ id: "w1", vmm: { pid: process.pid, startTime: 1 } })
      expect(countActiveVms(stateDir)).toBe(0)
      write({ id: "w1", vmm: null })
      expect(countActiveVms(stateDir)).toBe(0)
      yield* writeBootClaim(paths.dir)
      expect(countActiveVms(stateDir)).toBe(1)
      yield* removeBootClaim(paths.dir)
      // Being written: not JSON yet, or no vmm field at all.
      write("{\"id\": \"w1\", \"vm")
      expect(countActiveVms(stateDir)).toBe(0)
      write({ id: "w1" })
      expect(countActiveVms(stateDir)).toBe(0)
    }).pipe(Effect.provide(NodeContext.layer)))
})
