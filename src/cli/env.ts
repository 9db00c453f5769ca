/** `pyro env list | pull | inspect | prune | push`. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import type { EnvironmentInfo, InspectResult, PruneResult, PullResult, PushResult } from "../services/EnvironmentStore.js"
import { EnvironmentStore } from "../services/EnvironmentStore.js"
import { json } from "./options.js"
import { printJson, writeStdout } from "./output.js"

const environment = Args.text({ name: "ENV" }).pipe(
  Args.withDescription("A catalog name (debian:12, debian:12-base, debian:12-build, tiny) or oci://HOST/REPO:TAG")
)

export const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

export const formatEnvironment = (e: EnvironmentInfo) =>
  `${e.name} [${e.installed ? "installed" : "not installed"}] ${e.description}`

const ACTIONS: Record<PullResult["action"], string> = {
  "already-installed": "already installed, image verified",
  built: "built",
  pulled: "pulled",
  repaired: "repaired (the damaged install was replaced)"
}

export const formatPull = (r: PullResult) =>
  `${r.name} ${r.version}: ${ACTIONS[r.action]} in ${seconds(r.duration_ms)}\n` +
  `  image ${r.path} (${mib(r.rootfs_bytes)}, sha256:${r.rootfs_sha256.slice(0, 16)}...)\n` +
  `  source ${r.source}\n`

export const formatInspect = (r: InspectResult) =>
  [
    `name: ${r.name}`,
    `version: ${r.version}`,
    `description: ${r.description}`,
    `distribution: ${r.distribution} ${r.distribution_version}`,
    `platform: ${r.platform}`,
    `installed: ${r.installed ? "yes" : "no"}`,
    `default packages: ${r.default_packages.join(" ")}`,
    ...(r.installed
      ? [
        `path: ${r.path}`,
        `source: ${r.source}`,
        `built at: ${r.built_at}`,
        `root image: ${mib(r.rootfs_bytes ?? 0)}, sha256:${r.rootfs_sha256}`,
        `verified: ${r.verified ? "yes" : "NO: the image does not match its digest; run pyro env pull to repair"}`,
        `kernel: ${r.kernel}`,
        `packages installed: ${r.packages.length}`,
        ...(r.image
          ? [
            `image: ${r.image.reference}@${r.image.manifest_digest}`,
            `  entrypoint: ${JSON.stringify(r.image.entrypoint)} cmd: ${JSON.stringify(r.image.cmd)}`,
            `  working dir: ${r.image.working_dir || "/"} user: ${r.image.user || "root"}`
          ]
          : [])
      ]
      : [`not installed: run pyro env pull ${r.name}`])
  ].join("\n") + "\n"

export const formatPrune = (r: PruneResult) =>
  r.removed.length === 0
    ? "nothing to prune\n"
    : r.removed.map((x) => `removed ${x.path} (${mib(x.bytes)}): ${x.reason}`).join("\n") +
      `\nfreed ${mib(r.freed_bytes)}\n`

export const formatPush = (r: PushResult) =>
  `pushed ${r.environment} to ${r.reference}@${r.digest} (${mib(r.rootfs_bytes)} image) in ${seconds(r.duration_ms)}\n`

const list = Command.make("list", { json }, (args) =>
  Effect.gen(function*() {
    const environments = yield* (yield* EnvironmentStore).list
    yield* args.json
      ? printJson(environments)
      : writeStdout(environments.map(formatEnvironment).join("\n") + "\n")
  })).pipe(Command.withDescription("List the environments pyro knows and which are installed"))

const pull = Command.make("pull", { environment, json }, (args) =>
  Effect.gen(function*() {
    const result = yield* (yield* EnvironmentStore).pull(args.environment)
    yield* args.json ? printJson(result) : writeStdout(formatPull(result))
  })).pipe(
    Command.withDescription(
      "Install an environment (build it from Debian's archive or download it from a registry); " +
        "if installed, verify its image and repair it if damaged"
    )
  )

const inspect = Command.make("inspect", { environment, json }, (args) =>
  Effect.gen(function*() {
    const result = yield* (yield* EnvironmentStore).inspect(args.environment)
    yield* args.json ? printJson(result) : writeStdout(formatInspect(result))
  })).pipe(Command.withDescription("Show an environment's manifest and check its image against its digest"))

const prune = Command.make("prune", { json }, (args) =>
  Effect.gen(function*() {
    const result = yield* (yield* EnvironmentStore).prune
    yield* args.json ? printJson(result) : writeStdout(formatPrune(result))
  })).pipe(
    Command.withDescription("Remove old versions, damaged or unfinished installs and download caches")
  )

const reference = Args.text({ name: "REF" }).pipe(Args.withDescription("Where to publish: oci://HOST/REPO:TAG"))

const push = Command.make("push", { environment, reference, json }, (args) =>
  Effect.gen(function*() {
    const result = yield* (yield* EnvironmentStore).push(args.environment, args.reference)
    yield* args.json ? printJson(result) : writeStdout(formatPush(result))
  })).pipe(Command.withDescription("Publish an installed environment to an OCI registry"))

export const envCommand = Command.make("env").pipe(
  Command.withDescription("Manage environments (root images VMs boot from)"),
  Command.withSubcommands([list, pull, inspect, prune, push])
)
