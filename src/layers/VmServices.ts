/** The services a VM needs, without workspaces: all `pyro run` builds. */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Layer from "effect/Layer"
import type { Progress } from "../services/Progress.js"
import type { PyroConfig } from "../services/PyroConfig.js"
import { EnvironmentStoreLive } from "./EnvironmentStoreLive.js"
import { KernelStoreLive } from "./KernelStoreLive.js"
import { QemuVmmLive } from "./QemuVmm.js"
import { VmManagerLive } from "./VmManagerLive.js"

/** `VmManager` and what it is built on (exposed too), over a given config and progress reporter. */
export const vmServicesLayer = <E1, E2>(
  config: Layer.Layer<PyroConfig, E1>,
  progress: Layer.Layer<Progress, E2>
) =>
  VmManagerLive.pipe(
    Layer.provideMerge(Layer.mergeAll(QemuVmmLive, KernelStoreLive, EnvironmentStoreLive)),
    Layer.provideMerge(Layer.mergeAll(config, progress)),
    Layer.provideMerge(NodeContext.layer)
  )
