/** Environments: the catalog, and root images installed in the cache. */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type { EnvironmentManifest } from "../environment/manifest.js"

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

export class EnvironmentNotFound extends Data.TaggedError("EnvironmentNotFound")<{
  readonly name: string
  readonly known: ReadonlyArray<string>
}> {
  override get message() {
    return `unknown environment "${this.name}"; known environments: ${this.known.join(", ")}`
  }
}

export class EnvironmentBuildFailed extends Data.TaggedError("EnvironmentBuildFailed")<{
  readonly name: string
  readonly detail: string
}> {
  override get message() {
    return `cannot install environment ${this.name}: ${this.detail}`
  }
}

export type EnvironmentError = EnvironmentNotFound | EnvironmentBuildFailed

export class EnvironmentStore extends Context.Tag("pyro/EnvironmentStore")<EnvironmentStore, {
  readonly list: Effect.Effect<ReadonlyArray<EnvironmentInfo>>
  /** The installed environment, building or pulling it first if needed. */
  readonly ensure: (name: string) => Effect.Effect<InstalledEnvironment, EnvironmentError>
  /** The installed environment if it is present and intact; never builds. */
  readonly installed: (name: string) => Effect.Effect<InstalledEnvironment | undefined, EnvironmentNotFound>
}>() {}
