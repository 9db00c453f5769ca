/**
 * The lean `pyro run` (src/vm/spares/serveRun.ts, dist/runSpare.cjs): with a
 * spare ready, the simple forms of `pyro run` are served by it without the
 * CLI's runtime, and print and exit exactly as the full CLI does; anything else
 * (no spare, --json, a stale index entry) falls back to the full CLI and still
 * works. PYRO_DEBUG_PATH=1 tells which path ran.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { listSpares } from "../../src/vm/spares/store.js"
import { cliFor, runProcess } from "../support/cli.js"
import { eventually as eventuallyEffect, makeStateDir, pyroBin, qemuProcessesUnder, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const { pyro } = cliFor(stateDir)
const SHAPE = ["tiny", "--mem-mib", "256"]

const readyIds = () =>
  listSpares(stateDir)
    .filter((e) => e.record._tag === "Some" && e.record.value.state === "ready")
    .map((e) => Path.basename(e.dir))
const eventually = (check: () => boolean, timeoutMs?: number) => Effect.runPromise(eventuallyEffect(check, timeoutMs))
const SERVED = /^pyro-debug: served by spare ([0-9a-f]{12})\n/m
const FULL = /^pyro-debug: full path: (.*)\n/m

/** `pyro run` telling which path ran; `env` on top of the state directory's. */
const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  runProcess(process.execPath, [pyroBin, "run", ...args], {
    env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_DEBUG_PATH: "1", ...env }
  }).then((r) => ({
    ...r,
    served: SERVED.exec(r.stderr)?.[1],
    fullBecause: FULL.exec(r.stderr)?.[1],
    output: { code: r.code, stdout: r.stdout, stderr: r.stderr.replace(SERVED, "").replace(FULL, "") }
  }))

/** The same run by the full CLI: `--mem-mib=256` is outside the lean form, the same input to the CLI. */
const fullRun = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  run(["tiny", "--mem-mib=256", ...args], env)

const spareReady = () => eventually(() => readyIds().length >= 1, 90_000)

beforeAll(async () => {
  const prepared = await pyro("prepare", ...SHAPE, "--spares", "2")
  expect(prepared.code, prepared.stderr).toBe(0)
}, 240_000)

afterAll(() => {
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

describe("the lean pyro run", () => {
  const cases: Array<[string, Array<string>, Record<string, string>?]> = [
    ["echo", ["--", "echo", "hi"]],
    ["a failing command", ["--", "sh", "-c", "echo out; echo err >&2; exit 3"]],
    ["a timeout", ["--timeout-seconds", "1", "--", "sh", "-c", "echo started; sleep 5"]],
    ["a missing command", ["--", "no-such-command"]],
    ["large output past the cap", ["--", "sh", "-c", "yes abcdefghij | head -c 300000; yes e | head -c 70000 >&2"], {
      PYRO_MAX_OUTPUT_BYTES: "65536"
    }]
  ]
  for (const [name, args, env] of cases) {
    it(`prints and exits as the full CLI does: ${name}`, async () => {
      expect(await spareReady()).toBe(true)
      const lean = await run([...SHAPE, ...args], env)
      expect(lean.served, lean.stderr).toBeDefined()
      const full = await fullRun(args, env)
      expect(full.served).toBeUndefined()
      expect(lean.output).toEqual(full.output)
      expect(vmDirsUnder(stateDir)).toEqual([])
    }, 120_000)
  }

  it("runs on the spare it claims (its hostname), and the shape is refilled behind it", async () => {
    expect(await eventually(() => readyIds().length === 2, 90_000)).toBe(true)
    const before = readyIds()
    const r = await run([...SHAPE, "--", "hostname"])
    expect(r.code, r.stderr).toBe(0)
    expect(before).toContain(r.served)
    expect(r.stdout.trim()).toBe(`pyro-${r.served}`)
    expect(readyIds()).not.toContain(r.served)
    expect(await eventually(() => readyIds().length === 2 && !readyIds().includes(r.served!), 90_000)).toBe(true)
  }, 180_000)

  it("falls back to the full CLI, which still runs the command: --json, a stale index entry, no spare", async () => {
    expect(await spareReady()).toBe(true)
    const json = await run([...SHAPE, "--json", "--", "echo", "hi"])
    expect(json.code, json.stderr).toBe(0)
    expect(json.served).toBeUndefined()
    expect(JSON.parse(json.stdout).stdout).toBe("hi\n")

    // A guard changed since the entry was written (here: the entry's record of it, not the user's cache):
    // the entry is not trusted. The refill behind the full run writes it anew, so it must be done first.
    expect(await eventually(() => readyIds().length === 2, 90_000)).toBe(true)
    const indexDir = Path.join(stateDir, "spares", "index")
    for (const entry of Fs.readdirSync(indexDir)) {
      const path = Path.join(indexDir, entry)
      Fs.writeFileSync(path, Fs.readFileSync(path, "utf8").replace(/"mtimeMs":[0-9.]+/, "\"mtimeMs\":1"))
    }
    const stale = await run([...SHAPE, "--", "echo", "hi"])
    expect(stale.code, stale.stderr).toBe(0)
    expect(stale.stdout).toBe("hi\n")
    expect(stale.fullBecause).toBe("no index entry")

    // No spare of this shape (another size): the full CLI boots one.
    const none = await run(["tiny", "--mem-mib", "320", "--", "echo", "hi"])
    expect(none.code, none.stderr).toBe(0)
    expect(none.stdout).toBe("hi\n")
    expect(none.served).toBeUndefined()
    expect(vmDirsUnder(stateDir)).toEqual([])
  }, 240_000)

  it("is stopped by SIGTERM like the full CLI: 130, the VM killed and its directory removed", async () => {
    // Both spares back: the refill that rewrote the index entry is done.
    expect(await eventually(() => readyIds().length === 2, 90_000)).toBe(true)
    const child = spawn(process.execPath, [pyroBin, "run", ...SHAPE, "--", "sleep", "300"], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_DEBUG_PATH: "1", PYRO_SPARES: "0" },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    const code = new Promise<number | null>((resolve) => child.on("close", resolve))
    // The command is running in the guest once the lean path says which spare serves it.
    expect(await eventually(() => SERVED.test(stderr), 30_000)).toBe(true)
    const [id] = vmDirsUnder(stateDir)
    child.kill("SIGTERM")
    expect(await code).toBe(130)
    expect(vmDirsUnder(stateDir)).toEqual([])
    const runsIn = (pid: number) => {
      try {
        return Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(id!)
      } catch {
        return false
      }
    }
    expect(await eventually(() => !qemuProcessesUnder(stateDir).some(runsIn), 10_000)).toBe(true)
  }, 120_000)
})
