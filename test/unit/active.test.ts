/**
 * The active-VM count: a stopped VM counts only while a live process holds a
 * boot claim on it; a claim left by a dead process holds nothing.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { countActiveVms } from "../../src/vm/active.js"
import { selfIdentity } from "../../src/vm/procfs.js"
import { type PersistentRecord, removeBootClaim, writeBootClaim, writeRecord } from "../../src/vm/records.js"
import { vmPaths } from "../../src/vm/vmDir.js"
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
})
