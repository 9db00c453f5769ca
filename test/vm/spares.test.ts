/**
 * Spare VMs (src/vm/spares/), through the real CLI, each call a new pyro
 * process on one state directory: a spare is claimed by one run only, is
 * replaced in the background, expires when idle, stays outside the active-VM
 * limit, and never outlives a pyro killed with -9 (the next start reaps it).
 */
import { afterAll, describe, expect, it } from "vitest"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { VmRunInput } from "../../src/contract/vm.js"
import { VmManager } from "../../src/services/VmManager.js"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { isAlive } from "../../src/vm/procfs.js"
import { qemuExecutable } from "../../src/vm/vmmIdentity.js"
import { countSpares, listSpares, reapSpares } from "../../src/vm/spares/store.js"
import { cliFor } from "../support/cli.js"
import { eventually as eventuallyEffect, makeStateDir, pyroBin, qemuProcessesUnder, testLayer, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const { json, pyro } = cliFor(stateDir)
const SHAPE = ["tiny", "--mem-mib", "256"]

const ready = () => listSpares(stateDir).filter((e) => e.record._tag === "Some" && e.record.value.state === "ready")
const spareIds = () => ready().map((e) => Path.basename(e.dir)).sort()
const eventually = (check: () => boolean, timeoutMs?: number) => Effect.runPromise(eventuallyEffect(check, timeoutMs))
const reapAll = () => Effect.runSync(reapSpares(stateDir, { idleMs: 0, qemu: qemuExecutable("qemu-system-x86_64"), all: true }))

afterAll(() => {
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

describe("spare VMs", () => {
  it("are made by `pyro prepare --spares`, shown by doctor, claimed once each, and replaced", async () => {
    const prepared = await json("prepare", ...SHAPE, "--spares", "2")
    expect(prepared.code, prepared.stderr).toBe(0)
    expect(prepared.data.spares).toEqual({ target: 2, ready: 2 })
    const before = spareIds()
    expect(before).toHaveLength(2)

    const doctor = await json("doctor", "--no-boot")
    expect(doctor.data.spares).toEqual([
      expect.objectContaining({ environment: "tiny", vcpu_count: 1, mem_mib: 256, ready: 2, booting: 0, target: 2 })
    ])

    // Three runs at once for two spares: each spare serves exactly one of them; the third boots
    // (or, on a slow host, takes a spare the first refill made meanwhile).
    const runs = await Promise.all([1, 2, 3].map(() => json("run", ...SHAPE, "--", "hostname")))
    for (const r of runs) expect(r.code, r.stderr).toBe(0)
    const hosts = runs.map((r) => String(r.data.stdout).trim().replace(/^pyro-/, ""))
    expect(new Set(hosts).size).toBe(3)
    expect(hosts.filter((h) => before.includes(h)).sort()).toEqual(before)
    expect(runs.filter((r) => r.data.boot_ms === 0).length).toBeGreaterThanOrEqual(2)
    // Used once: gone from the spares, their QEMUs killed, their directories removed.
    for (const id of before) expect(spareIds()).not.toContain(id)
    expect(vmDirsUnder(stateDir)).toEqual([])

    // Replaced behind the runs, by a filler of their own.
    expect(await eventually(() => ready().length === 2 && spareIds().every((id) => !before.includes(id)), 90_000)).toBe(true)
    expect(await eventually(() => qemuProcessesUnder(stateDir).length === 2, 10_000)).toBe(true)
  }, 240_000)

  it("stay outside the active-VM limit, and the limit's error counts them", async () => {
    expect(ready()).toHaveLength(2)
    const limited = { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_MAX_ACTIVE_VMS: "1" }
    const held = await json("workspace", "create", "tiny", "--mem-mib", "256")
    expect(held.code, held.stderr).toBe(0)
    try {
      const refused = await new Promise<string>((resolve) => {
        const child = spawn(process.execPath, [pyroBin, "run", ...SHAPE, "--", "true"], { env: limited })
        let err = ""
        child.stderr.on("data", (d) => (err += d))
        child.on("close", () => resolve(err))
      })
      expect(refused).toMatch(/too many active VMs: 1 of 1 allowed \(and 2 spare VMs, which do not count\)/)
      expect(ready()).toHaveLength(2)
    } finally {
      await pyro("workspace", "delete", String(held.data.workspace_id))
    }
  }, 120_000)

  it("never outlive a pyro killed with -9: the next start reaps a half-made or half-used one", async () => {
    // A run holding a claimed spare, killed: its QEMU is not its child, so only the next start can end it.
    const victim = spawn(process.execPath, [pyroBin, "run", ...SHAPE, "--", "sleep", "300"], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_SPARES: "0" },
      stdio: "ignore"
    })
    expect(await eventually(() => vmDirsUnder(stateDir).length === 1, 30_000)).toBe(true)
    const claimed = vmDirsUnder(stateDir)[0]!
    expect(await eventually(() => Fs.existsSync(Path.join(stateDir, "vms", claimed, "vm.json")), 10_000)).toBe(true)
    victim.kill("SIGKILL")

    // A filler killed while it makes a spare.
    const filler = spawn(process.execPath, [pyroBin, "prepare", ...SHAPE, "--spares", "3"], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir },
      stdio: "ignore"
    })
    expect(
      await eventually(() => listSpares(stateDir).some((e) => e.record._tag === "Some" && e.record.value.state === "booting"), 60_000)
    ).toBe(true)
    filler.kill("SIGKILL")
    const halfMade = listSpares(stateDir).filter((e) => e.record._tag === "Some" && e.record.value.state === "booting")
    expect(halfMade.length).toBeGreaterThan(0)

    // The next pyro start reaps both; the ready spares stay, claimable.
    const doctor = await json("doctor", "--no-boot")
    expect(doctor.code, doctor.stderr).toBe(0)
    expect(vmDirsUnder(stateDir)).toEqual([])
    for (const entry of halfMade) expect(Fs.existsSync(entry.dir)).toBe(false)
    const vmms = ready().map((e) => e.record._tag === "Some" ? e.record.value.vmm! : undefined)
    expect(await eventually(() => qemuProcessesUnder(stateDir).length === vmms.length, 10_000)).toBe(true)
    for (const vmm of vmms) expect(isAlive(vmm!)).toBe(true)
  }, 180_000)

  it("expire when idle past PYRO_SPARE_IDLE_SECONDS, and `--spares 0` removes them", async () => {
    expect(countSpares(stateDir)).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 1500))
    const r = await pyro("doctor", "--no-boot")
    expect(r.code).toBe(0) // with the default idle limit, nothing goes
    expect(countSpares(stateDir)).toBeGreaterThan(0)
    const expired = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [pyroBin, "doctor", "--no-boot"], {
        env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_SPARE_IDLE_SECONDS: "1" },
        stdio: "ignore"
      })
      child.on("close", resolve)
    })
    expect(expired).toBe(0)
    expect(countSpares(stateDir)).toBe(0)
    expect(await eventually(() => qemuProcessesUnder(stateDir).length === 0, 10_000)).toBe(true)

    // The operator's target stays until set to 0: the next run's filler makes them again.
    const run = await json("run", ...SHAPE, "--", "true")
    expect(run.code, run.stderr).toBe(0)
    expect(await eventually(() => ready().length >= 2, 90_000)).toBe(true)
    const removed = await json("prepare", ...SHAPE, "--spares", "0")
    expect(removed.code, removed.stderr).toBe(0)
    expect(removed.data.spares).toEqual({ target: 0, ready: 0 })
    expect(await eventually(() => qemuProcessesUnder(stateDir).length === 0, 10_000)).toBe(true)
    reapAll()
  }, 240_000)

  it("are what a long-lived process's warm pool is: setWarmPool(1) keeps one of each shape it runs", async () => {
    const runtime = ManagedRuntime.make(testLayer(stateDir))
    const run = (command: string) =>
      runtime.runPromise(Effect.flatMap(VmManager, (vms) =>
        vms.run(Schema.decodeUnknownSync(VmRunInput)({ environment: "tiny", command, mem_mib: 256 }))))
    try {
      await runtime.runPromise(Effect.flatMap(VmManager, (vms) => vms.setWarmPool(1)))
      expect((await run("true")).result.exit_code).toBe(0)
      expect(await eventually(() => ready().length === 1, 90_000)).toBe(true)
      const [spare] = spareIds()
      const served = await run("hostname; ls -A /workspace")
      expect(served.result).toMatchObject({ stdout: `pyro-${spare}\n`, boot_ms: 0 })
      expect(await eventually(() => ready().length === 1 && spareIds()[0] !== spare, 90_000)).toBe(true)
    } finally {
      await runtime.dispose()
    }
    // Spares outlive the process that wanted them, until claimed or idle.
    expect(ready()).toHaveLength(1)
    reapAll()
    expect(await eventually(() => qemuProcessesUnder(stateDir).length === 0, 10_000)).toBe(true)
  }, 240_000)

  it("refuses --spares out of range or with a network, and --warm-pool out of range", async () => {
    const big = await pyro("prepare", ...SHAPE, "--spares", "9")
    expect(big.code).toBe(2)
    expect(big.stderr).toMatch(/--spares must be between 0 and 8/)
    const net = await pyro("prepare", ...SHAPE, "--network", "--spares", "1")
    expect(net.code).toBe(2)
    expect(net.stderr).toMatch(/spare VMs have no network/)
    const pool = await pyro("mcp", "serve", "--warm-pool", "9", "--no-project-source")
    expect(pool.code).toBe(2)
    expect(pool.stderr).toMatch(/--warm-pool must be between 0 and 8/)
  }, 60_000)
})
