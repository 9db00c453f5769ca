/**
 * Templates for real: restored VMs run commands, see only their own scratch
 * disks, and diverge in randomness and clock; a broken template falls back
 * to a cold boot with a warning and is made again; any changed input makes
 * the template stale.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { servicesLayer } from "../../src/layers/App.js"
import { layerWith } from "../../src/layers/PyroConfigLive.js"
import { EnvironmentStore } from "../../src/services/EnvironmentStore.js"
import { KernelStore } from "../../src/services/KernelStore.js"
import { Progress, type ProgressEvent } from "../../src/services/Progress.js"
import { Vmm } from "../../src/services/Vmm.js"
import { bootSpecFor } from "../../src/vm/bootSpec.js"
import { runCommand } from "../../src/vm/execCommand.js"
import { staleBecause, type TemplateInputs, templateKey } from "../../src/vm/template.js"
import { eventually, makeStateDir, qemuProcessesUnder, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

const events: Array<ProgressEvent> = []
const RecordingProgress = Layer.succeed(Progress, { report: (e) => Effect.sync(() => void events.push(e)) })

/** An odd memory size, so these templates are this test's alone. */
const MEM = 200

const sh = (script: string) => ({ command: ["/bin/sh", "-c", script] as const, cwd: "/workspace", timeoutSeconds: 30, maxOutputBytes: 1 << 16 })

const spec = (id: string) =>
  Effect.gen(function*() {
    const assets = yield* (yield* KernelStore).ensure
    const env = yield* (yield* EnvironmentStore).ensure("tiny")
    return bootSpecFor(id, assets, env, { vcpus: 1, memMib: MEM, network: false })
  })

const bootAndRun = (id: string, script: string) =>
  Effect.scoped(Effect.gen(function*() {
    const vm = yield* (yield* Vmm).bootEphemeral(yield* spec(id))
    yield* vm.attach
    const out = yield* runCommand(vm.connection, sh(script))
    // A clone's RAM is the template's file: its QEMU runs without transparent huge pages (hugePages.ts).
    const thp = /^THP_enabled:\s+(\d)/m.exec(Fs.readFileSync(`/proc/${vm.pid}/status`, "utf8"))?.[1]
    return { start: vm.start, stdout: out.stdout.text(), thp }
  }))

// The user's cache (kernel, environments, templates); MEM gives these templates keys no other test uses.
const testLayer = servicesLayer(layerWith({ stateDir }), RecordingProgress)

layer(testLayer, { timeout: "300 seconds", excludeTestServices: true })("templates", (it) => {
  it.effect("a prepared template starts clones that run commands, each on its own scratch disk", () =>
    Effect.gen(function*() {
      const status = yield* (yield* Vmm).prepareTemplate(yield* spec("prep"))
      expect(status.state).toBe("warm")
      const script = "echo \"[$(ls /workspace)]\"; hostname > /workspace/me; cat /workspace/me; cat /proc/sys/kernel/random/uuid"
      const [a, b] = yield* Effect.all([bootAndRun("clone-a", script), bootAndRun("clone-b", script)], { concurrency: 2 })
      expect(a.start).toBe("restored")
      expect(b.start).toBe("restored")
      expect([a.thp, b.thp]).toEqual(["0", "0"])
      const [lsA, meA, uuidA] = a.stdout.split("\n")
      const [lsB, meB, uuidB] = b.stdout.split("\n")
      // An empty /workspace for each: neither sees the other's file.
      expect([lsA, lsB]).toEqual(["[]", "[]"])
      expect(meA).toBe("pyro-clone-a")
      expect(meB).toBe("pyro-clone-b")
      expect(uuidA).not.toBe(uuidB)
      expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
      expect(vmDirsUnder(stateDir)).toEqual([])
    }))

  it.effect("clones never share random bytes or clock readings", () =>
    Effect.gen(function*() {
      const script = "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; cat /proc/sys/kernel/random/boot_id; date +%s"
      const runs = yield* Effect.all([bootAndRun("rng-a", script), bootAndRun("rng-b", script)], { concurrency: 2 })
      const [randA, , clockA] = runs[0]!.stdout.split("\n")
      const [randB, , clockB] = runs[1]!.stdout.split("\n")
      expect(randA).toMatch(/^[0-9a-f]{64}$/)
      expect(randA).not.toBe(randB)
      // The guest clock is the host's, not the template's.
      expect(Math.abs(Number(clockA) - Date.now() / 1000)).toBeLessThan(30)
      expect(Math.abs(Number(clockB) - Date.now() / 1000)).toBeLessThan(30)
    }))

  it.effect("a corrupted template falls back to a cold boot with one warning, and is made again", () =>
    Effect.gen(function*() {
      const status = yield* (yield* Vmm).prepareTemplate(yield* spec("corrupt"))
      Fs.chmodSync(Path.join(status.dir!, "state"), 0o644)
      Fs.writeFileSync(Path.join(status.dir!, "state"), Buffer.alloc(Fs.statSync(Path.join(status.dir!, "state")).size, 0x5a))
      events.length = 0
      const fallback = yield* bootAndRun("after-corrupt", "echo ok")
      // A cold boot's RAM is anonymous: it keeps huge pages.
      expect(fallback).toEqual({ start: "cold", stdout: "ok\n", thp: "1" })
      expect(events.filter((e) => e.phase === "template-fallback").length).toBe(1)
      const again = yield* bootAndRun("rebuilt", "echo ok")
      expect(again.start).toBe("restored")
      expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
    }))

  it.effect("any changed input selects a new template, and the old one reads as stale", () =>
    Effect.gen(function*() {
      const base: TemplateInputs = {
        format: 2,
        environment: "tiny",
        root_digest: "a".repeat(64),
        boot_digest: "b",
        vcpus: 1,
        mem_mib: 256,
        scratch_mib: 8192,
        stage: "attached",
        scratch_journal: false,
        network: false,
        accel: "tcg",
        qemu: "/usr/bin/qemu-system-x86_64:1:2"
      }
      const changes: Array<Partial<TemplateInputs>> = [
        { root_digest: "c".repeat(64) },
        { boot_digest: "agent-rebuilt" },
        { mem_mib: 512 },
        { stage: "boot" },
        { scratch_journal: true },
        { network: true },
        { qemu: "/usr/bin/qemu-system-x86_64:1:3" }
      ]
      for (const change of changes) {
        const changed = { ...base, ...change }
        expect(templateKey(changed)).not.toBe(templateKey(base))
        expect(staleBecause(base, changed)).toEqual(Object.keys(change).map((k) => `${k} changed`))
      }
      const report = yield* (yield* Vmm).templateReport({ ...(yield* spec("report")), memMib: 300 })
      expect(report.state).toBe("stale")
      expect(report.reasons).toContain("mem_mib changed")
    }))
})
