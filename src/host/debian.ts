/**
 * Packages from Debian's archive, fetched with the host's own apt (already
 * configured on a Debian host) and unpacked with dpkg-deb, without installing
 * anything on the host.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Path from "node:path"
import { runHostCommand } from "./command.js"
import { withTempDir } from "./files.js"

export class DebianPackageError extends Data.TaggedError("DebianPackageError")<{
  readonly pkg: string
  readonly detail: string
}> {
  override get message() {
    return `cannot get Debian package ${this.pkg}: ${this.detail}`
  }
}

const hint = (output: string) =>
  /Unable to locate|has no installation candidate/.test(output)
    ? " (is this a Debian host with package lists? run: sudo apt-get update)"
    : ""

/** The concrete package a metapackage depends on, e.g. linux-image-cloud-amd64 -> linux-image-6.1.0-NN-cloud-amd64. */
export const resolveDependency = (meta: string, prefix: string) =>
  runHostCommand("apt-cache", ["depends", meta]).pipe(
    Effect.mapError((e) => new DebianPackageError({ pkg: meta, detail: `${e.message}${hint(e.output)}` })),
    Effect.flatMap(({ stdout }) => {
      const dep = stdout.split("\n").map((l) => l.trim()).find((l) => l.startsWith(`Depends: ${prefix}`))
      return dep
        ? Effect.succeed(dep.slice("Depends: ".length).trim())
        : Effect.fail(new DebianPackageError({ pkg: meta, detail: `apt-cache shows no dependency starting with ${prefix}` }))
    })
  )

/** The `.deb` of `pkg` in `debsDir`, downloading it once. */
export const fetchDeb = (pkg: string, debsDir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const existing = yield* findDeb(pkg, debsDir)
    if (existing) return existing
    yield* withTempDir(debsDir, pkg, (dir) =>
      Effect.gen(function*() {
        yield* runHostCommand("apt-get", ["download", "-q", pkg], { cwd: dir }).pipe(
          Effect.mapError((e) => new DebianPackageError({ pkg, detail: `${e.message}${hint(e.output)}` }))
        )
        // Keep plain name_version_arch.deb files in the cache.
        for (const name of yield* fs.readDirectory(dir)) {
          if (name.endsWith(".deb")) yield* fs.rename(Path.join(dir, name), Path.join(debsDir, name))
        }
      }))
    const found = yield* findDeb(pkg, debsDir)
    if (!found) return yield* new DebianPackageError({ pkg, detail: "apt-get download produced no .deb" })
    return found
  }).pipe(
    Effect.catchTags({
      SystemError: (e) => Effect.fail(new DebianPackageError({ pkg, detail: e.message })),
      BadArgument: (e) => Effect.fail(new DebianPackageError({ pkg, detail: e.message }))
    })
  )

const findDeb = (pkg: string, debsDir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = yield* fs.readDirectory(debsDir).pipe(Effect.orElseSucceed(() => []))
    const name = names.filter((n) => n.startsWith(`${pkg}_`) && n.endsWith(".deb")).sort().at(-1)
    return name ? Path.join(debsDir, name) : undefined
  })

/** The version in a .deb's file name (name_version_arch.deb), with "%3a" for ":". */
export const debVersion = (debPath: string) =>
  decodeURIComponent(Path.basename(debPath, ".deb").split("_")[1] ?? "unknown")

export const extractDeb = (
  deb: string,
  into: string
): Effect.Effect<void, DebianPackageError, CommandExecutor.CommandExecutor> =>
  runHostCommand("dpkg-deb", ["-x", deb, into]).pipe(
    Effect.mapError((e) => new DebianPackageError({ pkg: Path.basename(deb), detail: e.message })),
    Effect.asVoid
  )
