/**
 * A simple `pyro run` that no spare serves starts its VM from its shape's plan
 * before the CLI loads (src/entrypoints/headStart.ts), and the CLI takes that
 * QEMU over only if it is the one it would have started; whatever it does not
 * take is killed and removed, a refusal and a kill -9 included.
 * PYRO_DEBUG_PATH=1 prints the head start's id, "taken over (QEMU <pid>)" when the
 * CLI adopts it and "not used" when it goes; the guest's hostname names the VM's id.
 */
import { afterAll, describe, expect, it } from "vitest"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { planFileFor, readPlan } from "../../src/vm/headStart/recipe.js"
import { decodeEphemeralRecord } from "../../src/vm/vmDir.js"
import { runProcess } from "../support/cli.js"
import { eventually as eventuallyEffect, makeStateDir, pyroBin, qemuProcessesUnder, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const eventually = (check: () => boolean, timeoutMs?: number) => Effect.runPromise(eventuallyEffect(check, timeoutMs))
const STARTED = /^pyro-debug: head start ([0-9a-f]{12})$/m
const NOT_USED = /^pyro-debug: head start [0-9a-f]{12} not used$/m
const TAKEN_OVER = /^pyro-debug: head start ([0-9a-f]{12}) taken over \(QEMU (\d+)\)$/m
const SHAPE = { environment: "tiny", mem_mib: 256 }

const envWith = (extra: Record<string, string>) => {
  const env: NodeJS.ProcessEnv = { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_DEBUG_PATH: "1", ...extra }
  // Spares would serve these runs before any head start.
  delete env.PYRO_SPARES
  return env
}

const cli = (args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
  runProcess(process.execPath, [pyroBin, ...args], { env: envWith(extra) })
const json = (args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
  cli([...args, "--json"], extra).then((r) => ({ ...r, data: r.code === 0 ? JSON.parse(r.stdout) as Record<string, string> : {} }))

const run = (command: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
  runProcess(process.execPath, [pyroBin, "run", "tiny", "--mem-mib", "256", "--", ...command], { env: envWith(extra) })
    .then((r) => ({
      ...r,
      headStart: STARTED.exec(r.stderr)?.[1],
      takenOver: TAKEN_OVER.exec(r.stderr)?.[1],
      notUsed: NOT_USED.test(r.stderr)
    }))

const planOf = (extra: Record<string, string>) => planFileFor(stateDir, SHAPE, envWith(extra))

/** The shape's plan under `extra`, made by a first run if there is none yet. */
const ensurePlan = async (extra: Record<string, string>) => {
  if (readPlan(planOf(extra)) === undefined) expect((await run(["true"], extra)).code).toBe(0)
  const plan = readPlan(planOf(extra))
  expect(plan).toBeDefined()
  return plan!
}

/** A run under `refused`, a configuration the limit refuses (so it never boots to make a plan), given the plain cold one's plan. */
const runRefused = async (refused: Record<string, string>) => {
  await ensurePlan({ PYRO_COLD_BOOT: "1" })
  Fs.copyFileSync(planOf({ PYRO_COLD_BOOT: "1" }), planOf(refused))
  const ran = await run(["true"], refused)
  expect(ran.code).not.toBe(0)
  expect(ran.stderr).toMatch(/too many active VMs/)
  return ran
}

const nothingLeft = () => eventually(() => vmDirsUnder(stateDir).length === 0 && qemuProcessesUnder(stateDir).length === 0)

afterAll(() => {
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

describe("a pyro run's head start", () => {
  for (const [name, extra] of [["booted cold", { PYRO_COLD_BOOT: "1" }], ["restored from a template", {}]] as const) {
    it(`is taken over by the CLI when the shape's last run started the same way: ${name}`, async () => {
      const first = await run(["true"], extra)
      expect(first.code, first.stderr).toBe(0)
      expect(first.headStart).toBeUndefined()
      expect(readPlan(planOf(extra))).toBeDefined()

      const second = await run(["hostname"], extra)
      expect(second.code, second.stderr).toBe(0)
      expect(second.headStart).toBeDefined()
      // Its QEMU ran the command: taken over, never replaced by another start (a template's fallback included).
      expect(second.takenOver).toBe(second.headStart)
      expect(second.notUsed).toBe(false)
      expect(second.stderr).not.toMatch(/template-fallback/)
      expect(second.stdout.trim()).toBe(`pyro-${second.headStart}`)
      expect(await nothingLeft()).toBe(true)
    }, 240_000)
  }

  it("is killed when the CLI would start its VM otherwise, and the plan is made anew", async () => {
    const extra = { PYRO_COLD_BOOT: "1" }
    const planFile = planOf(extra)
    const plan = await ensurePlan(extra)
    // Another QEMU command line than the CLI's, still one QEMU accepts.
    Fs.writeFileSync(planFile, JSON.stringify({ ...plan, recipe: plan.recipe.replace('"-no-reboot"', '"-no-reboot","-no-shutdown"') }))
    expect(readPlan(planFile)!.recipe).toContain("-no-shutdown")

    const ran = await run(["hostname"], extra)
    expect(ran.code, ran.stderr).toBe(0)
    expect(ran.headStart).toBeDefined()
    expect(ran.takenOver).toBeUndefined()
    expect(ran.notUsed).toBe(true)
    expect(ran.stdout.trim()).toMatch(/^pyro-[0-9a-f]{12}$/)
    expect(readPlan(planFile)).toEqual(plan)
    expect(await nothingLeft()).toBe(true)
  }, 240_000)

  it("is not started from a plan someone else could have written", async () => {
    const extra = { PYRO_COLD_BOOT: "1" }
    const planFile = planOf(extra)
    await ensurePlan(extra)
    Fs.chmodSync(planFile, 0o622)
    const ran = await run(["true"], extra)
    expect(ran.code, ran.stderr).toBe(0)
    expect(ran.headStart).toBeUndefined()
    expect(await nothingLeft()).toBe(true)
    // Written anew by that run, private again.
    expect(Fs.statSync(planFile).mode & 0o777).toBe(0o600)

    // Nor from a directory of plans others may write into.
    Fs.chmodSync(Path.dirname(planFile), 0o733)
    try {
      const again = await run(["true"], extra)
      expect(again.code, again.stderr).toBe(0)
      expect(again.headStart).toBeUndefined()
    } finally {
      Fs.chmodSync(Path.dirname(planFile), 0o700)
    }
    expect(await nothingLeft()).toBe(true)
  }, 240_000)

  it("is killed and removed when the active-VM limit refuses the run", async () => {
    // A workspace holds the one slot; the head start's bound counts only vms/, so it starts, and the CLI refuses.
    const limited = { PYRO_COLD_BOOT: "1", PYRO_MAX_ACTIVE_VMS: "1" }
    const created = await json(["workspace", "create", "tiny", "--mem-mib", "256"], limited)
    expect(created.code, created.stderr).toBe(0)
    try {
      const ran = await runRefused(limited)
      expect(ran.headStart).toBeDefined()
      expect(ran.notUsed).toBe(true)
      expect(await eventually(() => vmDirsUnder(stateDir).length === 0)).toBe(true)
    } finally {
      await cli(["workspace", "delete", created.data.workspace_id!], limited)
    }
    expect(await nothingLeft()).toBe(true)
  }, 240_000)

  it("starts no more QEMUs at once than the limit allows VMs", async () => {
    const ran = await runRefused({ PYRO_COLD_BOOT: "1", PYRO_MAX_ACTIVE_VMS: "0" })
    expect(ran.headStart).toBeUndefined()
    expect(await nothingLeft()).toBe(true)
  }, 240_000)

  it("dies with a CLI killed -9, and the next start sweeps its directory", async () => {
    const extra = { PYRO_COLD_BOOT: "1" }
    await ensurePlan(extra)
    const child = spawn(process.execPath, [pyroBin, "run", "tiny", "--mem-mib", "256", "--", "sleep", "60"], {
      env: envWith(extra),
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (chunk) => (stderr += chunk))
    expect(await eventually(() => STARTED.test(stderr), 30_000)).toBe(true)
    const id = STARTED.exec(stderr)![1]!
    expect(vmDirsUnder(stateDir)).toContain(id)
    // The record it wrote by hand is the one the sweep reads (src/vm/vmDir.ts's schema).
    const record = decodeEphemeralRecord(Fs.readFileSync(Path.join(stateDir, "vms", id, "vm.json"), "utf8"))
    expect(record._tag === "Some" && record.value.owner.pid).toBe(child.pid)
    child.kill("SIGKILL")
    expect(await eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)

    const next = await run(["true"], extra)
    expect(next.code, next.stderr).toBe(0)
    expect(vmDirsUnder(stateDir)).not.toContain(id)
    expect(await nothingLeft()).toBe(true)
  }, 240_000)
})

describe("head start plans", () => {
  it("are kept per shape and per configuration", () => {
    const env = { PYRO_STATE_DIR: stateDir }
    const plain = planFileFor(stateDir, SHAPE, env)
    expect(Path.dirname(plain)).toBe(Path.join(stateDir, "head-start"))
    expect(planFileFor(stateDir, { ...SHAPE, mem_mib: 512 }, env)).not.toBe(plain)
    expect(planFileFor(stateDir, { ...SHAPE, vcpu_count: 2 }, env)).not.toBe(plain)
    expect(planFileFor(stateDir, SHAPE, { ...env, PYRO_COLD_BOOT: "1" })).not.toBe(plain)
    // Neither debug output nor what bin/pyro.js's first line sets changes how a VM starts.
    expect(planFileFor(stateDir, SHAPE, { ...env, PYRO_DEBUG_PATH: "1", PYRO_NODE_EXTRA_CA_CERTS: "" })).toBe(plain)
  })
})
