/**
 * Debian environments: a minbase tree from Debian's archive with mmdebstrap,
 * plus the recipe's packages. Downloaded .debs are kept in the cache
 * (mmdebstrap's sync-in/sync-out hooks), so a rebuild downloads only what
 * changed in the archive.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Path from "node:path"
import { runHostCommand } from "../host/command.js"
import { report } from "../services/Progress.js"
import type { Progress } from "../services/Progress.js"
import type { Recipe } from "./catalog.js"

type DebianRecipe = Extract<Recipe, { kind: "debian" }>

/** PYRO_DEBIAN_MIRROR overrides; security updates come from the matching -security archive. */
export const debianSources = (suite: string, mirror = process.env.PYRO_DEBIAN_MIRROR) => {
  const main = (mirror ?? "http://deb.debian.org/debian").replace(/\/+$/, "")
  const security = process.env.PYRO_DEBIAN_SECURITY_MIRROR ??
    (mirror ? undefined : "http://deb.debian.org/debian-security")
  return [
    `deb ${main} ${suite} main`,
    `deb ${main} ${suite}-updates main`,
    ...(security ? [`deb ${security.replace(/\/+$/, "")} ${suite}-security main`] : [])
  ]
}

/** mmdebstrap's own "I: ..." lines, as steps of a build with a rough share of its time. */
const STEPS: ReadonlyArray<readonly [RegExp, string, number]> = [
  [/running apt-get update/, "update", 0.05],
  [/downloading packages/, "download", 0.15],
  [/extracting archives/, "extract", 0.35],
  [/installing essential packages/, "install-essential", 0.45],
  [/installing remaining packages/, "install-packages", 0.6],
  [/cleaning package lists/, "clean", 0.9]
]

/** Files every environment needs that a bare debootstrap does not write for a VM. */
const VM_FILES: ReadonlyArray<readonly [string, string]> = [
  ["etc/hostname", "pyro\n"],
  ["etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tpyro\n::1\tlocalhost ip6-localhost ip6-loopback\n"],
  // QEMU user networking's DNS forwarder (used only when a VM has network).
  ["etc/resolv.conf", "nameserver 10.0.2.3\n"]
]

export const buildDebianTree = (
  root: string,
  recipe: DebianRecipe,
  options: { readonly cacheDir: string; readonly environment: string }
): Effect.Effect<ReadonlyArray<string>, unknown, FileSystem.FileSystem | CommandExecutor.CommandExecutor | Progress> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    if (process.getuid?.() !== 0) {
      return yield* Effect.fail(
        new Error(
          "building a Debian environment needs root (mmdebstrap writes files owned by root); " +
            "run pyro with sudo once to build it, or pull a prebuilt one (pyro env pull oci://...)"
        )
      )
    }
    const debs = Path.join(options.cacheDir, "debs", recipe.suite)
    yield* fs.makeDirectory(debs, { recursive: true })
    if (/\s/.test(debs)) return yield* Effect.fail(new Error(`the cache path may not contain spaces: ${debs}`))

    const onLine = (line: string) => {
      const step = STEPS.find(([pattern]) => pattern.test(line))
      return step
        ? report({
          scope: "pull",
          phase: "build",
          fields: { environment: options.environment, step: step[1] },
          fraction: step[2]
        })
        : Effect.void
    }
    yield* runHostCommand("mmdebstrap", [
      "--variant=minbase",
      "--mode=root",
      "--format=directory",
      `--include=${recipe.packages.join(",")}`,
      // Keep the essential .debs in the chroot's archive dir so sync-out saves them too.
      "--skip=essential/unlink",
      `--setup-hook=mkdir -p "$1"/var/cache/apt/archives/`,
      `--setup-hook=sync-in ${debs} /var/cache/apt/archives/`,
      `--customize-hook=sync-out /var/cache/apt/archives ${debs}`,
      recipe.suite,
      root,
      ...debianSources(recipe.suite)
    ], {
      env: { SOURCE_DATE_EPOCH: "1700000000", DEBIAN_FRONTEND: "noninteractive" },
      onStderrLine: onLine
    })
    for (const [file, text] of VM_FILES) yield* fs.writeFileString(Path.join(root, file), text)
    yield* fs.makeDirectory(Path.join(root, "workspace"), { recursive: true })
    return yield* installedPackages(root)
  })

/** "name version" for every package dpkg records as installed in the tree. */
export const installedPackages = (root: string) =>
  Effect.map(
    runHostCommand("dpkg-query", [
      `--admindir=${Path.join(root, "var/lib/dpkg")}`,
      "-W",
      "-f",
      "${db:Status-Abbrev}${binary:Package} ${Version}\\n"
    ]),
    ({ stdout }) =>
      stdout.split("\n")
        .filter((line) => line.startsWith("ii "))
        .map((line) => line.slice(3).trim())
        .sort()
  )
