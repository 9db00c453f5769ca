/**
 * The guest agent, compiled from guest/agent with musl-gcc into a small static
 * binary that runs in any root filesystem, and cached by the digest of its
 * sources and build flags.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { runHostCommand } from "../host/command.js"
import { installDirectory, sha256 } from "../host/files.js"
import { packageRoot } from "../host/packageRoot.js"
import { report } from "../services/Progress.js"
import { KernelError } from "../services/KernelStore.js"

export const AGENT_COMPILER = "musl-gcc"
const CFLAGS = ["-static", "-Os", "-Wall", "-Wextra", "-Werror"]

export const agentSourceDir = () => Path.join(packageRoot(), "guest", "agent")

/** Digest of the agent's sources and flags: the cache key of its build. */
export const agentDigest = Effect.try({
  // Blocking reads: every VM start computes this, and ~35 small files read one by one
  // through the thread pool cost ~12 ms of each cold `pyro run`; read in one go, ~2.
  try: () => {
    const dir = agentSourceDir()
    const names = Fs.readdirSync(dir).filter((n) => /\.[ch]$/.test(n)).sort()
    const parts = [CFLAGS.join(" ")]
    for (const name of names) parts.push(name, Fs.readFileSync(Path.join(dir, name), "utf8"))
    return { digest: sha256(parts.join("\0")), sources: names }
  },
  catch: (e) => new KernelError({ reason: "Agent", detail: `cannot read agent sources: ${(e as Error).message}` })
})

export const agentPath = (cacheDir: string, digest: string) => Path.join(cacheDir, "agent", digest.slice(0, 16), "pyro-agent")

export const ensureAgent = (cacheDir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { digest, sources } = yield* agentDigest
    const binary = agentPath(cacheDir, digest)
    if (yield* fs.exists(binary)) return { path: binary, digest }
    yield* report({ scope: "agent", phase: "build", fields: { digest: digest.slice(0, 16) } })
    const src = agentSourceDir()
    yield* installDirectory(Path.dirname(binary), (dir) =>
      runHostCommand(AGENT_COMPILER, [...CFLAGS, "-o", Path.join(dir, "pyro-agent"), ...sources.filter((n) => n.endsWith(".c")).map((n) => Path.join(src, n))]).pipe(
        Effect.mapError((e) =>
          new KernelError({
            reason: "Agent",
            detail: e.exitCode === undefined
              ? `${AGENT_COMPILER} not found; install Debian's musl-tools (sudo apt-get install musl-tools)`
              : e.message
          })),
        Effect.asVoid
      ))
    return { path: binary, digest }
  }).pipe(
    Effect.catchTags({
      SystemError: (e) => Effect.fail(new KernelError({ reason: "Agent", detail: e.message })),
      BadArgument: (e) => Effect.fail(new KernelError({ reason: "Agent", detail: e.message }))
    })
  )
