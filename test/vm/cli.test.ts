/** The `pyro` binary as a user runs it: exit codes, exact output, Ctrl-C and kill -9. */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { makeStateDir, pyroBin, qemuProcessesUnder, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

interface Ran {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: Buffer
  readonly stderr: string
}

const start = (args: ReadonlyArray<string>) =>
  spawn(process.execPath, [pyroBin, ...args], {
    env: { ...process.env, PYRO_STATE_DIR: stateDir },
    stdio: ["ignore", "pipe", "pipe"]
  })

const finish = (child: ChildProcess) =>
  new Promise<Ran>((resolve) => {
    const out: Array<Buffer> = []
    let err = ""
    child.stdout!.on("data", (b: Buffer) => out.push(b))
    child.stderr!.on("data", (b: Buffer) => (err += b.toString()))
    child.on("close", (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: err }))
  })

const pyro = (...args: Array<string>) => finish(start(args))

const waitFor = async (check: () => boolean, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Start `run` and resolve once the guest command has printed its first line. */
const startRunning = async (args: ReadonlyArray<string>) => {
  const child = start(["run", "tiny", "--", ...args])
  const done = finish(child)
  await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()))
  return { child, done }
}

describe("pyro CLI", () => {
  it("prints its version", async () => {
    const r = await pyro("--version")
    expect(r.code).toBe(0)
    expect(r.stdout.toString()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it("writes no ANSI escapes to a pipe: help, usage errors, failures", async () => {
    for (const args of [["--help"], ["run", "--help"], ["run"], ["run", "tiny", "--mem-mib", "nope", "--", "true"]]) {
      const r = await pyro(...args)
      expect(r.stdout.toString() + r.stderr).not.toContain("\x1b")
      expect(r.stdout.toString() + r.stderr).toMatch(/\w/)
    }
  })

  it("starts with V8's code cache, and a damaged cache is ignored and made again", async () => {
    const v8Dir = Path.join(process.env.XDG_CACHE_HOME || Path.join(Os.homedir(), ".cache"), "pyro", "v8")
    expect((await pyro("--version")).code).toBe(0)
    // This build's caches (bin/pyro.js keys them by Node and the bundle file: inode, size, change
    // time; then by Node's flags: here `node bin/pyro.js`, without its first line's --expose-gc).
    const bundle = Fs.statSync(Path.join(Path.dirname(pyroBin), "..", "dist", "cli.cjs"))
    const key = [process.version, process.arch, bundle.ino, bundle.size, Math.trunc(bundle.ctimeMs)].join("-")
    const caches = () => Fs.readdirSync(v8Dir).filter((f) => f.startsWith(`cli-${key}-`) && f.endsWith("-other.bin"))
    expect(caches().length).toBeGreaterThan(0)
    for (const cache of caches()) Fs.writeFileSync(Path.join(v8Dir, cache), "not a code cache")
    const r = await pyro("--version")
    expect(r.code).toBe(0)
    expect(r.stdout.toString()).toMatch(/^\d+\.\d+\.\d+/)
    // Made again: this run's (another set of flags, `pyro` run by its first line, has one of its own).
    expect(caches().some((cache) => Fs.statSync(Path.join(v8Dir, cache)).size > 100_000)).toBe(true)
  })

  it("prepare makes the VM and workspace templates, then finds them made", async () => {
    // A memory size of its own, so these templates are this test's alone.
    const first = await pyro("prepare", "tiny", "--mem-mib", "232", "--json")
    expect(first.code).toBe(0)
    const made = JSON.parse(first.stdout.toString())
    expect(made).toMatchObject({ environment: "tiny", state: "warm", vm: { state: "warm" }, workspace: { state: "warm" } })
    expect(made.vm.key).not.toBe(made.workspace.key)
    const again = await pyro("prepare", "tiny", "--mem-mib", "232")
    expect(again.code).toBe(0)
    expect(again.stdout.toString()).toMatch(
      /^tiny: warm in [\d.]+ s\n {2}VMs: warm \(template [0-9a-f]{24}, already made\)\n {2}workspaces: warm \(template [0-9a-f]{24}, already made\)\n$/
    )
    expect(qemuProcessesUnder(stateDir)).toEqual([])
  })

  it("doctor --environment reports VM and workspace templates, warm once prepared", async () => {
    const report = async () => {
      const r = await pyro("doctor", "--no-boot", "--environment", "tiny", "--json")
      return JSON.parse(r.stdout.toString()) as {
        environment: { name: string; installed: boolean; template: string; workspace_template: { state: string } }
        issues: Array<{ problem: string; fix: string }>
      }
    }
    const before = await report()
    expect(before.environment).toMatchObject({ name: "tiny", installed: true })
    expect(["warm", "stale", "cold"]).toContain(before.environment.workspace_template.state)
    expect((await pyro("prepare", "tiny")).code).toBe(0)
    const after = await report()
    expect(after.environment).toMatchObject({ template: "warm", workspace_template: { state: "warm" } })
    expect(after.issues.filter((i) => i.problem.startsWith("tiny"))).toEqual([])
    const text = (await pyro("doctor", "--no-boot", "--environment", "tiny")).stdout.toString()
    expect(text).toMatch(/Environment tiny: installed; VMs start warm \(from a template\); workspaces start warm \(from a template\)/)
  })

  it("run streams exact output and exits with the command's code", async () => {
    const r = await pyro("run", "tiny", "--", "sh", "-c", "printf 'out\\377'; echo err >&2; exit 3")
    expect(r.code).toBe(3)
    expect([...r.stdout]).toEqual([0x6f, 0x75, 0x74, 0xff])
    // The guest's stderr exactly, after pyro's own progress lines (the first run of a shape makes its template).
    expect(r.stderr.replace(/^\[boot\] phase=.*\n/gm, "")).toBe("err\n")
    expect(vmDirsUnder(stateDir)).toEqual([])
  })

  it("writes all of a large output read slowly, though it exits as soon as the run is over", async () => {
    // The CLI calls process.exit when its command ends (src/entrypoints/cli.ts): nothing may be cut.
    const child = start(["run", "tiny", "--", "sh", "-c", "head -c 6291456 /dev/zero | tr '\\0' x; echo; echo done >&2"])
    child.stdout!.pause()
    await new Promise((r) => setTimeout(r, 3_000))
    child.stdout!.resume()
    const r = await finish(child)
    expect(r.code).toBe(0)
    expect(r.stdout.length).toBe(6291456 + 1)
    expect(r.stdout.subarray(0, 6291456).every((b) => b === 0x78)).toBe(true)
    expect(r.stderr).toContain("done\n")
    expect(vmDirsUnder(stateDir)).toEqual([])
  })

  it("passes dash-led arguments after -- to the guest command, not to pyro", async () => {
    const r = await pyro("run", "tiny", "--", "echo", "--version", "--help", "-h", "--wizard")
    expect(r.code).toBe(0)
    expect(r.stdout.toString()).toBe("--version --help -h --wizard\n")
  })

  it("env list, inspect and prune answer in text and JSON", async () => {
    const list = await pyro("env", "list")
    expect(list.stdout.toString()).toMatch(/^debian:12 \[(not )?installed\] Debian 12 environment with Git preinstalled/m)
    expect(list.stdout.toString()).toMatch(/^tiny \[installed\] /m)
    const inspected = JSON.parse((await pyro("env", "inspect", "tiny", "--json")).stdout.toString())
    expect(inspected).toMatchObject({ name: "tiny", installed: true, verified: true })
    const unknown = await pyro("env", "inspect", "nope")
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("known environments: debian:12, debian:12-base, debian:12-build, tiny")
  })

  it("run --json prints the result object", async () => {
    const r = await pyro("run", "tiny", "--json", "--", "echo", "hi")
    expect(r.code).toBe(0)
    const result = JSON.parse(r.stdout.toString())
    expect(result).toMatchObject({ stdout: "hi\n", stderr: "", exit_code: 0, environment: "tiny", execution_mode: "guest_virtio_serial" })
    expect(typeof result.duration_ms).toBe("number")
    expect(typeof result.vm_id).toBe("string")
  })

  it("rejects bad input with exit code 2 and unknown environments with the known ones", async () => {
    const bad = await pyro("run", "tiny", "--vcpu-count", "0", "--", "true")
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("vcpu_count")
    const unknown = await pyro("run", "no-such-env", "--", "true")
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('unknown environment "no-such-env"; known environments: debian:12, debian:12-base, debian:12-build, tiny')
  })

  it("Ctrl-C stops the VM and removes its files", async () => {
    const { child, done } = await startRunning(["sh", "-c", "echo up; sleep 120"])
    expect(qemuProcessesUnder(stateDir)).toHaveLength(1)
    child.kill("SIGINT")
    const r = await done
    expect(r.code).toBe(130)
    expect(qemuProcessesUnder(stateDir)).toEqual([])
    expect(vmDirsUnder(stateDir)).toEqual([])
  })

  it("kill -9 takes the VM down with it, and the next start sweeps its files", async () => {
    const { child, done } = await startRunning(["sh", "-c", "echo up; sleep 120"])
    child.kill("SIGKILL")
    await done
    await waitFor(() => qemuProcessesUnder(stateDir).length === 0, 10_000)
    expect(vmDirsUnder(stateDir)).toHaveLength(1)
    const r = await pyro("env", "list")
    expect(r.code).toBe(0)
    expect(vmDirsUnder(stateDir)).toEqual([])
  })
})
