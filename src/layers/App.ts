/** The application layer every entrypoint runs on. */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Layer from "effect/Layer"
import type { Progress } from "../services/Progress.js"
import { EnvironmentStoreLive } from "./EnvironmentStoreLive.js"
import { KernelStoreLive } from "./KernelStoreLive.js"
import { PyroConfigLive } from "./PyroConfigLive.js"
import { QemuVmmLive } from "./QemuVmm.js"
import { VmManagerLive } from "./VmManagerLive.js"
import { WorkspaceManagerLive } from "./WorkspaceManagerLive.js"
import type { PyroConfig } from "../services/PyroConfig.js"

/** Services over a given config and progress reporter. */
export const servicesLayer = <E1, E2>(
  config: Layer.Layer<PyroConfig, E1>,
  progress: Layer.Layer<Progress, E2>
) =>
  Layer.mergeAll(VmManagerLive, WorkspaceManagerLive).pipe(
    Layer.provideMerge(Layer.mergeAll(QemuVmmLive, KernelStoreLive, EnvironmentStoreLive)),
    Layer.provideMerge(Layer.mergeAll(config, progress)),
    Layer.provideMerge(NodeContext.layer)
  )

export const appLayer = <E>(progress: Layer.Layer<Progress, E>) => servicesLayer(PyroConfigLive, progress)
