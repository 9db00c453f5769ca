/**
 * Locks the kernel keeps. Holding a lock is holding a unix socket bound to a
 * name in Linux's abstract namespace (`\0pyro-lock-...`):
 *
 * - never two holders: the kernel binds a name once;
 * - a dead holder's lock goes to exactly one waiter: the kernel frees the
 *   name when the process dies (kill -9 included), and the next bind wins;
 * - a live holder never loses it, however slow (a Ctrl-Z'd CLI): there is
 *   no staleness to guess;
 * - release frees only one's own: closing one's own socket.
 *
 * Names are private to a state directory: a hash of a random key kept in
 * `<stateDir>/lock.key` (mode 0600) and the lock's name, so another user
 * cannot predict them. Abstract names belong to a network namespace: pyro
 * processes sharing a state directory must share one (they do unless put in
 * different containers).
 *
 * A fiber that asks for a lock it (or the fiber that forked it) already holds
 * would wait for itself forever; that is a defect, reported as one.
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Option from "effect/Option"
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"

const POLL = "10 millis"
const KEY_FILE = "lock.key"

const keys = new Map<string, string>()

/**
 * The state directory's lock key, made once: written whole to a file of its
 * own, then linked into place (of two makers, one link wins and both read it),
 * so the key file is never seen half written, whatever crashes when.
 */
const lockKey = (stateDir: string): string => {
  const known = keys.get(stateDir)
  if (known) return known
  Fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 })
  const file = Path.join(stateDir, KEY_FILE)
  if (!Fs.existsSync(file)) {
    const aside = `${file}.${process.pid}-${randomBytes(4).toString("hex")}`
    Fs.writeFileSync(aside, randomBytes(32).toString("hex"), { mode: 0o600 })
    try {
      Fs.linkSync(aside, file)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    } finally {
      Fs.rmSync(aside, { force: true })
    }
  }
  const key = Fs.readFileSync(file, "utf8").trim()
  if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`${file} is not a lock key: remove it and try again`)
  keys.set(stateDir, key)
  return key
}

/** The abstract socket name of lock `name` in `stateDir`. */
export const lockAddress = (stateDir: string, name: string) =>
  `\0pyro-lock-${createHash("sha256").update(lockKey(Path.resolve(stateDir))).update("\0").update(name).digest("hex").slice(0, 40)}`

/** Locks held by this fiber and the fibers it forked. */
const held = FiberRef.unsafeMake(HashSet.empty<string>())

/** One attempt: the bound server, or undefined when another holds the name. */
const tryBind = (address: string) =>
  Effect.async<Net.Server | undefined, Error>((resume) => {
    const server = Net.createServer((socket) => socket.destroy())
    server.once("error", (error: NodeJS.ErrnoException) => {
      server.close()
      resume(error.code === "EADDRINUSE" ? Effect.succeed(undefined) : Effect.fail(error))
    })
    server.listen({ path: address, exclusive: true }, () => {
      server.unref()
      resume(Effect.succeed(server))
    })
  })

/** Binding runs whole or not at all; only the wait between attempts can be interrupted. */
const acquire = (address: string) =>
  Effect.gen(function*() {
    for (;;) {
      const server = yield* tryBind(address).pipe(Effect.orDie)
      if (server) return server
      yield* Effect.interruptible(Effect.sleep(POLL))
    }
  })

/**
 * Run `body` holding lock `name` of `stateDir` (a path-like name:
 * `vms.lock`, `workspaces/<id>/lock`). Waiting stays interruptible; taking
 * the lock and registering its release happen together.
 */
export const withLock = <A, E, R>(stateDir: string, name: string, body: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const address = lockAddress(stateDir, name)
    if (HashSet.has(yield* FiberRef.get(held), address)) {
      return yield* Effect.dieMessage(`the lock ${name} was asked for again by its holder (it would wait for itself)`)
    }
    return yield* Effect.acquireUseRelease(
      acquire(address),
      () => Effect.locallyWith(body, held, HashSet.add(address)),
      (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
    )
  })

/**
 * Take lock `name` if it is free, without waiting: its release, or none when
 * another holds it (this process included: a name binds once).
 */
export const tryLock = (stateDir: string, name: string): Effect.Effect<Option.Option<Effect.Effect<void>>> =>
  Effect.uninterruptible(Effect.map(tryBind(lockAddress(stateDir, name)).pipe(Effect.orDie), (server) =>
    server === undefined
      ? Option.none()
      : Option.some(Effect.async<void>((resume) => void server.close(() => resume(Effect.void))))))
