/**
 * Workspaces against real VMs: a repository seeded from a directory, state
 * that persists across commands and processes, sync push, the journal,
 * refusals of unsafe archives, concurrency, TTL and idempotent delete.
 */
import { afterAll, describe, expect, it } from "vitest"
import * as Effect from "effect/Effect"
import { withLock } from "../../src/host/lock.js"
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { tarArchive } from "../oci/tarWriter.js"
import { makeStateDir, pyroBin, qemuProcessesUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const scratch = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-ws-test-"))
afterAll(() => {
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
  Fs.rmSync(scratch, { recursive: true, force: true })
})

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The real CLI, each call a new host process; `env` adds to (or overrides) the environment. */
const pyroWith = (env: NodeJS.ProcessEnv, ...args: Array<string>) =>
  new Promise<Ran>((resolve) => {
    const child = spawn(process.execPath, [pyroBin, ...args], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

const pyro = (...args: Array<string>) => pyroWith({}, ...args)

const json = async (...args: Array<string>) => {
  const split = args.indexOf("--")
  const withJson = split < 0 ? [...args, "--json"] : [...args.slice(0, split), "--json", ...args.slice(split)]
  const r = await pyro(...withJson)
  if (r.code !== 0) throw new Error(`pyro ${args.join(" ")} failed (${r.code}): ${r.stderr}`)
  return JSON.parse(r.stdout) as Record<string, any>
}

/** A small git repository with a symlink, an executable and a 50 MB file. */
const makeRepo = () => {
  const repo = Path.join(scratch, "repo")
  Fs.mkdirSync(Path.join(repo, "src", "lib"), { recursive: true })
  Fs.writeFileSync(Path.join(repo, "src", "lib", "util.sh"), "echo util\n")
  Fs.writeFileSync(Path.join(repo, "run.sh"), "#!/bin/sh\necho ran \"$@\"\n", { mode: 0o755 })
  Fs.symlinkSync("src/lib/util.sh", Path.join(repo, "util-link"))
  const big = Fs.openSync(Path.join(repo, "big.bin"), "w")
  const block = Buffer.alloc(1024 * 1024)
  for (let i = 0; i < 50; i++) {
    block.fill(i)
    Fs.writeSync(big, block)
  }
  Fs.closeSync(big)
  const git = (...a: Array<string>) => execFileSync("git", ["-C", repo, ...a], { stdio: "ignore" })
  git("init", "-q")
  git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
  git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "initial")
  return repo
}

const bigSha = () => execFileSync("sha256sum", [Path.join(scratch, "repo", "big.bin")]).toString().split(" ")[0]

describe("workspaces", () => {
  let id = ""

  it("creates a workspace seeded from a repository, intact", async () => {
    const repo = makeRepo()
    const created = await json("workspace", "create", "tiny", "--seed-path", repo, "--mem-mib", "256")
    id = created["workspace_id"]
    expect(created).toMatchObject({
      state: "started",
      workspace_path: "/workspace",
      execution_mode: "guest_virtio_serial",
      command_count: 0,
      last_command: null,
      workspace_seed: { mode: "directory", seed_path: repo }
    })
    const r = await pyro(
      "workspace", "exec", id, "--",
      "sh", "-c", "ls -l run.sh | cut -c1-10; readlink util-link; ./run.sh a b; sha256sum big.bin | cut -d' ' -f1; ls .git/HEAD"
    )
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`-rwxr-xr-x\nsrc/lib/util.sh\nran a b\n${bigSha()}\n.git/HEAD\n`)
    expect(r.stderr).toMatch(new RegExp(`^\\[workspace-exec\\] workspace_id=${id} sequence=1 cwd=/workspace execution_mode=guest_virtio_serial exit_code=0 duration_ms=\\d+\\n$`))
  })

  it("keeps files between commands and processes, and numbers commands", async () => {
    expect((await pyro("workspace", "exec", id, "--", "sh", "-c", "echo state > /workspace/note; echo elsewhere > /root/kept")).code).toBe(0)
    const r = await json("workspace", "exec", id, "--", "cat", "/workspace/note", "/root/kept")
    expect(r).toMatchObject({ sequence: 3, stdout: "state\nelsewhere\n", exit_code: 0, cwd: "/workspace" })
    const failed = await pyro("workspace", "exec", id, "--", "sh", "-c", "exit 7")
    expect(failed.code).toBe(7)
    const status = await json("workspace", "status", id)
    expect(status).toMatchObject({ command_count: 4, last_command: { sequence: 4, exit_code: 7 } })
    const logs = await json("workspace", "logs", id)
    expect(logs["entries"].map((e: { sequence: number }) => e.sequence)).toEqual([1, 2, 3, 4])
    expect(logs["entries"][2]).toMatchObject({ stdout: "state\nelsewhere\n", exit_code: 0 })
  })

  it("syncs a later directory and an archive under /workspace", async () => {
    const more = Path.join(scratch, "more")
    Fs.mkdirSync(more)
    Fs.writeFileSync(Path.join(more, "added.txt"), "added\n")
    const pushed = await json("workspace", "sync", "push", id, more, "--dest", "/workspace/sub")
    expect(pushed).toMatchObject({ dest: "/workspace/sub", kind: "directory", files: 1 })
    const archive = Path.join(scratch, "more.tar")
    Fs.writeFileSync(archive, tarArchive([{ type: "file", path: "from-tar.txt", data: "tar\n" }]))
    await json("workspace", "sync", "push", id, archive)
    const r = await json("workspace", "exec", id, "--", "cat", "sub/added.txt", "from-tar.txt", "note")
    expect(r["stdout"]).toBe("added\ntar\nstate\n")
    const outside = await pyro("workspace", "sync", "push", id, more, "--dest", "/etc")
    expect(outside.code).toBe(2)
    expect(outside.stderr).toContain("/workspace")
  })

  it("never writes through a link the workspace already holds, and names the entry", async () => {
    await json("workspace", "exec", id, "--", "sh", "-c",
      "mkdir -p /tmp/target && ln -s /tmp/target linkdir && ln -s /tmp/target/victim leaf.txt && ln -s /etc etc-link")
    const through = Path.join(scratch, "through.tar")
    Fs.writeFileSync(through, tarArchive([{ type: "file", path: "linkdir/f", data: "escaped\n" }]))
    const r = await pyro("workspace", "sync", "push", id, through)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`linkdir/f: "linkdir" on its way is a symbolic link; refusing to write through it`)
    const atDest = await pyro("workspace", "sync", "push", id, through, "--dest", "/workspace/etc-link")
    expect(atDest.code).toBe(1)
    expect(atDest.stderr).toContain(`"etc-link" on its way is a symbolic link`)
    // At the entry itself a link is replaced by the file, never written through.
    const leaf = Path.join(scratch, "leaf.tar")
    Fs.writeFileSync(leaf, tarArchive([{ type: "file", path: "leaf.txt", data: "pushed\n" }]))
    expect((await pyro("workspace", "sync", "push", id, leaf)).code).toBe(0)
    const after = await json("workspace", "exec", id, "--", "sh", "-c",
      "ls -A /tmp/target; test -f leaf.txt && ! test -L leaf.txt && cat leaf.txt; ls /etc/f 2>&1; rm -f linkdir etc-link leaf.txt")
    expect(after["stdout"]).toBe("pushed\nls: /etc/f: No such file or directory\n")
  })

  it("bounds what the guest writes to its console: the log on disk does not grow", async () => {
    const log = Path.join(stateDir, "workspaces", id, "console.log")
    const before = Fs.statSync(log).size
    const r = await json("workspace", "exec", id, "--", "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x > /dev/ttyS0; echo written")
    expect(r["stdout"]).toBe("written\n")
    expect(Fs.statSync(log).size - before).toBeLessThan(64 * 1024)
  })

  it("refuses every escape class in an archive, naming the entry, and writes nothing", async () => {
    const cases: Array<[string, Parameters<typeof tarArchive>[0]]> = [
      ["absolute", [{ type: "file", path: "/etc/evil", data: "x" }]],
      ["dotdot", [{ type: "file", path: "../evil", data: "x" }]],
      ["symlink-out", [{ type: "symlink", path: "up", target: "../../.." }]],
      ["through-symlink", [{ type: "symlink", path: "etc", target: "/etc" }, { type: "file", path: "etc/evil", data: "x" }]],
      ["hardlink-out", [{ type: "hardlink", path: "pw", target: "/etc/passwd" }]],
      ["device", [{ type: "char", path: "dev-null" }]],
      ["fifo", [{ type: "fifo", path: "pipe" }]]
    ]
    for (const [name, entries] of cases) {
      const archive = Path.join(scratch, `${name}.tar`)
      Fs.writeFileSync(archive, tarArchive(entries))
      const r = await pyro("workspace", "sync", "push", id, archive)
      expect(r.code, name).toBe(1)
      expect(r.stderr, name).toMatch(/refus/i)
    }
    const r = await json("workspace", "exec", id, "--", "sh", "-c", "ls /etc/evil /evil 2>&1; ls /workspace")
    expect(r["stdout"]).not.toMatch(/^\/etc\/evil$/m)
    expect(r["stdout"]).not.toContain("pipe")
  })

  it("runs commands from two processes at once, numbered and journaled in start order", async () => {
    // Each waits for the other to have started: two commands run one at a time would both time out.
    const meet = (me: string, other: string) =>
      `touch ${me}; i=0; while [ ! -e ${other} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -e ${other} ]`
    const [a, b] = await Promise.all([
      json("workspace", "exec", id, "--", "sh", "-c", meet("met-a", "met-b")),
      json("workspace", "exec", id, "--", "sh", "-c", meet("met-b", "met-a"))
    ])
    expect([a["exit_code"], b["exit_code"]]).toEqual([0, 0])
    expect(new Set([a["sequence"], b["sequence"]]).size).toBe(2)
    const logs = await json("workspace", "logs", id)
    const sequences = (logs["entries"] as Array<{ sequence: number }>).map((e) => e.sequence)
    expect(sequences).toEqual([...sequences].sort((x, y) => x - y))
    expect(sequences).toEqual(expect.arrayContaining([a["sequence"], b["sequence"]]))
  })

  it("answers status, logs and file reads from other processes while a command runs, and a client that dies ends only its own commands", async () => {
    // Process A: a command that keeps writing a heartbeat until it is killed.
    const a = spawn(process.execPath, [
      pyroBin, "workspace", "exec", id, "--timeout-seconds", "120", "--", "sh", "-c",
      "while true; do date +%s%N > heartbeat; sleep 0.2; done"
    ], { env: { ...process.env, PYRO_STATE_DIR: stateDir }, stdio: "ignore" })
    const aExited = new Promise((r) => a.on("exit", r))
    let aRunning = true
    void aExited.then(() => (aRunning = false))
    const beat = async () => (await json("workspace", "file", "read", id, "heartbeat").catch(() => ({ content: "" })))["content"]
    for (let i = 0; i < 100 && (await beat()) === ""; i++) await new Promise((r) => setTimeout(r, 200))
    // Process B: a command of its own, running beside A's.
    const b = json("workspace", "exec", id, "--", "sh", "-c", "sleep 3; echo b done")
    expect((await json("workspace", "status", id))["state"]).toBe("started")
    expect((await json("workspace", "logs", id))["workspace_id"]).toBe(id)
    const first = await beat()
    await new Promise((r) => setTimeout(r, 1000))
    expect(await beat()).not.toBe(first)
    expect(aRunning).toBe(true)
    // A dies without a word: its command goes with it; B's carries on and finishes.
    a.kill("SIGKILL")
    await aExited
    await new Promise((r) => setTimeout(r, 1500))
    const stopped = await beat()
    await new Promise((r) => setTimeout(r, 1000))
    expect(await beat()).toBe(stopped)
    expect(await b).toMatchObject({ exit_code: 0, stdout: "b done\n" })
  })

  it("boots the workspace again with its files after its VM died", async () => {
    for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
    await new Promise((r) => setTimeout(r, 200))
    expect((await json("workspace", "status", id))["state"]).toBe("stopped")
    const r = await json("workspace", "exec", id, "--", "cat", "note", "/root/kept")
    expect(r["stdout"]).toBe("state\nelsewhere\n")
    expect((await json("workspace", "status", id))["state"]).toBe("started")
  })

  it("deletes idempotently and leaves nothing behind", async () => {
    expect(await json("workspace", "delete", id)).toMatchObject({ deleted: true, state: "deleted" })
    expect(await json("workspace", "delete", id)).toMatchObject({ deleted: false, state: "deleted" })
    expect(qemuProcessesUnder(stateDir)).toEqual([])
    expect(Fs.readdirSync(Path.join(stateDir, "workspaces"))).toEqual([])
    const gone = await pyro("workspace", "status", id)
    expect(gone.code).toBe(1)
    expect(gone.stderr).toContain("no workspace")
  })

  it("a create killed with -9 mid-boot leaves nothing that delete cannot remove", async () => {
    const child = spawn(process.execPath, [pyroBin, "workspace", "create", "tiny", "--mem-mib", "256"], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_COLD_BOOT: "1" },
      stdio: "ignore"
    })
    const deadline = Date.now() + 30_000
    while (qemuProcessesUnder(stateDir).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    child.kill("SIGKILL")
    await new Promise((r) => child.once("exit", r))
    const [orphanId] = Fs.readdirSync(Path.join(stateDir, "workspaces"))
    expect(orphanId).toMatch(/^[0-9a-f]{12}$/)
    expect((await json("workspace", "delete", orphanId!))["deleted"]).toBe(true)
    const gone = Date.now() + 10_000
    while (qemuProcessesUnder(stateDir).length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 50))
    expect(qemuProcessesUnder(stateDir)).toEqual([])
    expect(Fs.readdirSync(Path.join(stateDir, "workspaces"))).toEqual([])
  })

  it("parallel creates never exceed the active-VM limit", async () => {
    const limited = makeStateDir()
    const create = () =>
      pyroWith({ PYRO_STATE_DIR: limited, PYRO_MAX_ACTIVE_VMS: "2" }, "workspace", "create", "tiny", "--mem-mib", "256", "--json")
    try {
      const results = await Promise.all([create(), create(), create()])
      const made = results.filter((r) => r.code === 0)
      const refused = results.filter((r) => r.code !== 0)
      expect(made.length).toBe(2)
      expect(refused.length).toBe(1)
      expect(refused[0]!.stderr).toMatch(/too many active VMs: 2 of 2/)
      // The refused create left nothing behind.
      expect(Fs.readdirSync(Path.join(limited, "workspaces")).length).toBe(2)
      for (const r of made) {
        const id = JSON.parse(r.stdout)["workspace_id"] as string
        expect((await pyroWith({ PYRO_STATE_DIR: limited }, "workspace", "delete", id)).code).toBe(0)
      }
      expect(qemuProcessesUnder(limited)).toEqual([])
    } finally {
      for (const pid of qemuProcessesUnder(limited)) process.kill(pid, "SIGKILL")
      Fs.rmSync(limited, { recursive: true, force: true })
    }
  })

  it("expires: the reaper removes a workspace past its TTL", async () => {
    const created = await json("workspace", "create", "tiny", "--ttl-seconds", "1", "--mem-mib", "256")
    await new Promise((r) => setTimeout(r, 1100))
    // Creating another runs the reaper first.
    const next = await json("workspace", "create", "tiny", "--mem-mib", "256")
    expect((await pyro("workspace", "status", created["workspace_id"])).code).toBe(1)
    await json("workspace", "delete", next["workspace_id"])
    expect(qemuProcessesUnder(stateDir)).toEqual([])
  })

  it("a call that finds its workspace expired once it holds the lock reaps it after letting go, never waiting on itself", async () => {
    const created = await json("workspace", "create", "tiny", "--ttl-seconds", "8", "--mem-mib", "256")
    const ws = created["workspace_id"] as string
    // Another holder keeps the workspace's lock until just past its expiry.
    const holdFor = Date.parse(created["expires_at"] as string) - Date.now() + 1500
    const held = Effect.runPromise(withLock(stateDir, `workspaces/${ws}`, Effect.sleep(holdFor)))
    await new Promise((r) => setTimeout(r, 200))
    const started = Date.now()
    const second = await pyro("workspace", "exec", ws, "--", "true")
    await held
    expect(second.code).toBe(1)
    expect(second.stderr).toContain(`no workspace with workspace_id ${ws}`)
    expect(Date.now() - started).toBeLessThan(holdFor + 20_000)
    expect(Fs.existsSync(Path.join(stateDir, "workspaces", ws))).toBe(false)
    expect(qemuProcessesUnder(stateDir)).toEqual([])
  })
})
