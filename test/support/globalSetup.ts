/**
 * Before any test: bundle the CLI (tests run the real `pyro` binary) and make
 * sure the kernel, agent and tiny environment are in the user's cache, so test
 * files running in parallel do not all build them at once.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { execFileSync } from "node:child_process"
import { layerWith } from "../../src/layers/PyroConfigLive.js"
import { EnvironmentStoreLive } from "../../src/layers/EnvironmentStoreLive.js"
import { KernelStoreLive } from "../../src/layers/KernelStoreLive.js"
import { EnvironmentStore } from "../../src/services/EnvironmentStore.js"
import { KernelStore } from "../../src/services/KernelStore.js"
import { ProgressSilent } from "../../src/services/Progress.js"

export default async function setup() {
  execFileSync("node", ["scripts/build.mjs", "--no-types"], { stdio: "inherit" })
  const layer = Layer.mergeAll(KernelStoreLive, EnvironmentStoreLive).pipe(
    Layer.provideMerge(Layer.mergeAll(layerWith({}), ProgressSilent)),
    Layer.provideMerge(NodeContext.layer)
  )
  await Effect.gen(function*() {
    yield* (yield* KernelStore).ensure
    yield* (yield* EnvironmentStore).ensure("tiny")
  }).pipe(Effect.provide(layer), Effect.runPromise)
}
