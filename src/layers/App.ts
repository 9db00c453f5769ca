/** The application layer every entrypoint runs on. */
import * as Layer from "effect/Layer"
import type { Progress } from "../services/Progress.js"
import type { PyroConfig } from "../services/PyroConfig.js"
import { PyroConfigLive } from "./PyroConfigLive.js"
import { vmServicesLayer } from "./VmServices.js"
import { WorkspaceManagerLive } from "./WorkspaceManagerLive.js"

/** Services over a given config and progress reporter. */
export const servicesLayer = <E1, E2>(
  config: Layer.Layer<PyroConfig, E1>,
  progress: Layer.Layer<Progress, E2>
) => WorkspaceManagerLive.pipe(Layer.provideMerge(vmServicesLayer(config, progress)))

export const appLayer = <E>(progress: Layer.Layer<Progress, E>) => servicesLayer(PyroConfigLive, progress)
