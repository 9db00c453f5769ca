/**
 * The agent's service tool (guest/agent/service.c), compiled natively with
 * sanitizers and run against a temporary state root in place of
 * /run/pyro-services (so without the tmpfs mount and without cgroups: the
 * process group is what stop and the end of a command kill).
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { parseServiceRecords } from "../../src/workspace/guestServices.js"
import { guestNativeTool } from "../support/guestNative.js"

const native = guestNativeTool("service", ["test/service_main.c", "agent/service.c", "agent/sysfile.c", "agent/io.c"])

const fresh = () => Fs.mkdtempSync(Path.join(native.dir, "root-"))

const run = (root: string, args: ReadonlyArray<string>) => {
  const r = spawnSync(native.tool, ["service", "--root", root, ...args], { timeout: 30_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() }
}

/** The records a call printed, parsed by the host's own strict parser. */
const records = (out: Buffer) => {
  const parsed = parseServiceRecords(out)
  if (typeof parsed === "string") throw new Error(`malformed: ${parsed}`)
  return parsed
}

const start = (root: string, name: string, command: string, ...options: Array<string>) =>
  run(root, ["start", name, "--cwd", root, "--env", "PATH=/usr/bin:/bin", ...options, "--", command])

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The pids of process group `pgid`, from /proc (a zombie not reaped yet still counts). */
const groupMembers = (pgid: number) =>
  Fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return Fs.readFileSync(`/proc/${p}/stat`, "utf8").split(") ").at(-1)!.split(" ")[2] === String(pgid)
    } catch {
      return false // gone meanwhile
    }
  })

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = Net.createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

describe("guest service.c", () => {
  it("starts a command under a supervisor that outlives the call, and records it", () => {
    const root = fresh()
    const r = start(root, "sleeper", "echo out; echo err >&2; exec sleep 30", "--ready-type", "file", "--ready-target", "/x")
    expect(r.status, r.stderr).toBe(0)
    const [rec] = records(r.stdout)
    expect(rec).toMatchObject({ name: "sleeper", state: "running", command: "echo out; echo err >&2; exec sleep 30", cwd: root })
    expect(rec!.readyType).toBe("file")
    expect(rec!.readyTarget).toBe("/x")
    expect(alive(rec!.pid!)).toBe(true)
    expect(Fs.statSync(Path.join(root, "sleeper")).mode & 0o777).toBe(0o700)
    // A second start of a running name is refused, and changes nothing.
    const again = start(root, "sleeper", "true")
    expect(again.status).toBe(7)
    expect(again.stderr).toContain("already running")
    const stopped = run(root, ["stop", "sleeper"])
    expect(stopped.status, stopped.stderr).toBe(0)
    expect(records(stopped.stdout)[0]).toMatchObject({ state: "stopped", stopReason: "sigterm", exitCode: 143, signal: 15 })
    expect(alive(rec!.pid!)).toBe(false)
    const logs = run(root, ["logs", "sleeper"])
    expect(logs.stdout.toString()).toBe("out\n")
    expect(logs.stderr).toBe("err\n")
  })

  it("stop escalates to SIGKILL for a command that ignores SIGTERM, and kills its whole group", () => {
    const root = fresh()
    // Ready only once the trap is set, so the stop cannot overtake it.
    const ready = Path.join(root, "trapped")
    const r = start(root, "stubborn", `trap '' TERM; touch ${ready}; sleep 30 & sleep 31; wait`, "--ready-type", "file", "--ready-target", ready)
    expect(r.status, r.stderr).toBe(0)
    const [rec] = records(r.stdout)
    const stopped = run(root, ["stop", "stubborn", "--timeout-ms", "200"])
    expect(records(stopped.stdout)[0]).toMatchObject({ state: "stopped", stopReason: "sigkill", signal: 9 })
    // Killed processes are reaped by the host's init in its own time: give it a moment.
    const group = () => groupMembers(rec!.pgid!)
    for (let i = 0; i < 40 && group().length > 0; i++) spawnSync("sleep", ["0.05"])
    expect(group()).toEqual([])
  })

  it("records a command that ends by itself, and replaces it on the next start", () => {
    const root = fresh()
    start(root, "short", "exit 3")
    let rec = records(run(root, ["status", "short"]).stdout)[0]
    for (let i = 0; i < 100 && rec!.state === "running"; i++) {
      spawnSync("sleep", ["0.05"])
      rec = records(run(root, ["status", "short"]).stdout)[0]
    }
    expect(rec).toMatchObject({ state: "failed", stopReason: "exited", exitCode: 3, signal: null })
    expect(rec!.endedAt).not.toBeNull()
    const replaced = start(root, "short", "exec sleep 30")
    expect(replaced.status).toBe(0)
    expect(records(replaced.stdout)[0]).toMatchObject({ state: "running", endedAt: null, exitCode: null })
    run(root, ["stop", "short"])
  })

  it("waits for tcp and http readiness in one call, and records ready_at", async () => {
    const root = fresh()
    const port = await freePort()
    start(root, "web", `exec python3 -m http.server ${port} --bind 127.0.0.1`)
    const tcp = run(root, ["wait", "web", "--type", "tcp", "--target", `127.0.0.1:${port}`, "--timeout-ms", "20000", "--interval-ms", "20"])
    expect(tcp.status, tcp.stderr).toBe(0)
    expect(records(tcp.stdout)[0]!.readyAt).not.toBeNull()
    const http = run(root, ["wait", "web", "--type", "http", "--target", `http://127.0.0.1:${port}/`, "--timeout-ms", "5000", "--interval-ms", "20"])
    expect(http.status, http.stderr).toBe(0)
    // The probe reads the whole answer before closing: the server logs no reset connection.
    run(root, ["stop", "web"])
    expect(run(root, ["logs", "web"]).stderr).not.toContain("Traceback")
  })

  it("starts and waits in one call when given a timeout and an interval", () => {
    const root = fresh()
    const ready = start(root, "both", "touch ready; exec sleep 30", "--ready-type", "file", "--ready-target", Path.join(root, "ready"),
      "--timeout-ms", "5000", "--interval-ms", "20")
    expect(ready.status, ready.stderr).toBe(0)
    expect(records(ready.stdout)[0]).toMatchObject({ state: "running", readyType: "file" })
    expect(records(ready.stdout)[0]!.readyAt).not.toBeNull()
    run(root, ["stop", "both"])
    const never = start(root, "never", "exec sleep 30", "--ready-type", "file", "--ready-target", "/nonexistent/x",
      "--timeout-ms", "200", "--interval-ms", "20")
    expect(never.status).toBe(9)
    expect(records(never.stdout)[0]).toMatchObject({ state: "failed", stopReason: "ready_timeout" })
    // A timeout without a readiness to wait for is a usage error.
    expect(start(root, "bad", "true", "--timeout-ms", "200", "--interval-ms", "20").status).toBe(2)
  })

  it("waits for a command in the service's cwd and environment, and for a file", () => {
    const root = fresh()
    start(root, "env", "exec sleep 30", "--env", "FOO=bar")
    const ok = run(root, ["wait", "env", "--type", "command", "--target", `test "$FOO" = bar && test "$PWD" = ${root}`, "--timeout-ms", "5000", "--interval-ms", "20"])
    expect(ok.status, ok.stderr).toBe(0)
    Fs.writeFileSync(Path.join(root, "ready-file"), "")
    const file = run(root, ["wait", "env", "--type", "file", "--target", Path.join(root, "ready-file"), "--timeout-ms", "1000", "--interval-ms", "20"])
    expect(file.status).toBe(0)
    run(root, ["stop", "env"])
  })

  it("stops a service whose readiness never comes, as failed with ready_timeout", () => {
    const root = fresh()
    const [rec] = records(start(root, "never", "exec sleep 30").stdout)
    const r = run(root, ["wait", "never", "--type", "file", "--target", "/nonexistent/x", "--timeout-ms", "300", "--interval-ms", "50"])
    expect(r.status).toBe(9)
    expect(records(r.stdout)[0]).toMatchObject({ state: "failed", stopReason: "ready_timeout", readyAt: null })
    expect(alive(rec!.pid!)).toBe(false)
  })

  it("fails fast when the service exits before it is ready", () => {
    const root = fresh()
    start(root, "dies", "sleep 0.2; exit 1")
    const began = Date.now()
    const r = run(root, ["wait", "dies", "--type", "file", "--target", "/nonexistent/x", "--timeout-ms", "20000", "--interval-ms", "20"])
    expect(r.status).toBe(8)
    expect(Date.now() - began).toBeLessThan(10_000)
    expect(records(r.stdout)[0]).toMatchObject({ state: "failed", exitCode: 1 })
  })

  it("tails logs by lines", () => {
    const root = fresh()
    start(root, "lines", "printf 'a\\nb\\nc\\n'; printf 'x\\ny' >&2; exec sleep 30")
    spawnSync("sleep", ["0.3"])
    const two = run(root, ["logs", "lines", "--tail-lines", "2"])
    expect(two.stdout.toString()).toBe("b\nc\n")
    expect(two.stderr).toBe("x\ny")
    expect(run(root, ["logs", "lines", "--tail-lines", "1"]).stderr).toBe("y")
    expect(run(root, ["logs", "lines", "--tail-lines", "9"]).stdout.toString()).toBe("a\nb\nc\n")
    run(root, ["stop", "lines"])
  })

  it("lists every service; refuses bad names, unknown services and a cwd that does not exist", () => {
    const root = fresh()
    start(root, "one", "exec sleep 30")
    start(root, "two.b", "exec sleep 30")
    const listed = records(run(root, ["list"]).stdout)
    expect(listed.map((r) => r.name).sort()).toEqual(["one", "two.b"])
    expect(run(root, ["status", "../etc"]).status).toBe(2)
    expect(run(root, ["status", "-x"]).status).toBe(2)
    expect(run(root, ["status", "missing"]).status).toBe(3)
    const bad = run(root, ["start", "nowhere", "--cwd", "/nonexistent", "--", "true"])
    expect(bad.status).toBe(10)
    expect(bad.stderr).toContain("chdir")
    expect(Fs.existsSync(Path.join(root, "nowhere"))).toBe(false)
    run(root, ["stop", "one"])
    run(root, ["stop", "two.b"])
    expect(records(run(root, ["list"]).stdout).map((r) => r.state)).toEqual(["stopped", "stopped"])
  })
})
