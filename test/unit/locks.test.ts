/**
 * Locks the kernel keeps (src/host/lock.ts), tried the way faults happen:
 * holders killed with -9 at random while others wait, stopped (Ctrl-Z) for
 * long stretches, and a holder asking again for what it holds.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { build } from "esbuild"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { withLock } from "../../src/host/lock.js"

let dir: string
let holderScript: string

beforeAll(async () => {
  dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-locks-"))
  holderScript = Path.join(dir, "lockHolder.mjs")
  await build({
    entryPoints: [Path.resolve(import.meta.dirname, "../support/lockHolder.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: holderScript,
    logLevel: "silent"
  })
})
afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const holder = (stateDir: string, work: string, mode: "loop" | "hold"): ChildProcess =>
  spawn(process.execPath, [holderScript, stateDir, "workspaces/abc", work, mode], { stdio: ["pipe", "pipe", "inherit"] })

const lines = (file: string) => {
  try {
    return Fs.readFileSync(file, "utf8").split("\n").filter(Boolean)
  } catch {
    return []
  }
}

const stopAll = async (children: Iterable<ChildProcess>) => {
  for (const child of children) {
    child.kill("SIGCONT")
    child.kill("SIGKILL")
  }
  await sleep(100)
}

describe("locks", () => {
  it("never has two holders while holders are killed with -9 and stopped at random, and keeps being handed on", async () => {
    const stateDir = Path.join(dir, "state-chaos")
    const work = Path.join(dir, "work-chaos")
    Fs.mkdirSync(work, { recursive: true })
    const children = new Set<ChildProcess>()
    const add = () => {
      const child = holder(stateDir, work, "loop")
      children.add(child)
      child.on("exit", () => children.delete(child))
    }
    for (let i = 0; i < 6; i++) add()
    const until = Date.now() + 6_000
    let kills = 0
    let entriesBefore = 0
    try {
      while (Date.now() < until) {
        await sleep(40 + Math.random() * 80)
        const all = [...children]
        const victim = all[Math.floor(Math.random() * all.length)]
        if (!victim) continue
        if (Math.random() < 0.2) {
          // A holder (or waiter) stopped for a while is still alive: it must keep what it holds.
          victim.kill("SIGSTOP")
          setTimeout(() => victim.kill("SIGCONT"), 300)
        } else {
          victim.kill("SIGKILL")
          kills++
          add()
        }
      }
      entriesBefore = lines(Path.join(work, "entries")).length
      // Still handed on after all that: no lock was left with a dead holder.
      await sleep(1_000)
    } finally {
      await stopAll(children)
    }
    expect(lines(Path.join(work, "violations"))).toEqual([])
    expect(kills).toBeGreaterThan(20)
    expect(entriesBefore).toBeGreaterThan(100)
    expect(lines(Path.join(work, "entries")).length).toBeGreaterThan(entriesBefore)
  }, 30_000)

  it("a holder stopped far longer than any wait keeps the lock; the waiter gets it only when it is let go", async () => {
    const stateDir = Path.join(dir, "state-stop")
    const work = Path.join(dir, "work-stop")
    Fs.mkdirSync(work, { recursive: true })
    const a = holder(stateDir, work, "hold")
    await new Promise<void>((resolve) => a.stdout!.once("data", () => resolve()))
    a.kill("SIGSTOP")
    const b = holder(stateDir, work, "hold")
    let bHeld = false
    b.stdout!.once("data", () => (bHeld = true))
    try {
      await sleep(2_500)
      expect(bHeld).toBe(false)
      a.kill("SIGCONT")
      a.stdin!.end()
      const deadline = Date.now() + 5_000
      while (!bHeld && Date.now() < deadline) await sleep(20)
      expect(bHeld).toBe(true)
      expect(lines(Path.join(work, "entries"))).toEqual([`${a.pid} released`])
    } finally {
      await stopAll([a, b])
    }
  }, 20_000)

  it.live("serialises fibers of one process, and a holder asking again for its lock is a defect, not a hang", () =>
    Effect.gen(function*() {
      const stateDir = Path.join(dir, "state-fibers")
      let inside = 0
      let most = 0
      const work = withLock(stateDir, "vms.lock", Effect.gen(function*() {
        inside++
        most = Math.max(most, inside)
        yield* Effect.sleep("5 millis")
        inside--
      }))
      yield* Effect.all(Array.from({ length: 20 }, () => work), { concurrency: "unbounded" })
      expect(most).toBe(1)
      const again = yield* Effect.exit(withLock(stateDir, "vms.lock", withLock(stateDir, "vms.lock", Effect.void)).pipe(
        Effect.timeout("5 seconds")
      ))
      expect(Exit.isFailure(again) && String(again.cause)).toContain("asked for again by its holder")
      // A different lock inside is fine.
      yield* withLock(stateDir, "vms.lock", withLock(stateDir, "workspaces/x", Effect.void))
    }))
})
