/**
 * Environments: the catalog, OCI images, and the root images installed in the
 * cache. An environment is a read-only ext4 root image plus its manifest; it
 * carries no kernel and no agent (both come from the initramfs at boot).
 */
import * as Context from "effect/Context"
import type { EnvironmentBuildFailed, EnvironmentNotFound, EnvironmentNotInstalled } from "../contract/errors.js"
import type * as Effect from "effect/Effect"
import type { EnvironmentManifest } from "../environment/manifest.js"

/** One `env list` / `vm_list_environments` entry (the contract's field names). */
export interface EnvironmentInfo {
  readonly name: string
  readonly version: string
  readonly description: string
  readonly default_packages: ReadonlyArray<string>
  readonly distribution: string
  readonly distribution_version: string
  readonly platform: string
  readonly installed: boolean
}

export interface InstalledEnvironment {
  readonly name: string
  readonly version: string
  readonly dir: string
  readonly rootImage: string
  readonly manifest: EnvironmentManifest
}

export interface PullResult extends EnvironmentInfo {
  /** What the pull did: nothing, a local build, a registry download, or a repair of a damaged install. */
  readonly action: "already-installed" | "built" | "pulled" | "repaired"
  readonly source: string
  readonly path: string
  readonly rootfs_bytes: number
  readonly rootfs_sha256: string
  readonly duration_ms: number
}

export interface InspectResult extends EnvironmentInfo {
  readonly path: string | null
  readonly source: string | null
  readonly built_at: string | null
  readonly kernel: string | null
  readonly rootfs_bytes: number | null
  readonly rootfs_sha256: string | null
  /** The image's digest was recomputed and matches the manifest. */
  readonly verified: boolean | null
  readonly packages: ReadonlyArray<string>
  readonly image: EnvironmentManifest["image"] | null
}

export interface PruneResult {
  readonly removed: ReadonlyArray<{ readonly path: string; readonly reason: string; readonly bytes: number }>
  readonly freed_bytes: number
}

export interface PushResult {
  readonly environment: string
  readonly reference: string
  readonly digest: string
  readonly rootfs_bytes: number
  readonly duration_ms: number
}

export { EnvironmentBuildFailed, EnvironmentNotFound, EnvironmentNotInstalled } from "../contract/errors.js"

export type EnvironmentError = EnvironmentNotFound | EnvironmentBuildFailed

export class EnvironmentStore extends Context.Tag("pyro/EnvironmentStore")<EnvironmentStore, {
  readonly list: Effect.Effect<ReadonlyArray<EnvironmentInfo>>
  /** The installed environment, building or pulling it first if needed (cheap check when present). */
  readonly ensure: (name: string) => Effect.Effect<InstalledEnvironment, EnvironmentError>
  /** The installed environment if it is present and intact; never builds. */
  readonly installed: (name: string) => Effect.Effect<InstalledEnvironment | undefined, EnvironmentNotFound>
  /** Install, or verify the image's digest and repair a damaged install. */
  readonly pull: (name: string) => Effect.Effect<PullResult, EnvironmentError>
  readonly inspect: (name: string) => Effect.Effect<InspectResult, EnvironmentNotFound>
  /** Remove what no environment uses: old versions, damaged or unfinished installs, download caches. */
  readonly prune: Effect.Effect<PruneResult>
  /** Publish an installed environment to an OCI registry. */
  readonly push: (name: string, reference: string) => Effect.Effect<PushResult, EnvironmentError | EnvironmentNotInstalled>
}>() {}
